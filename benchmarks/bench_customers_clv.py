"""Customer lifetime value (BG/NBD + Gamma-Gamma) on real data: fit time and the calibration-vs-
holdout check.

Data (../shared/data, skipped when absent): all of CDNOW (23,570 customers, 39-week calibration
1997-01-01 to 1997-09-30, 39-week holdout) and Online Retail (calibration to 2011-09-09, 13-week
holdout). Baseline for the holdout: a naive forecast that each customer repeats their calibration
purchase rate (frequency / T) over the holdout, scored with the same mean absolute error in the same
run. Fit-time baseline: the BG/NBD fit on the 2,357-customer CDNOW sample summary (the fixture).
"""
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record, timed  # noqa: E402

from retail_workbench.customers.clv import BetaGeoModel, fit_clv  # noqa: E402
from retail_workbench.data.datasets import example_order_lines, shared_data_dir  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "cdnow"


def report(name: str, table: pd.DataFrame, calibration_end: str, observation_end: str,
           value_col: str, sample_seconds: float):
    seconds, (model, summary, result) = timed(fit_clv, table, calibration_end, observation_end,
                                              value_col=value_col, horizon=52)
    holdout = pd.DataFrame(result["holdout"]).set_index("calibration_frequency")
    print(f"\n{name}: calibration vs holdout (mean purchases per customer in the holdout)")
    print(holdout.round(3).to_string())
    duration = float(summary["duration_holdout"].iloc[0])
    expected = model.purchases_.expected_purchases(summary, duration)
    naive = summary["frequency"] / summary["T"].clip(lower=1e-9) * duration
    actual = summary["frequency_holdout"]
    record(f"customers_clv_{name}", customers=result["n_customers"],
           params={k: round(v, 4) for k, v in result["params"].items()},
           log_likelihood=round(result["log_likelihood"], 1),
           holdout_actual_total=result["holdout_actual_total"],
           holdout_expected_total=round(result["holdout_expected_total"], 1),
           holdout_mae_bgnbd=round(float((expected - actual).abs().mean()), 4),
           holdout_mae_naive_rate=round(float((naive - actual).abs().mean()), 4),
           clv_mean_52w=round(result.get("clv_mean", float("nan")), 2),
           fit_seconds=round(seconds, 2),
           fit_ratio_vs_cdnow_sample=round(seconds / sample_seconds, 1))


def main():
    sample = pd.read_csv(FIXTURE / "cdnow_customers_summary.csv", index_col="ID")
    sample_seconds, _ = timed(BetaGeoModel().fit, sample, repeat=3)
    data = shared_data_dir()
    cdnow = data / "cdnow_transactions.parquet"
    if cdnow.exists():
        report("cdnow", pd.read_parquet(cdnow), "1997-09-30", "1998-06-30", "dollar_value",
               sample_seconds)
    retail = data / "online_retail.parquet"
    if retail.exists():
        lines = example_order_lines("online_retail", str(retail))[0]
        lines = lines[~lines["is_return"]]
        table = pd.DataFrame({"customer_id": lines["user_id"], "date": lines["ts"],
                              "value": lines["amount"]})
        report("online_retail", table, "2011-09-09", "2011-12-09", "value", sample_seconds)


if __name__ == "__main__":
    main()
