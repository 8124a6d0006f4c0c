"""Demand forecasting at catalogue scale: seconds per series, parallel speed-up and accuracy.

Data: 200 daily item-store series with three years of history from the synthetic world (the last
28 days held out). Measured in the same run:
- ours: `DemandForecaster` (regression on Fourier/price/promo/calendar terms with bounded ARIMA
  errors), serially (n_jobs=1) and in parallel (n_jobs=RWB_BENCH_JOBS, default 2), on all series;
- baseline: pmdarima `auto_arima(y, m=7)` with its defaults (seasonal stepwise search), which takes
  tens of seconds per series, so it is timed on a documented subsample of SUBSAMPLE series only;
- seasonal naive, the accuracy reference (MASE < 1 beats it on average).
Both ARIMA variants run with one BLAS thread per process (threadpoolctl), so the comparison is fair.
Wall times depend on what else runs on the machine (the 1-minute load average is recorded); CPU
seconds per series do not, and are the figure to compare.
Environment: RWB_BENCH_SERIES (default 200), RWB_BENCH_SUBSAMPLE (6; 0 skips the auto_arima
comparison), RWB_BENCH_JOBS (2).
"""
import os
import time
import warnings

import numpy as np
import pandas as pd
from _common import PeakMemory, record, timed
from threadpoolctl import threadpool_limits

os.environ.setdefault("RWB_PROGRESS", "0")

from retail_workbench.core import DATE_COL, ITEM_COL, STORE_COL, UNITS_COL  # noqa: E402
from retail_workbench.forecast.demand import (FORECAST_COL, DemandForecaster, SeasonalNaive,  # noqa: E402
                                       complete_series)
from retail_workbench.forecast.backtest import mase, mase_scale  # noqa: E402
from retail_workbench.data.synth import make_world  # noqa: E402

N_SERIES = int(os.environ.get("RWB_BENCH_SERIES", 200))
SUBSAMPLE = int(os.environ.get("RWB_BENCH_SUBSAMPLE", 6))
N_JOBS = int(os.environ.get("RWB_BENCH_JOBS", 2))
HORIZON = 28
N_DAYS = 3 * 365


def series_panel():
    "N_SERIES complete three-year series from the synthetic world."
    world = make_world(n_users=200, n_items=400, n_days=N_DAYS, n_stores=2, seed=11,
                       n_sales_items=200)
    panel = complete_series(world.sales)
    length = panel.groupby([STORE_COL, ITEM_COL])[DATE_COL].transform("size")
    panel = panel[length == N_DAYS]
    keys = panel[[STORE_COL, ITEM_COL]].drop_duplicates().head(N_SERIES)
    return panel.merge(keys, on=[STORE_COL, ITEM_COL]), world.calendar


def mase_by_series(pred, test, train):
    "MASE per series of `pred` (date, store, item, forecast) on `test`."
    merged = pred.merge(test, on=[DATE_COL, STORE_COL, ITEM_COL])
    scales = train.groupby([STORE_COL, ITEM_COL])[UNITS_COL].apply(mase_scale)
    out = {}
    for key, group in merged.groupby([STORE_COL, ITEM_COL]):
        out[key] = mase(group[UNITS_COL], group[FORECAST_COL], scale=scales[key])
    return pd.Series(out)


def auto_arima_defaults(train, test):
    "pmdarima auto_arima(m=7) with its defaults on each series; forecasts and seconds per series."
    from pmdarima import auto_arima
    rows, seconds, cpu_seconds = [], [], []
    for key, group in train.groupby([STORE_COL, ITEM_COL]):
        started, cpu_started = time.perf_counter(), time.process_time()
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")
            model = auto_arima(group[UNITS_COL].to_numpy(float), m=7)
            forecast = np.asarray(model.predict(HORIZON))
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
        dates = test[(test[STORE_COL] == key[0]) & (test[ITEM_COL] == key[1])][DATE_COL]
        rows.append(pd.DataFrame({DATE_COL: dates.to_numpy(), STORE_COL: key[0],
                                  ITEM_COL: key[1], FORECAST_COL: np.maximum(forecast, 0)}))
    return pd.concat(rows, ignore_index=True), seconds, cpu_seconds


