"""The Spark engine gives the in-process engine's results: forecasts, backtests, batch scores of every
ONNX family, drift statistics, and the `--engine spark` CLI files. One local[2] session serves the
whole module (a JVM takes seconds to start), and the module runs in one xdist group."""
import json
import warnings

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from retail_workbench.data.engine import java_version, resolve_engine, spark_session

pytestmark = pytest.mark.xdist_group("spark")


@pytest.fixture(scope="session")
def spark():
    "One local[2] session for the worker; never stopped, so a second setup finds it active."
    pytest.importorskip("pyspark")
    if java_version() is None:
        pytest.skip("no Java runtime: `java -version` found none (install openjdk-17)")
    warnings.filterwarnings("ignore", category=FutureWarning, module="pyspark")
    session = spark_session("local[2]")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    return session


@pytest.fixture(scope="module")
def sales():
    from retail_workbench.data.datasets import example_sales
    data = example_sales(n_series=2, n_days=120, seed=3)
    return data["sales"], data["calendar"]


def test_forecasts_and_backtests_equal_the_local_engine(spark, sales):
    from retail_workbench.forecast.backtest import backtest
    from retail_workbench.forecast.demand import DemandForecaster, MovingAverage
    table, calendar = sales
    model = DemandForecaster(n_jobs=1, maxiter=10, arima_window=90, yearly_order=0)
    local = model.fit(table, calendar, engine="local")
    remote = DemandForecaster(**model.get_params()).fit(table, calendar, engine=spark)
    cols = ["store_id", "item_id", "model", "order", "n_obs", "reason"]
    pd.testing.assert_frame_equal(local.fit_report_[cols], remote.fit_report_[cols])
    assert (remote.fit_report_.model == "arima").all()
    expected, got = local.predict(14), remote.predict(14, engine=spark)
    pd.testing.assert_frame_equal(expected, got, check_exact=False, atol=1e-6, rtol=0)
    assert got.forecast.std() > 0  # real forecasts, not a constant
    future = expected[["date", "store_id", "item_id"]].iloc[::2].assign(promo=True)
    pd.testing.assert_frame_equal(local.predict(future=future),
                                  remote.predict(future=future, engine=spark),
                                  check_exact=False, atol=1e-6, rtol=0)
    models = {"ma": MovingAverage(window=14)}
    kwargs = dict(horizon=7, n_windows=2, step=7)
    pd.testing.assert_frame_equal(backtest(models, table, calendar, **kwargs),
                                  backtest(models, table, calendar, engine=spark, **kwargs),
                                  check_exact=False, atol=1e-6, rtol=0)


def _tabular_model(path):
    "A linear ONNX scorer over named features (the tabular family's interface)."
    w = numpy_helper.from_array(np.array([[2.0], [-1.0], [0.5]], np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "linear",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
                              [w])
    from retail_workbench.ops.onnx import OPSET
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=9)
    model.metadata_props.append(onnx.StringStringEntryProto(key="rwb.features",
                                                            value=json.dumps(["a", "b", "c"])))
    onnx.save(model, path)
    return path


def _recommenders(tmp_path, users, items):
    from retail_workbench.ops.onnx import (annotate_recommender, build_score_graph,
                                           build_topk_graph)
    rng = np.random.default_rng(0)
    U, V = rng.normal(size=(len(users), 4)), rng.normal(size=(len(items), 4))
    score = annotate_recommender(build_score_graph(U, V), users, items, popular=[3, 1, 0, 2, 4, 5])
    topk = annotate_recommender(build_topk_graph(U, rng.normal(size=len(users)), V,
                                                 rng.normal(size=len(items))), users, items)
    onnx.save(score, tmp_path / "score.onnx")
    onnx.save(topk, tmp_path / "topk.onnx")
    return tmp_path / "score.onnx", tmp_path / "topk.onnx"


