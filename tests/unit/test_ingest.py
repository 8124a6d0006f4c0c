"ingest: load, verify, snapshot; `rwb ingest` and `rwb validate`; nothing half-written on failure."
import contextlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from retail_workbench.cli.app import main
from retail_workbench.core import ConfigError, DataError
from retail_workbench.data.ingest import check_source_tables, ingest
from retail_workbench.data.store import SnapshotStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RETAIL_CSV = FIXTURES / "online_retail" / "online_retail_sample.csv"


def rwb(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def _store_files(store: SnapshotStore) -> list:
    return sorted(p.relative_to(store.root) for p in store.root.rglob("*") if p.is_file())


def test_ingest_stores_clean_and_quarantine_and_is_idempotent():
    store = SnapshotStore()
    summary = ingest(RETAIL_CSV, "online_retail", store=store)
    assert summary["rows_in"] == 3000
    assert summary["rows_clean"] + summary["rows_quarantined"] == 3000
    assert summary["rules"]["duplicate_row"] == 44 and summary["rules"]["cancellation"] == 26
    clean = store.read(summary["snapshot_id"])
    quarantine = store.read(summary["quarantine_id"])
    assert len(clean) == summary["rows_clean"] and len(quarantine) == summary["rows_quarantined"]
    assert store.get(summary["quarantine_id"]).parent == summary["snapshot_id"]
    assert summary["tables"]["customers"]["snapshot_id"].startswith("customers-")
    files = _store_files(store)
    again = ingest(RETAIL_CSV, "online_retail", store=store)
    assert again["snapshot_id"] == summary["snapshot_id"]
    assert again["quarantine_id"] == summary["quarantine_id"]
    assert _store_files(store) == files  # nothing new written


def test_ingest_checks_sales_against_nothing_and_movielens_catalog_without_prices():
    m5 = ingest(FIXTURES / "m5", "m5", store=SnapshotStore())
    assert (m5["table"], m5["rows_in"], m5["rows_quarantined"]) == ("sales", 42, 7)
    ml = check_source_tables(FIXTURES / "movielens" / "ml-100k", "movielens").summary()
    assert ml["tables"]["catalog"]["rows_quarantined"] == 0  # films have no price: rule skipped
    assert ml["rows_clean"] == 12 and ml["rules"] == {}


def _missing(folder):
    return folder / "missing.csv"


def _empty(folder):
    (folder / "empty.csv").write_text("")
    return folder / "empty.csv"


def _latin(folder):
    (folder / "latin.csv").write_bytes(RETAIL_CSV.read_bytes().replace(b"WHITE METAL",
                                                                       b"WHITE \xa3METAL"))
    return folder / "latin.csv"


def _typo(folder):
    (folder / "typo.csv").write_text(RETAIL_CSV.read_text().replace("UnitPrice", "UnitPrise", 1))
    return folder / "typo.csv"


def _dates(folder):
    pd.read_csv(RETAIL_CSV).assign(InvoiceDate="soon").to_csv(folder / "dates.csv", index=False)
    return folder / "dates.csv"


@pytest.mark.parametrize("make_bad, message", [
    (_missing, "missing.csv does not exist"), (_empty, "empty.csv is empty"),
    (_latin, "latin.csv is not utf-8 text"), (_typo, "did you mean 'UnitPrise'"),
    (_dates, "dates.csv, column 'InvoiceDate': 3000 of 3000 values are not dates"),
], ids=["missing", "empty", "non_utf8", "misspelt", "garbage_dates"])
def test_bad_input_raises_and_writes_nothing(tmp_path, make_bad, message):
    store = SnapshotStore(tmp_path / "store")
    path = make_bad(tmp_path)
    with pytest.raises(DataError, match=message):
        ingest(path, "online_retail", store=store)
    assert store.list().empty
    assert not list((store.root / "snapshots").iterdir())


def test_wrong_option_for_a_format_is_a_config_error():
    with pytest.raises(ConfigError, match="does not take option"):
        check_source_tables(RETAIL_CSV, "online_retail", mapping={"a": "b"})


def test_cli_ingest_json_and_validate(workspace_home):
    code, out, _ = rwb("ingest", RETAIL_CSV, "--format", "online_retail", "--json")
    assert code == 0
    summary = json.loads(out)
    assert {"snapshot_id", "rows_in", "rows_clean", "rows_quarantined", "rules"} <= set(summary)
    assert SnapshotStore().read(summary["snapshot_id"]).shape[0] == summary["rows_clean"]
    code, out, _ = rwb("validate", RETAIL_CSV, "--format", "online_retail")
    assert code == 0 and "duplicate_row" in out and "user_id is missing" in out
    code, _, _ = rwb("validate", RETAIL_CSV, "--format", "online_retail", "--strict")
    assert code == 1


def test_cli_validate_stores_nothing(workspace_home):
    code, out, _ = rwb("validate", FIXTURES / "retailrocket" / "events.csv", "--format",
                       "retailrocket", "--json")
    assert code == 0 and json.loads(out)["rows_clean"] == 12
    assert not (workspace_home / "data" / "store").exists() or SnapshotStore().list().empty


@pytest.mark.parametrize("args, message", [
    (["ingest", "nowhere.csv", "--format", "online_retail"], "nowhere.csv does not exist"),
    (["ingest", RETAIL_CSV, "--format", "onlineretail"], "Did you mean 'online_retail'"),
    (["validate", RETAIL_CSV, "--format", "generic", "--map", "userId"], "NAME=VALUE"),
    (["ingest", FIXTURES / "movielens" / "ml-100k" / "u.item", "--format", "generic"],
     "is not utf-8 text"),
    (["validate", FIXTURES / "m5" / "calendar.csv", "--format", "m5"], "neither the wide M5 layout"),
])
def test_cli_errors_are_one_line_and_exit_1(args, message):
    code, out, err = rwb(*args)
    assert code == 1
    assert message in err and err.count("\n") == 1


def test_cli_generic_with_mapping(workspace_home):
    code, out, _ = rwb("ingest", FIXTURES / "movielens" / "ml-latest-small" / "ratings.csv",
                       "--format", "generic", "--map", "userId=user_id", "--map", "movieId=item_id",
                       "--map", "timestamp=ts", "--map", "rating=value", "--set", "event=rating",
                       "--set", "session_id=", "--time-unit", "s", "--json")
    assert code == 0, out
    assert json.loads(out)["rows_clean"] == 8


@pytest.mark.slow
def test_full_online_retail_through_rwb_ingest(shared_data, workspace_home):
    path = shared_data / "online_retail.parquet"
    code, out, err = rwb("ingest", path, "--format", "online_retail", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["rows_in"] == 541_909
    assert summary["rows_clean"] + summary["rows_quarantined"] == 541_909
    rules = summary["rules"]
    assert rules["user_id_required"] == 135_080   # missing customer ids
    assert rules["cancellation"] == 9_288         # cancellations, kept as returns
    assert rules["duplicate_row"] == 5_268        # exact duplicate lines
    assert rules["price_positive"] == 2_517       # zero (and two negative) prices
    assert rules["non_product_code"] >= 2_900     # POST, DOT, M, BANK CHARGES, ...
    quarantine = SnapshotStore().read(summary["quarantine_id"])
    assert len(quarantine) == summary["rows_quarantined"]
    code, out, _ = rwb("ingest", path, "--format", "online_retail", "--json")
    assert json.loads(out)["snapshot_id"] == summary["snapshot_id"]


def test_an_s3_source_that_cannot_be_opened_is_one_clear_error(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")   # nothing listens there
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    import s3fs
    try:
        with pytest.raises(DataError, match="cannot open s3://bucket/x.csv"):
            check_source_tables("s3://bucket/x.csv", "online_retail")
    finally:
        s3fs.S3FileSystem.clear_instance_cache()   # no later test may reuse this endpoint


def test_cli_empty_file_exits_1_and_stores_nothing(tmp_path, workspace_home):
    (tmp_path / "empty.csv").write_text("")
    code, _, err = rwb("ingest", tmp_path / "empty.csv", "--format", "online_retail")
    assert code == 1 and "empty.csv is empty" in err
    assert not (workspace_home / "data" / "store" / "snapshots").exists() or \
        not list((workspace_home / "data" / "store" / "snapshots").iterdir())


@pytest.mark.parametrize("source, format_name", [
    (RETAIL_CSV, "online_retail"), (FIXTURES / "online_retail" / "online_retail_sample.xlsx",
                                    "online_retail"),
    (FIXTURES / "movielens" / "ml-100k", "movielens"),
    (FIXTURES / "movielens" / "ml-latest-small", "movielens"),
    (FIXTURES / "m5", "m5"), (FIXTURES / "retailrocket", "retailrocket"),
])
def test_every_fixture_format_keeps_every_row(source, format_name):
    check = check_source_tables(source, format_name)
    for table, result in check.results.items():
        assert result.rows_in == result.rows_clean + result.rows_quarantined > 0, table
    problems = check.summary()["tables"][check.main_table]["problems"]
    for problem in problems:
        assert 0 < len(problem["examples"]) <= 3 and "row" in problem["examples"][0]


def test_an_ingest_with_no_clean_row_stores_nothing_and_exits_non_zero(tmp_path, workspace_home):
    priceless = tmp_path / "priceless.csv"
    pd.read_csv(RETAIL_CSV, encoding="latin-1").assign(UnitPrice=0).to_csv(priceless, index=False)
    code, out, err = rwb("ingest", priceless, "--format", "online_retail")
    assert code == 1, err
    assert "none of the 3,000 rows of interactions is clean" in err
    assert "price_positive: 3,000 rows" in err and "nothing was stored" in err
    assert SnapshotStore().tables() == []
    code, out, err = rwb("ingest", priceless, "--format", "online_retail", "--allow-empty", "--json")
    assert code == 0, err
    assert json.loads(out)["rows_clean"] == 0 and "interactions" in SnapshotStore().tables()
