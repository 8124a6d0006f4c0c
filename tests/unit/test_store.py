"Snapshot store: content addressing, atomic writes, diff, SQL and retention."
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from retail_workbench.core import ConfigError, SchemaError, SourceNotFoundError
from retail_workbench.data.store import SnapshotStore, apply_retention, content_sha256, diff_snapshots


def files_with_mtimes(root):
    "Every file of the store but the lock file (whose holder record each writer rewrites)."
    return sorted((str(p), p.stat().st_mtime_ns) for p in root.rglob("*") if p.name != "lock")


@pytest.fixture
def store(tmp_path):
    return SnapshotStore(tmp_path / "store")


@pytest.fixture
def interactions():
    rng = np.random.default_rng(0)
    n = 3000
    start = pd.Timestamp("2024-01-01")
    seconds = rng.integers(0, 300 * 86400, n)
    users = rng.integers(0, 5, n)
    return pd.DataFrame({
        "user_id": users,
        "item_id": rng.integers(0, 25, n),
        "ts": start + pd.to_timedelta(seconds, unit="s"),
        "event": rng.choice(["view", "click", "add_to_cart", "order", "rating"], n),
        "session_id": seconds // (3 * 86400) * 100 + users % 3,  # 3-day sessions, shared ids
        "value": rng.integers(1, 5, n).astype(float),
    })


def test_default_location_is_the_workspace(workspace_home):
    assert SnapshotStore().root == (workspace_home / "data" / "store").resolve()


def test_round_trip_keeps_values_and_dtypes(store):
    df = pd.DataFrame({
        "item_id": [1, 2, 3],
        "title": ["a", "b", None],
        "price": [1.5, np.nan, 3.0],
        "promo": [True, False, True],
        "ts": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 00:00", "2024-01-03 00:00"])
        .astype("datetime64[ns]"),
    })
    snap = store.write(df, "catalog", source="test")
    back = store.read(snap.id)
    pd.testing.assert_frame_equal(back, df)
    assert str(back["ts"].dtype) == "datetime64[ns]"
    assert snap.rows == 3 and snap.schema["price"] == "float64"
    assert snap.sha256 == content_sha256(df)
    assert store.verify(snap.id)


def test_verify_catches_a_changed_file(store, interactions):
    snap = store.write(interactions.assign(event=interactions["event"].astype("category")),
                       "interactions")
    assert store.verify(snap.id)  # categorical columns survive the parquet round trip
    (snap.path / "data.parquet").write_bytes(b"not parquet")
    assert not store.verify(snap.id)


def test_identical_content_same_id_and_no_new_files(store, interactions):
    first = store.write(interactions, "interactions", source="a.csv")
    before = files_with_mtimes(store.root)
    second = store.write(interactions.sample(frac=1, random_state=0).sort_index(), "interactions",
                         source="b.csv")
    assert second.id == first.id
    assert second.created_at == first.created_at and second.source == "a.csv"
    assert files_with_mtimes(store.root) == before
    assert len(store.list()) == 1


def test_id_depends_on_table_and_content_only(store, tmp_path, interactions):
    other = SnapshotStore(tmp_path / "elsewhere")
    a = store.write(interactions, "interactions")
    b = other.write(interactions, "interactions", source="x", parent=None)
    assert a.id == b.id
    assert store.write(interactions, "clicks").id != a.id
    changed = interactions.copy()
    changed.loc[7, "value"] += 1
    assert store.write(changed, "interactions").id != a.id


def test_rewriting_old_content_moves_the_head_back(store, interactions):
    a = store.write(interactions, "interactions")
    b = store.write(interactions.head(10), "interactions", parent=a.id)
    assert store.latest("interactions").id == b.id
    assert store.write(interactions, "interactions").id == a.id
    assert store.latest("interactions").id == a.id
    assert store.list("interactions")["latest"].tolist() == [True, False]


def test_failure_mid_write_leaves_no_snapshot(store, interactions, monkeypatch):
    kept = store.write(interactions.head(5), "interactions")

    def half_written(self, path, **kwargs):
        with open(path, "wb") as out:
            out.write(b"PAR1 truncated")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_written)
    with pytest.raises(OSError, match="disk full"):
        store.write(interactions, "interactions")
    assert store.list()["id"].tolist() == [kept.id]
    assert store.latest("interactions").id == kept.id
    assert list((store.root / "tmp").iterdir()) == []
    assert len(list((store.root / "snapshots").iterdir())) == 1


