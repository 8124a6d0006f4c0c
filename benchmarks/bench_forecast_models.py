"""Per-series ARIMA vs one global LightGBM vs seasonal naive: CPU seconds per series and accuracy.

Data, each with the last periods held out and forecast at their actual prices and promotions:
- daily: RWB_BENCH_SERIES (default 200) complete two-year item-store series of the synthetic world,
  28 days ahead, with the world's calendar;
- weekly (synthetic): the same series summed to Monday-to-Sunday weeks, 8 weeks ahead;
- weekly (real): Online Retail (../shared/data/online_retail.parquet, or RWB_BENCH_ONLINE_RETAIL)
  invoice lines summed to weekly units of its RWB_BENCH_SERIES best-selling products (returns,
  fees and the two partial weeks dropped), 8 weeks ahead; skipped when the file is absent.
Models, fitted in the same run:
- arima: `DemandForecaster` (daily; weekly without Fourier terms, on price and promotion), in
  RWB_BENCH_JOBS worker processes (default 2); CPU seconds are its workers' per-series figures;
- gbm: `GlobalForecaster` with its defaults, one thread (its CPU time includes the conformal
  calibration refits), divided by the number of series;
- seasonal naive, the baseline: same weekday last week (daily), same week last year (weekly), or
  last week where there is under two years of history (Online Retail).
Weekly tables are made with `aggregate_sales(..., "W-MON")` and every model treats a week without a
row as zero sales (`gaps="zero"`), as the sales were recorded.
MASE uses each series' in-sample seasonal-naive error (naive where under two seasons); WAPE is
pooled over series. Ratios: gbm and arima against the seasonal naive (MASE), gbm against arima
(MASE and CPU seconds per series).
"""
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import record

os.environ.setdefault("RWB_PROGRESS", "0")

from retail_workbench.core import DATE_COL, ITEM_COL, PRICE_COL, STORE_COL, UNITS_COL  # noqa: E402
from retail_workbench.data.synth import make_world  # noqa: E402
from retail_workbench.forecast.backtest import coverage, mase_scale, wape  # noqa: E402
from retail_workbench.forecast.demand import (FORECAST_COL, LOWER_COL, UPPER_COL,  # noqa: E402
                                              DemandForecaster, SeasonalNaive, aggregate_sales,
                                              complete_series)
from retail_workbench.forecast.gbm import GlobalForecaster  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = Path(os.environ.get("RWB_BENCH_ONLINE_RETAIL",
                                    ROOT.parent / "shared" / "data" / "online_retail.parquet"))
N_SERIES = int(os.environ.get("RWB_BENCH_SERIES", 200))
N_JOBS = int(os.environ.get("RWB_BENCH_JOBS", 2))
N_DAYS = 2 * 365
KEYS = [STORE_COL, ITEM_COL]


def synthetic_daily():
    "N_SERIES complete two-year daily series of the synthetic world, and its calendar."
    world = make_world(n_users=200, n_items=400, n_days=N_DAYS, n_stores=2, seed=11,
                       n_sales_items=N_SERIES)
    panel = complete_series(world.sales)
    length = panel.groupby(KEYS)[DATE_COL].transform("size")
    panel = panel[length == N_DAYS]
    keys = panel[KEYS].drop_duplicates().head(N_SERIES)
    return panel.merge(keys, on=KEYS), world.calendar


def online_retail_weekly():
    "Weekly units of the best-selling Online Retail products (full weeks only)."
    from retail_workbench.data.loaders import load_online_retail
    lines = load_online_retail(ONLINE_RETAIL, customers=False)["interactions"]
    lines = lines[~lines["is_return"] & ~lines["is_non_product"]]
    lines = lines[(lines["value"] > 0) & (lines[PRICE_COL] > 0)]
    sales = pd.DataFrame({DATE_COL: lines["ts"].dt.normalize(), STORE_COL: 0,
                          ITEM_COL: lines[ITEM_COL], UNITS_COL: lines["value"].astype(float),
                          PRICE_COL: lines[PRICE_COL].astype(float)})
    weekly = aggregate_sales(sales, "W-MON")
    weeks = np.sort(weekly[DATE_COL].unique())
    weekly = weekly[(weekly[DATE_COL] > weeks[0]) & (weekly[DATE_COL] < weeks[-1])]
    top = weekly.groupby(ITEM_COL)[UNITS_COL].sum().nlargest(N_SERIES).index
    return weekly[weekly[ITEM_COL].isin(top)].reset_index(drop=True)


