"""The Spark engine against the in-process one on the same two cores: forecasting and batch scoring.

Data: a synthetic daily panel (weekly pattern, price and promotion effects, Poisson noise) of
RWB_BENCH_SERIES series (default 2,000) with RWB_BENCH_DAYS days (default 365), and a score-matrix
recommender over RWB_BENCH_USERS users (default 1,000,000) and 100 items. Measured in one run:
- forecasting: `DemandForecaster` fit + 28-day predict with joblib (n_jobs=2, the baseline) and on
  Spark local[2] (`engine=spark`, one applyInPandas group per series); the Spark/joblib wall-time
  ratio is the engine's overhead on one machine. The forecasts of both engines are compared.
- the per-series cost (CPU seconds inside the workers, and Spark core-seconds per series), and
  from it the written scaling estimate for 50,000 series on a 16-executor cluster (one core each):
  CPU seconds per series x the Spark/joblib ratio x series / executors, plus the measured fixed cost
  of a Spark job (and, as a pessimistic bound, wall core-seconds per series x series / executors).
- batch scoring: `score_batch` of every user (top 10) in-process vs on Spark local[2] (mapInPandas,
  one onnxruntime session per Python worker); the Spark/in-process ratio and rows per second.
RWB_BENCH_PARTS ("forecast,scoring") chooses the parts. The session start (JVM) is timed separately and not part of either ratio. The machine's 1-minute
load average is recorded: wall times on a shared machine move with it, ratios less so.
"""
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _common import record, timed

os.environ.setdefault("RWB_PROGRESS", "0")
warnings.filterwarnings("ignore", category=FutureWarning)

from retail_workbench.data.engine import spark_session  # noqa: E402
from retail_workbench.forecast.demand import DemandForecaster  # noqa: E402
from retail_workbench.ops.serving import score_batch  # noqa: E402

N_SERIES = int(os.environ.get("RWB_BENCH_SERIES", 2000))
N_DAYS = int(os.environ.get("RWB_BENCH_DAYS", 365))
N_USERS = int(os.environ.get("RWB_BENCH_USERS", 1_000_000))
PARTS = os.environ.get("RWB_BENCH_PARTS", "forecast,scoring").split(",")  # what to run
HORIZON = 28
CLUSTER_SERIES, CLUSTER_EXECUTORS = 50_000, 16


def sales_panel(n_series: int, n_days: int, seed: int = 0) -> pd.DataFrame:
    "Daily sales of `n_series` item-store series with weekly seasonality, price and promotions."
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=n_days, freq="D")
    weekday = np.asarray(dates.weekday)
    frames = []
    for series in range(n_series):
        level = rng.uniform(2, 40)
        price = np.round(rng.uniform(2, 9) * np.exp(rng.normal(0, 0.05, n_days)), 2)
        promo = rng.random(n_days) < 0.08
        rate = (level * (1 + 0.3 * np.sin(2 * np.pi * weekday / 7 + rng.uniform(0, 6)))
                * (price / price.mean()) ** -1.5 * np.where(promo, 1.5, 1.0))
        frames.append(pd.DataFrame({"date": dates, "store_id": series % 10,
                                    "item_id": series // 10, "units": rng.poisson(rate),
                                    "price": price, "promo": promo}))
    return pd.concat(frames, ignore_index=True)


def forecast(sales: pd.DataFrame, engine) -> tuple:
    model = DemandForecaster(n_jobs=2)
    model.fit(sales, engine=engine)
    return model, model.predict(HORIZON, engine=engine)


def recommender_file(folder: Path, n_users: int) -> Path:
    from retail_workbench.ops.onnx import annotate_recommender, build_score_graph, save_model
    rng = np.random.default_rng(1)
    users = [f"u{i}" for i in range(n_users)]
    graph = build_score_graph(rng.normal(size=(n_users, 8)), rng.normal(size=(100, 8)))
    return save_model(annotate_recommender(graph, users, list(range(100))), folder / "rec.onnx")


def main():
    spark = forecast_part() if "forecast" in PARTS else spark_session("local[2]")
    if "scoring" in PARTS:
        scoring_part(spark)


def forecast_part():
    load = os.getloadavg()[0]
    sales = sales_panel(N_SERIES, N_DAYS)
    joblib_seconds, (local_model, local_pred) = timed(forecast, sales, "local")
    start_seconds, spark = timed(spark_session, "local[2]")
    spark_seconds, (spark_model, spark_pred) = timed(forecast, sales, spark)
    same = local_pred[["date", "store_id", "item_id", "model"]].equals(
        spark_pred[["date", "store_id", "item_id", "model"]])
    gap = float((local_pred.forecast - spark_pred.forecast).abs().max())
    fixed_seconds, _ = timed(forecast, sales_panel(4, N_DAYS, seed=2), spark)  # a tiny job
    cpu_per_series = float(spark_model.fit_report_.cpu_seconds.mean())
    core_seconds = 2 * spark_seconds / N_SERIES  # Spark core-seconds per series, overhead included
    # CPU seconds per series do not move with the machine's load; the Spark/joblib ratio carries
    # the engine's overhead. Wall core-seconds per series are the pessimistic bound on a busy box.
    ratio = spark_seconds / joblib_seconds
    estimate = cpu_per_series * ratio * CLUSTER_SERIES / CLUSTER_EXECUTORS + fixed_seconds
    bound = core_seconds * CLUSTER_SERIES / CLUSTER_EXECUTORS + fixed_seconds
    record("engine_spark_forecast", series=N_SERIES, days=N_DAYS, load_average_1m=round(load, 1),
           joblib_n_jobs2_seconds=round(joblib_seconds, 1),
           spark_local2_seconds=round(spark_seconds, 1),
           spark_over_joblib_ratio=round(spark_seconds / joblib_seconds, 3),
           spark_session_start_seconds=round(start_seconds, 1),
           forecasts_identical_keys=same, forecasts_max_abs_diff=gap,
           fit_cpu_seconds_per_series=round(cpu_per_series, 4),
           spark_core_seconds_per_series=round(core_seconds, 4),
           spark_fixed_job_seconds=round(fixed_seconds, 1),
           estimate_50k_series_16_executors_minutes=round(estimate / 60, 1),
           wall_bound_50k_series_16_executors_minutes=round(bound / 60, 1))
    return spark


def scoring_part(spark):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = recommender_file(folder, N_USERS)
        users = pd.DataFrame({"user_id": [f"u{i}" for i in range(N_USERS)]})
        users.to_parquet(folder / "users.parquet")
        local_seconds, local_report = timed(score_batch, str(model), folder / "users.parquet",
                                            folder / "local.parquet", k=10, engine="local")
        spark_score_seconds, spark_report = timed(score_batch, str(model),
                                                  folder / "users.parquet",
                                                  folder / "spark.parquet", k=10, engine=spark)
        same_rows = pd.read_parquet(folder / "local.parquet").equals(
            pd.read_parquet(folder / "spark.parquet"))
    record("engine_spark_scoring", users=N_USERS, load_average_1m=round(os.getloadavg()[0], 1),
           in_process_seconds=round(local_seconds, 1),
           spark_local2_seconds=round(spark_score_seconds, 1),
           spark_over_in_process_ratio=round(spark_score_seconds / local_seconds, 3),
           in_process_rows_per_second=local_report["rows_per_second"],
           spark_rows_per_second=spark_report["rows_per_second"],
           rows_out=spark_report["rows_out"], identical_output=same_rows)


if __name__ == "__main__":
    main()
