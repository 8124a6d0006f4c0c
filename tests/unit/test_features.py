"Feature store: point-in-time correctness (property test against brute force), online serving."
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retail_workbench.core import ConfigError, SchemaError, SourceNotFoundError
from retail_workbench.data.features import DEFAULT_FEATURES, Feature, FeatureStore
from retail_workbench.data.store import SnapshotStore

BASE = pd.Timestamp("2024-01-01")
STEP = pd.Timedelta(hours=12)  # a coarse time grid, so event and row times often coincide
UI, U, I = ("user_id", "item_id"), ("user_id",), ("item_id",)

PROPERTY_FEATURES = [
    Feature("ui_orders_24h", UI, "interactions", "count", events="order", window="24h"),
    Feature("ui_events_all", UI, "interactions", "count"),
    Feature("ui_value_sum_48h", UI, "interactions", "sum", column="value", window="48h"),
    Feature("ui_value_mean", UI, "interactions", "mean", column="value"),
    Feature("ui_value_max_24h", UI, "interactions", "max", column="value", window="24h"),
    Feature("ui_value_min", UI, "interactions", "min", column="value"),
    Feature("ui_value_std_48h", UI, "interactions", "std", column="value", window="48h"),
    Feature("ui_sessions", UI, "interactions", "count_distinct", column="session_id"),
    Feature("u_days_since_order", U, "interactions", "days_since_last", events="order"),
    Feature("u_views_24h", U, "interactions", "count", events="view", window="24h"),
    Feature("i_ctr_48h", I, "interactions", "ratio", events="click", per_events="view",
            window="48h"),
]


def brute_force(events: dict, row: dict, feature: Feature):
    "The feature for one entity row, computed the slow obvious way (on numpy arrays)."
    keep = events["ts"] < row["ts"]
    if feature.window is not None:
        keep &= events["ts"] >= row["ts"] - np.timedelta64(pd.Timedelta(feature.window))
    for key in feature.entity:
        keep &= events[key] == row[key]
    picked = keep & np.isin(events["event"], feature.events) if feature.events else keep
    agg = feature.aggregation
    column = events[feature.column][picked] if feature.column else None
    if agg == "count":
        return int(picked.sum())
    if agg == "count_distinct":
        return len(set(column.tolist()))
    if agg == "sum":
        return float(column.sum())
    if agg in ("mean", "min", "max"):
        return float(getattr(np, agg)(column)) if len(column) else np.nan
    if agg == "std":
        return float(np.std(column, ddof=1)) if len(column) > 1 else np.nan
    if agg == "days_since_last":
        if not picked.any():
            return np.nan
        return (row["ts"] - events["ts"][picked].max()) / np.timedelta64(1, "D")
    if agg == "ratio":
        views = (keep & np.isin(events["event"], feature.per_events)).sum()
        return picked.sum() / views if views else np.nan
    raise AssertionError(agg)


event_rows = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 8),
              st.sampled_from(["view", "click", "order"]), st.integers(0, 5),
              st.integers(1, 4)),
    min_size=1, max_size=40)
entity_rows = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 9)),
                       min_size=1, max_size=8)