def test_killed_write_leaves_no_snapshot(store, interactions, tmp_path):
    "A process killed after writing the data but before the rename leaves only a tmp folder."
    data = tmp_path / "in.parquet"
    interactions.to_parquet(data)
    script = textwrap.dedent(f"""
        import os, sys, time
        import pandas as pd
        import retail_workbench.data.store as store_module
        def stall(src, dst):
            print("ready", flush=True)
            time.sleep(60)
        store_module.os.rename = stall
        store = store_module.SnapshotStore({str(store.root)!r})
        store.write(pd.read_parquet({str(data)!r}), "interactions")
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    leftovers = list((store.root / "tmp").iterdir())
    assert len(leftovers) == 1 and (leftovers[0] / "data.parquet").exists()
    assert store.list().empty
    with pytest.raises(SourceNotFoundError):
        store.latest("interactions")
    assert store.cleanup(older_than_s=0) == 1
    assert list((store.root / "tmp").iterdir()) == []
    snap = store.write(interactions, "interactions")  # a later write completes normally
    pd.testing.assert_frame_equal(store.read(snap.id), interactions)


def test_unknown_ids_and_tables_are_named(store, interactions):
    store.write(interactions, "interactions")
    with pytest.raises(SourceNotFoundError, match="interactions-ffffffffffffffff"):
        store.read("interactions-ffffffffffffffff")
    with pytest.raises(SourceNotFoundError, match="'../etc'"):
        store.get("../etc")
    with pytest.raises(SourceNotFoundError, match="no snapshot of table 'sales'"):
        store.read_latest("sales")
    with pytest.raises(SourceNotFoundError, match="'missing-1'"):
        store.write(interactions, "interactions", parent="missing-1")
    with pytest.raises(SourceNotFoundError, match="interactions-ffff"):
        diff_snapshots(store, "interactions-ffff", store.latest("interactions").id)


def test_bad_frames_are_refused(store):
    with pytest.raises(ConfigError, match="'Sales-2'"):
        store.write(pd.DataFrame({"a": [1]}), "Sales-2")
    with pytest.raises(SchemaError, match="no columns"):
        store.write(pd.DataFrame(), "sales")
    with pytest.raises(SchemaError, match=r"duplicate column names \['a'\]"):
        store.write(pd.DataFrame([[1, 2]], columns=["a", "a"]), "sales")
    with pytest.raises(SchemaError, match="reset_index"):
        store.write(pd.DataFrame({"a": [1]}, index=pd.Index([5], name="key")), "sales")
    with pytest.raises(SchemaError, match="no column"):
        store.read(store.write(pd.DataFrame({"a": [1]}), "sales").id, columns=["b"])
    assert len(store.list()) == 1


def test_catalog_diff_on_versioned_items(store):
    old = pd.DataFrame({
        "item_id": [1, 2, 3, 3],
        "title": ["tea", "coffee", "cocoa", "hot cocoa"],
        "price": [2.0, 4.0, 3.0, 3.5],
        "valid_from": pd.to_datetime(["2024-01-01"] * 3 + ["2024-02-01"]),
    })
    new = pd.DataFrame({
        "item_id": [1, 2, 3, 3, 4],
        "title": ["tea", "coffee", "cocoa", "hot cocoa", "juice"],
        "price": [2.0, 4.0, 3.0, 3.5, 1.0],
        "valid_from": pd.to_datetime(["2024-01-01"] * 3 + ["2024-02-01", "2024-03-01"]),
    })
    new.loc[1, "price"] = 4.4           # coffee: price changed
    new = new[new["item_id"] != 1]      # tea removed
    a = store.write(old, "catalog")
    b = store.write(new.reset_index(drop=True), "catalog")
    diff = store.diff(a.id, b.id)
    assert diff.key == ["item_id"]
    assert diff.added["item_id"].tolist() == [4]
    assert diff.removed["item_id"].tolist() == [1]
    assert diff.changed["item_id"].tolist() == [2]     # item 3's current row is unchanged
    assert diff.changed["changed_columns"].tolist() == ["price"]
    assert diff.changes[["column", "old", "new"]].values.tolist() == [["price", 4.0, 4.4]]
    assert diff.summary()["added"] == 1 and diff.summary()["changed"] == 1


def test_row_diff_counts_duplicates_and_schema_changes(store):
    old = pd.DataFrame({"a": [1, 1, 2], "b": ["x", "x", "y"]})
    new = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"], "c": [0, 0, 0]})
    diff = store.diff(store.write(old, "t").id, store.write(new, "t").id)
    assert diff.key == []
    assert diff.removed.values.tolist() == [[1, "x"]]
    assert diff.added[["a", "b"]].values.tolist() == [[3, "z"]]
    assert diff.columns_added == ["c"] and diff.columns_removed == []


def test_sql_views_follow_the_latest_snapshot(store, interactions):
    first = store.write(interactions, "interactions")
    assert store.sql("select count(*) as n from interactions")["n"].item() == len(interactions)
    store.write(interactions.head(100), "interactions", parent=first.id)
    assert store.sql("select count(*) as n from interactions")["n"].item() == 100
    n = store.sql(f"select count(*) as n from snapshot('{first.id}')")["n"].item()
    assert n == len(interactions)


def test_retention_keeps_recent_detail_and_exact_weekly_counts(store, interactions):
    source = store.write(interactions, "interactions")
    out = apply_retention(store, window_days=90)
    cutoff = interactions["ts"].max() - pd.Timedelta(days=90)
    recent = store.read(out["interactions_recent"].id)
    in_window = interactions["ts"] >= cutoff
    sessions = interactions[["user_id", "session_id"]].apply(tuple, axis=1)
    is_recent = in_window | sessions.isin(set(sessions[in_window]))
    assert (is_recent & ~in_window).sum() > 0  # some sessions straddle the cutoff
    expected_recent = interactions[is_recent].reset_index(drop=True)
    pd.testing.assert_frame_equal(recent, expected_recent)

    older = interactions[~is_recent].copy()
    older["week"] = older["ts"].dt.to_period("W-SUN").dt.start_time
    names = {"view": "views", "click": "clicks", "add_to_cart": "add_to_carts",
             "order": "orders", "rating": "ratings"}
    expected = (older.assign(kind=older["event"].map(names))
                .pivot_table(index=["week", "user_id", "item_id"], columns="kind",
                             values="value", aggfunc="size", fill_value=0))
    pairs = store.read(out["interactions_weekly_user_item"].id).set_index(
        ["week", "user_id", "item_id"])
    assert len(pairs) == len(expected)
    for column in names.values():
        np.testing.assert_array_equal(pairs.loc[expected.index, column].to_numpy(),
                                      expected[column].to_numpy())
    # aggregates sum to the detail they replace, and detail + aggregates = everything
    items = store.read(out["interactions_weekly_item"].id)
    counts = older["event"].value_counts()
    for event, column in names.items():
        assert items[column].sum() == pairs[column].sum() == counts[event]
    assert items[list(names.values())].to_numpy().sum() + len(recent) == len(interactions)
    units = older.loc[older["event"] == "order", "value"].sum()
    assert items["units"].sum() == pytest.approx(units)
    assert (items["week"].dt.dayofweek == 0).all()
    assert all(s.parent == source.id for s in out.values())


def test_retention_with_explicit_now_and_bad_input(store, interactions):
    store.write(interactions, "interactions")
    out = apply_retention(store, window_days=30, now="2024-06-01", keep_whole_sessions=False)
    recent = store.read(out["interactions_recent"].id)
    assert recent["ts"].min() >= pd.Timestamp("2024-05-02")
    assert len(recent) == (interactions["ts"] >= pd.Timestamp("2024-05-02")).sum()
    no_sessions = store.write(interactions.drop(columns="session_id"), "clicks")
    out = apply_retention(store, snap_id=no_sessions.id, window_days=30)
    assert set(out) == {"clicks_recent", "clicks_weekly_user_item", "clicks_weekly_item"}
    with pytest.raises(ConfigError, match="window_days=0"):
        apply_retention(store, window_days=0)
    bare = store.write(pd.DataFrame({"user_id": [1]}), "bare")
    with pytest.raises(SchemaError, match=bare.id):
        apply_retention(store, snap_id=bare.id)
