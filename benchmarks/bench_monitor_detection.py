"""Monitoring and online evaluation at simulation scale (the gate runs small versions of these).

1. Drift detection on synthetic worlds (sales table: units, price, promo; weekly windows from
   2023-02-06, drift injected on Monday 2024-07-01): for several seeds, worlds without drift and
   with a price or demand drift. Reported: false-alarm rate over all windows before the drift
   (column warnings: drift score >= 1; critical: drift score >= 2, the default rule) and the share
   of drifted worlds alerted on the first full window after the drift; and the same with per-column
   levels calibrated on 2023 (`calibrate_levels`), monitoring 2024. Baseline in the same run: a
   fixed reference (the first four weeks of data) with no weekday matching and no holiday
   exclusion, the setup that alarms on seasonality.
2. Sequential testing: false-positive rate under the null of the mSPRT always-valid p-value vs
   naive peeking at the Welch t-test, 20 looks per experiment.
3. Interleaving vs A/B on the synthetic world's search relevance: total sessions each needs for 80%
   power (ratio), and the empirical power of both at the interleaving sample size.
Sizes: RWB_BENCH_SEEDS (default 6), RWB_BENCH_SIMS (default 1000).
"""
import os
import time

import numpy as np
import pandas as pd
from _common import record

os.environ.setdefault("RWB_PROGRESS", "0")

from retail_workbench.monitor.abtest import simulate_peeking  # noqa: E402
from retail_workbench.monitor.drift import (calibrate_levels, detection_summary,  # noqa: E402
                                    drift_timeline, flag_alerts)
from retail_workbench.monitor.interleave import (RankerSimulator, empirical_power,  # noqa: E402
                                         sessions_needed)
from retail_workbench.data.synth import make_world  # noqa: E402

SEEDS = int(os.environ.get("RWB_BENCH_SEEDS", 6))
SIMS = int(os.environ.get("RWB_BENCH_SIMS", 1000))
DRIFT = "2024-07-01"


def timeline(world, seasonal: bool) -> pd.DataFrame:
    sales = world.sales.rename(columns={"date": "ts"})
    if seasonal:
        holidays = world.calendar.date[world.calendar.holiday]
        return drift_timeline(sales, "7D", start="2023-02-06", policy="trailing",
                              columns=["units", "price", "promo"], event_dates=holidays)
    return drift_timeline(sales, "7D", start="2023-02-06", policy="fixed",
                          fixed=("2023-01-02", "2023-01-30"), weekday_match=False,
                          columns=["units", "price", "promo"])


def detection():
    rows = []
    for seed in range(SEEDS):
        for kind in (None, "price", "demand"):
            world = make_world(n_users=300, n_items=100, n_days=730, seed=seed, n_stores=2,
                               drift=None if kind is None else dict(date=DRIFT, kind=kind))
            for seasonal in (True, False):
                tl = timeline(world, seasonal).assign(critical=lambda t: t.drift_score >= 2)
                warn = detection_summary(tl, DRIFT)
                crit = detection_summary(tl, DRIFT, flag_col="critical")
                levels = calibrate_levels(tl[tl.window_end <= pd.Timestamp("2024-01-01")])
                cal = detection_summary(flag_alerts(tl[tl.window_start >= "2024-01-01"], levels),
                                        DRIFT, flag_col="alert")
                rows.append(dict(seed=seed, kind=kind or "none", seasonal=seasonal,
                                 windows=warn["n_windows_before"],
                                 warnings=warn["false_alarms"], criticals=crit["false_alarms"],
                                 detected=crit["detected_first_full_window"],
                                 cal_windows=cal["n_windows_before"],
                                 cal_alarms=cal["false_alarms"],
                                 cal_detected=cal["detected_first_full_window"]))
    df = pd.DataFrame(rows)
    out = {}
    for seasonal, name in ((True, "ours"), (False, "fixed_reference_baseline")):
        part = df[df.seasonal == seasonal]
        quiet = part[part.kind == "none"]
        drifted = part[part.kind != "none"]
        out[f"{name}_false_warning_rate"] = round(part.warnings.sum() / part.windows.sum(), 4)
        out[f"{name}_false_critical_rate"] = round(part.criticals.sum() / part.windows.sum(), 4)
        out[f"{name}_no_drift_worlds_with_critical"] = int((quiet.criticals > 0).sum())
        out[f"{name}_detected_first_window_share"] = round(drifted.detected.mean(), 3)
        out[f"{name}_calibrated_false_alarm_rate_2024"] = round(
            part.cal_alarms.sum() / part.cal_windows.sum(), 4)
        out[f"{name}_calibrated_detected_first_window_share"] = round(
            drifted.cal_detected.mean(), 3)
    out["windows_before_drift_per_world"] = int(df.windows.iloc[0])
    out["worlds"] = int(len(df) / 2)
    return out


def sequential():
    sim = simulate_peeking(n_experiments=SIMS, n_per_variant=2000, n_looks=20, alpha=0.05,
                           random_state=1)
    power = simulate_peeking(n_experiments=max(SIMS // 5, 50), n_per_variant=2000, n_looks=20,
                             effect=0.1, random_state=2)
    return {"sequential_experiments": SIMS, "msprt_false_positive_rate": sim["msprt_rate"],
            "naive_peeking_false_positive_rate": sim["naive_peeking_rate"],
            "msprt_power_at_0.1sd": power["msprt_rate"],
            "naive_peeking_power_at_0.1sd": power["naive_peeking_rate"]}


def interleaving():
    ratios, il_power, ab_power, ab_power_big = [], [], [], []
    for seed in range(min(SEEDS, 3)):
        world = make_world(n_users=200, n_items=120, n_days=30, seed=seed, n_stores=1)
        sim = RankerSimulator(world.truth.relevance, world.truth.position_bias, random_state=seed)
        needed = sessions_needed(sim, pilot=10_000)
        ratios.append(needed["ratio"])
        n_il, n_ab = int(needed["interleaving_sessions"]), int(needed["ab_sessions"])
        il_power.append(empirical_power(sim, "team_draft", n_il, 100))
        ab_power.append(empirical_power(sim, "ab", n_il, 100))
        ab_power_big.append(empirical_power(sim, "ab", n_ab, 50))
    return {"sessions_ratio_ab_over_interleaving": [round(r, 2) for r in ratios],
            "mean_ratio": round(float(np.mean(ratios)), 2),
            "interleaving_power_at_its_n": il_power, "ab_power_at_interleaving_n": ab_power,
            "ab_power_at_its_own_n": ab_power_big}


def main():
    started = time.process_time()
    record("bench_monitor_detection", **detection(), **sequential(), **interleaving(),
           cpu_s=round(time.process_time() - started, 1))


if __name__ == "__main__":
    main()
