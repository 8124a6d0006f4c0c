"""Bad input gets one clear line (or a reported schema change), never a silent wrong answer:
numeric timestamps without a unit, decimal commas, schema drift, empty files, a busy port and bad
HTTP parameters."""
import contextlib
import io
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest

from retail_workbench.cli.app import main
from retail_workbench.core import ConfigError, DataError
from retail_workbench.data.loaders import load
from retail_workbench.data.verify import verify
from retail_workbench.ops.onnx import annotate_recommender, build_score_graph
from retail_workbench.ops.serving import RecommendService

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RETAIL_CSV = FIXTURES / "online_retail" / "online_retail_sample.csv"
CDNOW_CSV = FIXTURES / "cdnow" / "cdnow_sample.csv"
CDNOW_ARGS = ["--format", "generic", "--map", "customer_id=user_id", "--map", "date=ts",
              "--map", "number_of_cds=value", "--set", "item_id=cd", "--set", "event=order",
              "--set", "session_id="]


def rwb(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def one_line_error(code: int, err: str) -> str:
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


# --- numeric timestamps -------------------------------------------------------------------------

def test_integer_invoice_dates_are_refused_unless_their_unit_is_given(tmp_path):
    lines = pd.read_csv(RETAIL_CSV, dtype={"InvoiceNo": str, "StockCode": str})
    when = pd.to_datetime(lines["InvoiceDate"], format="%m/%d/%Y %H:%M")
    seconds = when.astype("datetime64[s]").astype("int64")
    path = tmp_path / "retail_epoch.parquet"
    lines.assign(InvoiceDate=seconds).to_parquet(path)
    with pytest.raises(DataError, match="column 'InvoiceDate': numbers .* time_unit='s' "
                                        r"\(CLI: --time-unit s\)"):
        load(path, "online_retail")
    ts = load(path, "online_retail", time_unit="s")["interactions"]["ts"]
    assert ts.min() == pd.Timestamp("2010-12-01 08:26") and ts.max().year == 2010
    err = one_line_error(*rwb("validate", path, "--format", "online_retail")[::2])
    assert "--time-unit s" in err
    code, out, _ = rwb("validate", path, "--format", "online_retail", "--time-unit", "s", "--json")
    assert code == 0 and json.loads(out)["rows_in"] == 3000


def test_a_frame_with_numeric_timestamps_is_not_verified_as_1970():
    frame = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "y"],
                          "ts": [1291191960, 1291192000], "event": "order",
                          "session_id": None, "value": [1.0, 2.0]})
    with pytest.raises(DataError, match="column 'ts': numbers"):
        verify(frame, "interactions")


def test_cdnow_yyyymmdd_dates_need_and_take_a_date_format(workspace_home):
    err = one_line_error(*rwb("ingest", CDNOW_CSV, *CDNOW_ARGS)[::2])
    assert "look like yyyymmdd dates" in err and "--date-format %Y%m%d" in err
    assert not (workspace_home / "data" / "store").exists()  # nothing stored
    code, out, _ = rwb("ingest", CDNOW_CSV, *CDNOW_ARGS, "--date-format", "%Y%m%d", "--json")
    assert code == 0
    summary = json.loads(out)
    assert (summary["rows_in"], summary["rows_clean"]) == (600, 600)
    tables = load(CDNOW_CSV, "generic", mapping={"customer_id": "user_id", "date": "ts"},
                  date_format="%Y%m%d")
    assert tables["interactions"]["ts"].min() == pd.Timestamp("1997-01-01")


def test_full_cdnow_with_a_date_format(shared_data):
    tables = load(shared_data / "cdnow_transactions.parquet", "generic",
                  mapping={"customer_id": "user_id", "date": "ts", "number_of_cds": "value"},
                  defaults={"item_id": "cd", "event": "order", "session_id": None},
                  date_format="%Y%m%d")
    result = verify(tables["interactions"], "interactions")
    assert result.rows_in == 69_659
    # the only rows kept out repeat a line (customer, day, number of CDs) exactly
    failing = result.report[result.report["count"] > 0]
    assert failing["rule"].tolist() == ["duplicate_row"] and result.rows_quarantined == 255
    ts = result.clean["ts"]
    assert (ts.min(), ts.max()) == (pd.Timestamp("1997-01-01"), pd.Timestamp("1998-06-30"))


# --- decimal commas -----------------------------------------------------------------------------

def _comma_copy(tmp_path) -> Path:
    lines = pd.read_csv(RETAIL_CSV, dtype=str)
    path = tmp_path / "retail_comma.csv"
    lines.assign(UnitPrice=lines["UnitPrice"].str.replace(".", ",")).to_csv(path, index=False)
    return path


def test_decimal_comma_prices_are_named_and_read_with_decimal_comma(tmp_path):
    path = _comma_copy(tmp_path)
    with pytest.raises(DataError, match=r"column 'UnitPrice': [\d,]+ of 3,000 values use a "
                                        "decimal comma"):
        load(path, "online_retail")
    err = one_line_error(*rwb("ingest", path, "--format", "online_retail")[::2])
    assert "--decimal ," in err
    comma = load(path, "online_retail", decimal=",")["interactions"]
    dot = load(RETAIL_CSV, "online_retail")["interactions"]
    np.testing.assert_allclose(comma["price"].astype(float), dot["price"].astype(float))
    code, out, _ = rwb("validate", path, "--format", "online_retail", "--decimal", ",", "--json")
    assert code == 0 and json.loads(out)["rows_clean"] == verify(dot, "interactions").rows_clean