def main():
    load_start = os.getloadavg()[0]
    panel, calendar = series_panel()
    cutoff = panel[DATE_COL].max() - pd.Timedelta(days=HORIZON)
    train, test = panel[panel[DATE_COL] <= cutoff], panel[panel[DATE_COL] > cutoff]
    n = train.groupby([STORE_COL, ITEM_COL]).ngroups
    future = test.drop(columns=[UNITS_COL])
    print(f"{n} series x {N_DAYS} days; horizon {HORIZON}; cores {os.cpu_count()}; "
          f"parallel jobs {N_JOBS}; auto_arima(m=7) subsample {SUBSAMPLE}", flush=True)

    serial_s, serial = timed(DemandForecaster(n_jobs=1).fit, train, calendar)
    print(f"ours serial: {serial_s:.1f} s", flush=True)
    with PeakMemory() as memory:
        parallel_s, parallel = timed(DemandForecaster(n_jobs=N_JOBS).fit, train, calendar)
    print(f"ours parallel: {parallel_s:.1f} s", flush=True)
    ours = mase_by_series(parallel.predict(future=future), test, train)
    naive = mase_by_series(SeasonalNaive().fit(train).predict(future=future), test, train)

    parallel_cpu = float(parallel.fit_report_["cpu_seconds"].mean())
    if not SUBSAMPLE:  # speed-up only: no auto_arima(m=7) comparison
        record("bench_forecast_scale", n_series=n, parallel_jobs=N_JOBS,
               ours_serial_s=round(serial_s, 1), ours_parallel_s=round(parallel_s, 1),
               ours_cpu_s_per_series_serial=round(float(serial.fit_report_["cpu_seconds"].mean()), 3),
               ours_cpu_s_per_series_parallel=round(parallel_cpu, 3),
               ours_parallel_speedup=round(serial_s / parallel_s, 2),
               load_average_1min_start_end=[round(load_start, 1), round(os.getloadavg()[0], 1)])
        return
    sample_keys = list(ours.index[:SUBSAMPLE])
    in_sample = train.set_index([STORE_COL, ITEM_COL]).loc[sample_keys].reset_index()
    test_sample = test.set_index([STORE_COL, ITEM_COL]).loc[sample_keys].reset_index()
    default_pred, default_seconds, default_cpu = auto_arima_defaults(in_sample, test_sample)
    defaults = mase_by_series(default_pred, test_sample, in_sample)
    fallbacks = int((parallel.fit_report_["model"] != "arima").sum())
    ours_per_series = serial_s / n
    default_per_series = float(np.mean(default_seconds))
    ours_cpu = float(serial.fit_report_["cpu_seconds"].mean())
    default_cpu_per_series = float(np.mean(default_cpu))

    record("bench_forecast_scale",
           n_series=n, n_days=N_DAYS, horizon=HORIZON, parallel_jobs=N_JOBS,
           ours_serial_s=round(serial_s, 1), ours_parallel_s=round(parallel_s, 1),
           ours_s_per_series=round(ours_per_series, 3),
           ours_cpu_s_per_series=round(ours_cpu, 3),
           ours_cpu_s_per_series_in_parallel_workers=round(parallel_cpu, 3),
           ours_parallel_speedup=round(serial_s / parallel_s, 2),
           ours_parallel_peak_mib=round(memory.peak_mib, 1),
           ours_fallbacks=fallbacks,
           ours_mase_mean=round(float(ours.mean()), 3),
           seasonal_naive_mase_mean=round(float(naive.mean()), 3),
           ours_beats_naive_share=round(float((ours < naive).mean()), 3),
           subsample_n=len(sample_keys),
           auto_arima_m7_s_per_series=round(default_per_series, 2),
           auto_arima_m7_cpu_s_per_series=round(default_cpu_per_series, 2),
           ours_vs_auto_arima_m7_speedup_wall=round(default_per_series / ours_per_series, 1),
           ours_vs_auto_arima_m7_speedup_cpu=round(default_cpu_per_series / ours_cpu, 1),
           load_average_1min_start_end=[round(load_start, 1), round(os.getloadavg()[0], 1)],
           subsample_ours_mase=round(float(ours.loc[sample_keys].mean()), 3),
           subsample_auto_arima_m7_mase=round(float(defaults.mean()), 3),
           subsample_seasonal_naive_mase=round(float(naive.loc[sample_keys].mean()), 3))


if __name__ == "__main__":
    main()
