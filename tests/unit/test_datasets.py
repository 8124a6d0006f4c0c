"Data resolution: one place for sources, ids that travel, and no synthetic data in place of a missing table."
import pandas as pd
import pytest

from retail_workbench.core import ConfigError, DataError, SchemaError, SourceNotFoundError
from retail_workbench.data.datasets import (find_data_file, load_sessions, resolve_source,
                                            synthetic_world_size)
from retail_workbench.data.store import SnapshotStore

SMALL = "synthetic:n_users=40,n_items=24,n_days=20,n_stores=1,n_sales_items=2"


def test_a_missing_table_is_an_error_naming_it_never_a_synthetic_stand_in(workspace_home):
    store = SnapshotStore()
    only = store.write(pd.DataFrame({"user_id": [1, 2], "item_id": [3, 4],
                                     "ts": pd.to_datetime(["2024-01-01"] * 2)}), "interactions")
    with pytest.raises(DataError, match="table 'catalog' is needed") as err:
        resolve_source("store", tables=("interactions", "catalog"))
    assert "rwb ingest" in err.value.hint
    found = resolve_source("store", tables=("interactions",), optional=("catalog", "customers"))
    assert list(found.tables) == ["interactions"] and found.snapshot_ids == {"interactions": only.id}
    assert store.tables() == ["interactions"]            # nothing was written


def test_ids_win_over_the_latest_heads(workspace_home):
    store = SnapshotStore()
    first = store.write(pd.DataFrame({"item_id": [1], "price": [1.0]}), "catalog")
    store.write(pd.DataFrame({"item_id": [2], "price": [2.0]}), "catalog")   # the new latest
    found = resolve_source({"catalog": first.id}, tables=("catalog",))
    assert found["catalog"]["item_id"].tolist() == [1]
    assert resolve_source(first.id[:14], tables=("catalog",)).snapshot_ids == {"catalog": first.id}
    assert resolve_source("catalog", tables=("catalog",))["catalog"]["item_id"].tolist() == [2]


def test_synthetic_only_by_name_and_written_without_moving_heads(workspace_home):
    made = resolve_source(SMALL, tables=("interactions", "sales"), write=True)
    assert set(made.snapshot_ids) == {"interactions", "sales"} and made.truth is not None
    assert SnapshotStore().tables() == []                # by id only: no table became "latest"
    again = resolve_source(SMALL, tables=("interactions", "sales"), write=True)
    assert again.snapshot_ids == made.snapshot_ids       # same world, same content, same ids
    headed = resolve_source(SMALL, tables=("sales",), write=True, head=True)
    assert SnapshotStore().latest("sales").id == headed.snapshot_ids["sales"]
    with pytest.raises(ConfigError, match="name=integer"):
        synthetic_world_size("synthetic:tiny")


def test_files_frames_and_bad_specs(workspace_home, tmp_path):
    sample = find_data_file("tests/fixtures/online_retail/online_retail_sample.csv")
    retail = resolve_source(str(sample), tables=("interactions",), format="online_retail")
    assert len(retail["interactions"]) > 0 and retail.snapshot_ids == {}
    frame = pd.DataFrame({"date": pd.to_datetime(["2024-01-01"]), "store_id": ["s"],
                          "item_id": [1], "units": [2.0], "price": [1.0], "promo": [False]})
    frame.to_parquet(tmp_path / "sales.parquet")
    as_file = resolve_source(str(tmp_path / "sales.parquet"), tables=("sales",), write=True)
    as_frame = resolve_source(frame, tables=("sales",), write=True)
    assert as_file.snapshot_ids == as_frame.snapshot_ids
    with pytest.raises(ConfigError, match="say which loader"):
        resolve_source(str(sample), tables=("interactions", "customers"))
    with pytest.raises(SourceNotFoundError, match="not a snapshot"):
        resolve_source("my_crm", tables=("customers",))
    with pytest.raises(ConfigError, match="not a snapshot id"):
        resolve_source(42, tables=("sales",))


def test_find_data_file_and_sessions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # the shipped fixture is still found via the project root
    assert find_data_file("tests/fixtures/online_shoppers/online_shoppers_sample.parquet").is_file()
    with pytest.raises(SourceNotFoundError, match="missing.csv"):
        find_data_file("missing.csv")
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "s.csv", index=False)
    with pytest.raises(SchemaError, match="no outcome column 'Revenue'"):
        load_sessions(tmp_path / "s.csv")