@pytest.fixture(scope="module")
def scratch_store(tmp_path_factory):
    return SnapshotStore(tmp_path_factory.mktemp("features") / "store")


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(event_rows, entity_rows, st.integers(0, 59))
def test_historical_features_match_brute_force_and_never_see_the_future(scratch_store, rows,
                                                                        entities, minute):
    # times on a coarse grid: events at exactly t, and at exactly t - window, are common
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "step", "event", "session_id",
                                         "value"])
    events["ts"] = (BASE + events.pop("step") * STEP).astype("datetime64[ns]")
    events["value"] = events["value"].astype(float)
    events = events[["user_id", "item_id", "ts", "event", "session_id", "value"]]
    entity_df = pd.DataFrame(entities, columns=["user_id", "item_id", "step"])
    entity_df["ts"] = (BASE + entity_df.pop("step") * STEP).astype("datetime64[ns]")
    entity_df.loc[entity_df.index[-1], "ts"] += pd.Timedelta(minutes=minute)

    store = scratch_store
    store.write(events, "interactions")
    fs = FeatureStore(store, features=PROPERTY_FEATURES)
    got = fs.get_historical_features(entity_df)

    arrays = {c: events[c].to_numpy() for c in events.columns}
    for i, row in enumerate(entity_df.to_dict("records")):
        row["ts"] = np.datetime64(row["ts"], "ns")
        for feature in PROPERTY_FEATURES:
            expected = brute_force(arrays, row, feature)
            actual = got[feature.name].iloc[i]
            if pd.isna(expected):
                assert pd.isna(actual), (feature.name, row, actual)
            else:
                assert actual == pytest.approx(expected, rel=1e-9, abs=1e-9), (
                    feature.name, row, actual, expected)

    # events at or after a row's time can be changed at will without changing its features
    first = entity_df.iloc[[0]]
    future = events["ts"] >= first["ts"].iloc[0]
    rewritten = events.copy()
    rewritten.loc[future, "event"] = "order"
    rewritten.loc[future, "value"] = 99.0
    rewritten.loc[future, ["user_id", "item_id"]] = first[["user_id", "item_id"]].to_numpy()
    store.write(rewritten, "interactions")
    again = fs.get_historical_features(first)
    pd.testing.assert_frame_equal(again, got.iloc[[0]])


def test_boundaries_event_at_t_excluded_event_at_window_start_included(tmp_path):
    store = SnapshotStore(tmp_path / "store")
    t = pd.Timestamp("2024-01-10 12:00:00")
    store.write(pd.DataFrame({
        "user_id": [1, 1, 1], "item_id": [1, 1, 1],
        "ts": pd.DatetimeIndex([t - pd.Timedelta("24h"), t - pd.Timedelta("24h1ns"), t]),
        "event": ["order"] * 3, "session_id": [1, 2, 3], "value": [1.0, 1.0, 1.0],
    }), "interactions")
    fs = FeatureStore(store, features=PROPERTY_FEATURES[:2])
    got = fs.get_historical_features(pd.DataFrame({"user_id": [1, 1], "item_id": [1, 1],
                                                   "ts": [t, t + pd.Timedelta(1, "ns")]}))
    assert got["ui_orders_24h"].tolist() == [1, 1]  # at t + 1ns the window has moved on
    assert got["ui_events_all"].tolist() == [2, 3]


@pytest.fixture
def world_store(tmp_path):
    from retail_workbench.data.synth import make_world

    world = make_world(n_users=80, n_items=30, n_days=60, seed=3, n_stores=1)
    store = SnapshotStore(tmp_path / "store")
    for name, table in world.tables.items():
        store.write(table, name)
    return world, store


def test_online_values_equal_historical_values_at_materialization(world_store, tmp_path):
    world, store = world_store
    fs = FeatureStore(store, online_path=tmp_path / "online.sqlite")
    as_of = pd.Timestamp("2023-02-20 12:00:00")
    written = fs.materialize(as_of=as_of)
    assert written["online__item_id"] == world.tables["catalog"]["item_id"].nunique()
    keys = world.interactions[["user_id", "item_id"]].drop_duplicates().head(50)
    online = fs.get_online_features(keys)
    offline = fs.get_historical_features(keys.assign(ts=as_of))
    names = list(fs.features)
    pd.testing.assert_frame_equal(online[names].astype(float).reset_index(drop=True),
                                  offline[names].astype(float).reset_index(drop=True))
    # unseen keys get fill values, stale values are not served
    unseen = fs.get_online_features({"user_id": [10**6], "item_id": [10**6]})
    assert unseen["user_item_orders_30d"].item() == 0
    assert np.isnan(unseen["item_ctr_30d"].item())
    later = fs.get_online_features(keys.head(2), now=pd.Timestamp.now() + pd.Timedelta(days=3))
    assert later["user_item_orders_30d"].isna().all()  # ttl 1d
    fresher = fs.get_online_features(keys.head(2), now=pd.Timestamp.now() + pd.Timedelta(days=3),
                                     features=["item_list_price"])  # ttl 7d: still served
    assert fresher["item_list_price"].notna().all()