def split(panel, horizon, freq):
    "Training rows, and the last `horizon` periods of every series as the test."
    grid = np.sort(panel[DATE_COL].unique())
    cutoff = pd.Timestamp(grid[-horizon - 1])
    train, test = panel[panel[DATE_COL] <= cutoff], panel[panel[DATE_COL] > cutoff]
    return train, test.merge(train[KEYS].drop_duplicates(), on=KEYS)


def scores(pred, test, train, season):
    "Mean MASE over series, pooled WAPE and interval coverage of `pred` on `test`."
    merged = pred.merge(test[[DATE_COL, *KEYS, UNITS_COL]], on=[DATE_COL, *KEYS])
    if len(merged) != len(test):
        raise RuntimeError(f"{len(test) - len(merged)} test rows have no forecast")
    history = train.sort_values(DATE_COL).groupby(KEYS)[UNITS_COL]
    scale = history.apply(lambda u: mase_scale(u, season if len(u) > 2 * season else 1))
    error = (merged[UNITS_COL] - merged[FORECAST_COL]).abs().groupby(
        [merged[STORE_COL], merged[ITEM_COL]]).mean()
    mase = (error / scale.reindex(error.index)).replace(np.inf, np.nan)
    return {"mase": round(float(mase.mean()), 3),
            "wape": round(wape(merged[UNITS_COL], merged[FORECAST_COL]), 3),
            "coverage": round(coverage(merged[UNITS_COL], merged[FORECAST_COL],
                                       merged[LOWER_COL], merged[UPPER_COL]), 3)}


def run(name, panel, calendar, horizon, season, arima, naive, gaps=None):
    "Fit the three models on one data set and record their figures and ratios."
    train, test = split(panel, horizon, None)
    future = test.drop(columns=[UNITS_COL])
    n = train.groupby(KEYS).ngroups
    print(f"{name}: {n} series, {train[DATE_COL].nunique()} training periods, horizon {horizon}",
          flush=True)
    figures = {}
    for label, model in (("arima", arima), ("gbm", GlobalForecaster(gaps=gaps)), ("naive", naive)):
        started, cpu_started = time.perf_counter(), time.process_time()
        fitted = model.fit(train, calendar)
        pred = fitted.predict(future=future, calendar=calendar)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        report = getattr(fitted, "fit_report_", None)
        if label == "arima" and report is not None and "cpu_seconds" in report:
            cpu = float(report["cpu_seconds"].sum()) + cpu   # worker CPU + this process
        figures[label] = {"wall_s": round(wall, 1), "cpu_s_per_series": round(cpu / n, 4),
                          **scores(pred, test, train, season)}
        print(f"  {label}: {figures[label]}", flush=True)
    arima_f, gbm_f, naive_f = figures["arima"], figures["gbm"], figures["naive"]
    flat = {f"{label}_{key}": value for label, values in figures.items()
            for key, value in values.items()}
    record("bench_forecast_models", data=name, n_series=n, horizon=horizon, **flat,
           gbm_vs_seasonal_naive_mase=round(gbm_f["mase"] / naive_f["mase"], 3),
           arima_vs_seasonal_naive_mase=round(arima_f["mase"] / naive_f["mase"], 3),
           gbm_vs_arima_mase=round(gbm_f["mase"] / arima_f["mase"], 3),
           arima_vs_gbm_cpu_per_series=round(arima_f["cpu_s_per_series"]
                                             / max(gbm_f["cpu_s_per_series"], 1e-9), 1),
           load_average_1min=round(os.getloadavg()[0], 1))


def weekly_arima():
    "The per-series ARIMA on price and promotion for weekly periods (no yearly terms)."
    return DemandForecaster(weekly_order=0, yearly_order=0, min_history=28, n_jobs=N_JOBS,
                            freq="W-MON", gaps="zero")


def main():
    daily, calendar = synthetic_daily()
    run("synthetic_daily", daily, calendar, 28, 7, DemandForecaster(n_jobs=N_JOBS),
        SeasonalNaive(season=7))
    weekly = aggregate_sales(daily, "W-MON")
    weeks = np.sort(weekly[DATE_COL].unique())
    weekly = weekly[(weekly[DATE_COL] > weeks[0]) & (weekly[DATE_COL] < weeks[-1])]
    run("synthetic_weekly", weekly, None, 8, 52, weekly_arima(),
        SeasonalNaive(season=52, gaps="zero"), gaps="zero")
    if not ONLINE_RETAIL.exists():
        print(f"skipping Online Retail: {ONLINE_RETAIL} not found")
        return
    real = online_retail_weekly()
    run("online_retail_weekly", real, None, 8, 52, weekly_arima(),
        SeasonalNaive(season=1, gaps="zero"), gaps="zero")


if __name__ == "__main__":
    main()