def test_generic_decimal_comma_and_a_bad_separator(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text('user,when,amount\nu1,2024-01-02,"1.234,50"\nu2,2024-01-03,"2,55"\n')
    options = dict(mapping={"user": "user_id", "when": "ts", "amount": "value"})
    with pytest.raises(DataError, match="column 'amount': 2 of 2 values use a decimal comma"):
        load(path, "generic", **options)
    assert load(path, "generic", decimal=",", **options)["interactions"]["value"].tolist() == \
        [1234.5, 2.55]
    with pytest.raises(ConfigError, match="decimal separator ';'"):
        load(path, "generic", decimal=";", **options)


# --- drift: schema changes and unreadable files ------------------------------------------------

@pytest.fixture
def tables(tmp_path):
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"price": rng.normal(10, 2, 2000), "units": rng.poisson(3, 2000),
                        "category": rng.choice(list("abc"), 2000)})
    paths = {"ref": ref, "dropped": ref.drop(columns=["units"]),
             "retyped": ref.assign(price=ref["price"].round(2).astype(str)),
             "added": ref.assign(store_id=1), "unrelated": pd.DataFrame({"visits": [1, 2, 3]})}
    for name, frame in paths.items():
        frame.to_parquet(tmp_path / f"{name}.parquet")
    (tmp_path / "empty.parquet").write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize("current, says", [
    ("dropped", "schema drift: column 'units' dropped (was int64)"),
    ("retyped", "schema drift: column 'price' retyped (float64 -> "),
    ("added", "schema drift: column 'store_id' added (int64)"),
])
def test_drift_reports_schema_changes_as_critical(tables, current, says):
    args = ["drift", "--reference", tables / "ref.parquet", "--current",
            tables / f"{current}.parquet"]
    code, out, _ = rwb(*args)
    assert code == 0 and f"[critical] {says}" in out and "schema changes: 1;" in out
    assert rwb(*args, "--fail-on", "critical")[0] == 3


def test_drift_with_no_shared_column_and_with_an_empty_file(tables):
    args = ["drift", "--reference", tables / "ref.parquet", "--current"]
    code, out, _ = rwb(*args, tables / "unrelated.parquet")
    assert code == 0 and "no column to compare" in out and "schema changes: 4;" in out
    err = one_line_error(*rwb(*args, tables / "empty.parquet")[::2])
    assert f"{tables / 'empty.parquet'} is empty (0 bytes)" in err


# --- serving ------------------------------------------------------------------------------------

@pytest.fixture
def model_file(tmp_path):
    rng = np.random.default_rng(0)
    graph = build_score_graph(rng.normal(size=(3, 2)).astype(np.float32),
                              rng.normal(size=(5, 2)).astype(np.float32))
    path = tmp_path / "rec.onnx"
    onnx.save(annotate_recommender(graph, ["u0", "u1", "u2"], list(range(5))), path)
    return path


def test_serve_on_a_busy_port_is_one_line_with_the_port(model_file):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        err = one_line_error(*rwb("serve", "--model", model_file, "--port", port,
                                  "--poll", 0)[::2])
    assert f"cannot serve on 127.0.0.1:{port}" in err and "--port" in err


def _answer(url) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as failure:
        return failure.code, json.loads(failure.read())


def test_http_parameters_are_validated_with_errors_of_one_shape(model_file):
    service = RecommendService([str(model_file)], port=0, poll_seconds=0).start()
    try:
        status, body = _answer(service.url + "/recommend?user_id=u1&k=2")
        assert status == 200 and len(body["items"]) == 2
        for query, status, parameter, says in (
                ("user_id=u1&k=abc", 400, "k", "whole number from 1 to 1000, got 'abc'"),
                ("user_id=u1&k=0", 400, "k", "from 1 to 1000"),
                ("user_id=u1&k=100000", 400, "k", "from 1 to 1000"),
                ("k=2", 400, "user_id", "'user_id' is required"),
                ("user_id=" + "x" * 300, 400, "user_id", "at most 256"),
                ("user_id=u1&kk=2", 400, "kk", "takes user_id, k, model"),
                ("user_id=u1&model=other", 404, "model", "is not served here")):
            answer = _answer(service.url + "/recommend?" + query)
            assert answer[0] == status, (query, answer)
            assert set(answer[1]) == {"error", "status", "parameter"}
            assert answer[1]["status"] == status and answer[1]["parameter"] == parameter
            assert says in answer[1]["error"], (query, answer)
        status, body = _answer(service.url + "/nothing")
        assert (status, body["parameter"]) == (404, None) and "answers /recommend" in body["error"]
        status, body = _answer(urllib.request.Request(service.url + "/health", data=b"{}"))
        assert status == 405 and set(body) == {"error", "status", "parameter"}
        assert "POST is not allowed on /health; use GET" in body["error"]
        status, body = _answer(urllib.request.Request(service.url + "/recommend", data=b"{}"))
        assert (status, body["parameter"]) == (400, "user_id")
    finally:
        service.stop()
