"""Customer-state HMM: fit time against the number of customers, and churn on real data.

Fit time: the batched Poisson HMM (`CustomerStateModel`, 3 states, 52 weeks) on 10,000 and 100,000
customers of the synthetic state world; baseline: hmmlearn's `PoissonHMM.fit` (per-sequence E-step)
on 300 of the same customers with the same number of EM iterations, measured in the same run and
scaled per customer.
Real data (../shared/data, skipped when absent): Online Retail (weekly) and CDNOW (monthly): the
criteria of every number of states, the chosen one, and churn ROC/PR AUC on the last periods next
to the recency baseline.
"""
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakMemory, record  # noqa: E402

from retail_workbench.customers.states import (CustomerStateModel, activity_panel,  # noqa: E402
                                               fit_churn, panel_counts, state_recovery)
from retail_workbench.data.datasets import (example_order_lines, order_lines_from_cdnow,  # noqa: E402
                                            shared_data_dir)
from retail_workbench.data.synth import make_state_world  # noqa: E402

N_ITER = 20
HMMLEARN_CUSTOMERS = 300  # the baseline is slow: scaled per customer


def fit_time(n_customers: int) -> dict:
    world = make_state_world(n_customers=n_customers, n_weeks=52, seed=0)
    panel = activity_panel(world.order_lines, end=world.truth.states["week"].max(),
                           visits=world.visits)
    model = CustomerStateModel(n_states=3, n_iter=N_ITER, tol=0.0, holdout_share=0.0)
    with PeakMemory() as memory:
        started = time.perf_counter()
        model.fit(panel)
        seconds = time.perf_counter() - started
    recovery = state_recovery(model.decode(panel), world.truth.states, model.model_.transmat_,
                              world.truth.transitions)
    return {"customers": n_customers, "rows": len(panel), "seconds": round(seconds, 2),
            "peak_mib": round(memory.peak_mib), "ari": round(recovery["ari"], 3),
            "transmat_mae": round(recovery["transmat_mae"], 4)}, panel


def hmmlearn_time(panel: pd.DataFrame, n_customers: int) -> float:
    from hmmlearn.hmm import PoissonHMM
    users = pd.unique(panel["user_id"])[:n_customers]
    part = panel[panel["user_id"].isin(users)]
    lengths = part.groupby("user_id", sort=False).size().to_numpy()
    reference = PoissonHMM(3, n_iter=N_ITER, tol=0.0, random_state=0)
    started = time.perf_counter()
    reference.fit(panel_counts(part).astype(int), lengths)
    return time.perf_counter() - started


def real_churn(name: str, lines: pd.DataFrame, freq: str, horizon: int):
    started = time.perf_counter()
    model, metrics, _ = fit_churn(lines, horizon=horizon, freq=freq, state_range=(2, 6))
    print(f"\n{name} ({freq}, {horizon}-period window): criteria per number of states")
    print(model.state_scores_.round(3).to_string(index=False))
    print(model.profiles_.round(2).to_string())
    record(f"customers_states_{name}", n_states=metrics["n_states"],
           state_names=", ".join(model.state_names_),
           churn_roc_auc=round(metrics["churn_roc_auc"], 3),
           recency_roc_auc=round(metrics["recency_roc_auc"], 3),
           churn_pr_auc=round(metrics["churn_pr_auc"], 3),
           recency_pr_auc=round(metrics["recency_pr_auc"], 3),
           churn_brier=round(metrics["churn_brier"], 3), churn_rate=round(metrics["churn_rate"], 3),
           no_purchase_roc_auc=round(metrics["no_purchase_roc_auc"], 3),
           no_purchase_pr_auc=round(metrics["no_purchase_pr_auc"], 3),
           customers=metrics["n_customers"], cutoff=metrics["cutoff"],
           seconds=round(time.perf_counter() - started, 1))


def main(parts=("fit", "real")):
    if "fit" in parts:
        fit_times()
    if "real" in parts:
        real_data()


def fit_times():
    small, panel = fit_time(10_000)
    baseline = hmmlearn_time(panel, HMMLEARN_CUSTOMERS)
    large, _ = fit_time(100_000)
    per_customer = baseline / HMMLEARN_CUSTOMERS
    record("customers_states_fit_time", hmmlearn_customers=HMMLEARN_CUSTOMERS,
           hmmlearn_seconds=round(baseline, 2),
           batched_10k=small, batched_100k=large,
           speedup_vs_hmmlearn_10k=round(per_customer * 10_000 / small["seconds"], 1),
           speedup_vs_hmmlearn_100k=round(per_customer * 100_000 / large["seconds"], 1),
           ratio_100k_over_10k=round(large["seconds"] / small["seconds"], 2))


def real_data():
    data = shared_data_dir()
    retail = data / "online_retail.parquet"
    if retail.exists():
        real_churn("online_retail", example_order_lines("online_retail", str(retail))[0], "W", 8)
    cdnow = data / "cdnow_transactions.parquet"
    if cdnow.exists():
        real_churn("cdnow", order_lines_from_cdnow(pd.read_parquet(cdnow)), "M", 3)


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or ("fit", "real"))