def test_batch_scores_of_every_family_equal_the_local_engine(spark, tmp_path):
    from retail_workbench.ops.serving import score_batch
    users, items = [f"u{i}" for i in range(40)], list(range(500, 530))
    scoring = pd.DataFrame({"user_id": (users + ["cold1", "cold2"]) * 3})
    scoring.to_parquet(tmp_path / "users.parquet")
    rng = np.random.default_rng(1)
    features = pd.DataFrame({"id": range(300), "a": rng.normal(size=300),
                             "b": rng.random(300), "c": 1.0})
    features.to_parquet(tmp_path / "rows.parquet")
    models = [(m, "users.parquet") for m in _recommenders(tmp_path, users, items)]
    models.append((_tabular_model(tmp_path / "linear.onnx"), "rows.parquet"))
    for model, source in models:
        for engine in ("local", spark):
            name = "local" if engine == "local" else "spark"
            report = score_batch(str(model), tmp_path / source, tmp_path / f"{name}.parquet",
                                 k=5, chunk_rows=50, engine=engine)
        expected = pd.read_parquet(tmp_path / "local.parquet")
        got = pd.read_parquet(tmp_path / "spark.parquet")
        pd.testing.assert_frame_equal(expected, got, check_exact=False, atol=1e-6, rtol=0)
        assert report["rows_in"] == len(pd.read_parquet(tmp_path / source))
        assert report["rows_out"] == len(got) > 0
    assert (got.prediction - (2 * features.a - features.b + 0.5)).abs().max() < 1e-5
    score_batch(str(models[0][0]), tmp_path / "users.parquet", tmp_path / "spark.csv", k=2,
                engine=spark)
    assert len(pd.read_csv(tmp_path / "spark.csv")) == 2 * len(scoring)


def test_drift_statistics_equal_the_local_engine(spark):
    from retail_workbench.monitor.drift import data_drift
    rng = np.random.default_rng(2)
    for n in (400, 3000):  # small windows: hypothesis tests; larger: distances
        ref = pd.DataFrame({"price": rng.normal(20, 4, n).round(2),
                            "units": rng.poisson(3, n).astype(float),
                            "level": rng.integers(0, 4, n),
                            "category": rng.choice(list("abcdef"), n),
                            "promo": rng.random(n) < 0.2})
        ref.loc[::17, "price"] = np.nan
        cur = ref.sample(frac=1, random_state=1).reset_index(drop=True)
        cur["price"] = cur["price"] * 1.2
        cur["category"] = rng.choice(list("abcdefg"), n, p=[.3, .2, .1, .1, .1, .1, .1])
        methods = {"units": "psi"} if n > 1000 else {}
        expected = data_drift(ref, cur, methods=methods, max_rows=None)
        got = data_drift(ref, cur, methods=methods, engine=spark)
        pd.testing.assert_frame_equal(expected.columns, got.columns, check_exact=False,
                                      atol=1e-9, rtol=0)
        assert expected.drifted_columns == got.drifted_columns and "price" in got.drifted_columns
        pd.testing.assert_frame_equal(expected.schema, got.schema)
        on_tables = data_drift(spark.createDataFrame(ref), spark.createDataFrame(cur),
                               methods=methods)
        pd.testing.assert_frame_equal(expected.columns, on_tables.columns, check_exact=False,
                                      atol=1e-9, rtol=0)


def test_cli_engine_spark_writes_the_files_of_the_default_engine(spark, sales, tmp_path,
                                                                 monkeypatch):
    from retail_workbench.cli.app import app
    table, _ = sales
    table.to_parquet(tmp_path / "sales.parquet")
    runner = CliRunner()
    for engine in ("local", "spark"):
        result = runner.invoke(app, ["forecast", str(tmp_path / "sales.parquet"), "--horizon", "7",
                                     "--model", "seasonal_naive", "--engine", engine,
                                     "--out", str(tmp_path / f"{engine}.parquet")])
        assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "local.parquet"),
                                  pd.read_parquet(tmp_path / "spark.parquet"))
    model = _tabular_model(tmp_path / "linear.onnx")
    pd.DataFrame({"a": np.arange(9.0), "b": 1.0, "c": 2.0}).to_parquet(tmp_path / "in.parquet")
    monkeypatch.setenv("RWB_ENGINE", "spark")  # the setting, when --engine is not given
    for engine in ("local", ""):
        args = ["score", "--model", str(model), "--input", str(tmp_path / "in.parquet"),
                "--output", str(tmp_path / f"scored{engine}.parquet")]
        result = runner.invoke(app, args + (["--engine", engine] if engine else []))
        assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "scoredlocal.parquet"),
                                  pd.read_parquet(tmp_path / "scored.parquet"))
    assert resolve_engine() is spark
    result = runner.invoke(app, ["forecast", str(tmp_path / "sales.parquet"), "--model", "gbm",
                                 "--engine", "spark"])
    assert result.exit_code != 0 and "has no Spark engine" in str(result.exception)
