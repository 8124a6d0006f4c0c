"""Data drift on 1M rows x 20 columns: time and peak memory, sampling vs every test on all rows.

Two tables of 1,000,000 rows each (14 numeric columns of different shapes, 6 categorical with 5 to
200 levels); in the current table 4 numeric and 2 categorical columns drifted by a meaningful
amount and the rest by a trivial one. Measured in the same run:
- ours: `data_drift(reference, current)` with its default sampling (50,000 rows per table), the
  method chosen per column by type and size;
- baseline 1 (auto, full data): `data_drift(..., max_rows=None)`: the same methods on all rows;
- baseline 2 (every test, full data): every applicable method (KS, Wasserstein, PSI and
  Jensen-Shannon for numeric columns; chi-square, Jensen-Shannon and PSI for categorical) on all
  rows, what a monitor that "computes every test" does.
Reported: wall and CPU seconds, peak memory growth, the speed-up ratios, and whether the sampled
verdicts agree with the full-data ones (max absolute difference of effect sizes).
Size: RWB_BENCH_ROWS (default 1,000,000).
"""
import os
import time

import numpy as np
import pandas as pd
from _common import PeakMemory, record

os.environ.setdefault("RWB_PROGRESS", "0")

from retail_workbench.data.eda import column_kind  # noqa: E402
from retail_workbench.monitor.drift import DRIFT_METHODS, MAX_LEVELS, data_drift  # noqa: E402

ROWS = int(os.environ.get("RWB_BENCH_ROWS", 1_000_000))


def make_tables(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref, cur = {}, {}
    for j in range(14):
        shift = 0.5 if j < 4 else 0.01            # 4 real shifts, 10 trivial ones
        if j % 3 == 0:
            ref[f"num{j}"] = rng.normal(10, 2, n)
            cur[f"num{j}"] = rng.normal(10 + 2 * shift, 2, n)
        elif j % 3 == 1:
            ref[f"num{j}"] = rng.lognormal(2, 0.7, n)
            cur[f"num{j}"] = rng.lognormal(2 + shift, 0.7, n)
        else:
            ref[f"num{j}"] = rng.gamma(2, 5, n)
            cur[f"num{j}"] = rng.gamma(2, 5 * (1 + shift), n)
    for j, levels in enumerate([5, 10, 20, 50, 100, 200]):
        p = rng.dirichlet(np.ones(levels))
        q = rng.dirichlet(np.ones(levels)) if j < 2 else p * (1 + rng.normal(0, 0.01, levels))
        q = np.clip(q, 1e-9, None)
        names = np.array([f"c{j}_{k}" for k in range(levels)])
        ref[f"cat{j}"] = names[rng.choice(levels, n, p=p)]
        cur[f"cat{j}"] = names[rng.choice(levels, n, p=q / q.sum())]
    return pd.DataFrame(ref), pd.DataFrame(cur)


def every_test(reference: pd.DataFrame, current: pd.DataFrame) -> dict:
    results = {}
    for col in reference.columns:
        kind = column_kind(reference[col], MAX_LEVELS)
        ref, cur = reference[col].to_numpy(), current[col].to_numpy()
        names = (["ks", "wasserstein", "psi", "jensenshannon"] if kind == "numeric"
                 else ["chisquare", "jensenshannon", "psi"])
        for name in names:
            results[(col, name)] = DRIFT_METHODS[name](ref, cur, kind)
    return results


def measure(fn, *args, **kwargs):
    with PeakMemory() as mem:
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn(*args, **kwargs)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, mem.peak_mib, result


def main():
    reference, current = make_tables(ROWS)
    print(f"tables: {ROWS:,} rows x {reference.shape[1]} columns each "
          f"({reference.memory_usage(deep=True).sum() / 2**20:.0f} MiB per table)")
    ours = measure(data_drift, reference, current)
    full = measure(data_drift, reference, current, max_rows=None)
    every = measure(every_test, reference, current)
    sampled_cols = ours[3].columns.set_index("column")
    full_cols = full[3].columns.set_index("column")
    agree = bool((sampled_cols.drifted == full_cols.drifted[sampled_cols.index]).all())
    max_diff = float((sampled_cols.effect - full_cols.effect[sampled_cols.index]).abs().max())
    record("bench_monitor_drift",
           rows=ROWS, columns=reference.shape[1],
           sampled_wall_s=round(ours[0], 2), sampled_cpu_s=round(ours[1], 2),
           sampled_peak_mib=round(ours[2], 1),
           full_auto_wall_s=round(full[0], 2), full_auto_cpu_s=round(full[1], 2),
           full_auto_peak_mib=round(full[2], 1),
           every_test_full_wall_s=round(every[0], 2), every_test_full_cpu_s=round(every[1], 2),
           every_test_full_peak_mib=round(every[2], 1),
           ratio_full_auto_over_sampled_cpu=round(full[1] / ours[1], 1),
           ratio_every_test_over_sampled_cpu=round(every[1] / ours[1], 1),
           drifted_columns_sampled=sampled_cols.index[sampled_cols.drifted].tolist(),
           verdicts_agree_with_full=agree, max_effect_difference=round(max_diff, 4))


if __name__ == "__main__":
    main()