def test_monetary_value_uses_the_price_valid_at_each_order(tmp_path):
    store = SnapshotStore(tmp_path / "store")
    store.write(pd.DataFrame({
        "user_id": ["u1", "u1"], "item_id": ["a", "a"],
        "ts": pd.to_datetime(["2024-01-05 10:00:00", "2024-02-05 10:00:00"]),
        "event": ["order", "order"], "session_id": ["s1", "s2"], "value": [2.0, 1.0],
    }), "interactions")
    store.write(pd.DataFrame({
        "item_id": ["a", "a"], "title": ["x", "x"], "category": ["c", "c"], "brand": ["b", "b"],
        "price": [10.0, 30.0],
        "valid_from": pd.to_datetime(["2024-01-01 00:00:00", "2024-02-01 00:00:00"]),
    }), "catalog")
    fs = FeatureStore(store, features=[f for f in DEFAULT_FEATURES
                                       if f.name in ("user_monetary_365d", "user_recency_days")])
    got = fs.get_historical_features(pd.DataFrame({
        "user_id": ["u1", "u1", "u1"],
        "ts": pd.to_datetime(["2024-01-05 10:00:00", "2024-01-20 00:00:00",
                              "2024-03-01 00:00:00"])}))
    assert got["user_monetary_365d"].tolist() == [0.0, 20.0, 50.0]
    assert np.isnan(got["user_recency_days"].iloc[0])
    assert fs.snapshot_ids_.keys() == {"interactions", "catalog"}


def test_pinned_snapshot_and_rematerialize(tmp_path):
    store = SnapshotStore(tmp_path / "store")
    events = pd.DataFrame({"user_id": [1, 1], "item_id": [5, 5],
                           "ts": pd.to_datetime(["2024-01-01 00:00:00", "2024-01-02 00:00:00"]),
                           "event": ["order", "order"], "session_id": [1, 2],
                           "value": [1.0, 1.0]})
    old = store.write(events.head(1), "interactions")
    store.write(events, "interactions")
    feature = Feature("orders", UI, "interactions", "count", events="order")
    entity = pd.DataFrame({"user_id": [1], "item_id": [5], "ts": [pd.Timestamp("2024-02-01")]})
    pinned = FeatureStore(store, features=[feature], snapshots={"interactions": old.id},
                          online_path=tmp_path / "o.sqlite")
    assert pinned.get_historical_features(entity)["orders"].item() == 1
    assert pinned.snapshot_ids_ == {"interactions": old.id}
    latest = FeatureStore(store, features=[feature], online_path=tmp_path / "o.sqlite")
    assert latest.get_historical_features(entity)["orders"].item() == 2
    pinned.materialize()
    assert latest.get_online_features({"user_id": [1], "item_id": [5]})["orders"].item() == 1
    latest.materialize()
    assert latest.get_online_features({"user_id": [1], "item_id": [5]})["orders"].item() == 2


def test_bad_declarations_and_requests(tmp_path):
    with pytest.raises(ConfigError, match="needs `events`"):
        Feature("ctr", I, "interactions", "ratio", events="click")
    with pytest.raises(ConfigError, match="'Bad-Name'"):
        Feature("Bad-Name", I, "interactions", "count")
    store = SnapshotStore(tmp_path / "store")
    fs = FeatureStore(store, online_path=tmp_path / "o.sqlite")
    entity = pd.DataFrame({"item_id": [1], "ts": [pd.Timestamp("2024-01-01")]})
    with pytest.raises(SourceNotFoundError, match=r"\['catalog', 'interactions', 'sales'\]"):
        fs.get_historical_features(entity)
    with pytest.raises(SourceNotFoundError, match="materialize"):
        fs.get_online_features({"item_id": [1]})
    with pytest.raises(SchemaError, match="no declared feature"):
        fs.get_historical_features(pd.DataFrame({"shop": [1], "ts": [pd.Timestamp("2024-01-01")]}))
    store.write(pd.DataFrame({"item_id": [1], "ts": [pd.Timestamp("2023-12-01")]}),
                "interactions")
    only_count = FeatureStore(store, features=[Feature("n", I, "interactions", "count",
                                                       events="view")])
    with pytest.raises(SchemaError, match=r"no column\(s\) \['event'\]"):
        only_count.get_historical_features(entity)
    with pytest.raises(Exception, match="missing times"):
        FeatureStore(store, features=[Feature("n", I, "interactions", "count")]
                     ).get_historical_features(entity.assign(ts=pd.NaT))
