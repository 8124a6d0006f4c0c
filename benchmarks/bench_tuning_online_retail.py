"""Does tuning help? Online Retail (UCI), customers with ids, sampled by customer; implicit feedback
(a customer bought a product). Protocol "n random items per user" for both the tuner's validation
and the outer test. An Optuna study of LightFM (loss, size, learning rate, regularisation, features,
early-stopped epochs), then the tuned and the default configuration retrained on train + validation
and compared on the test part the tuner never saw, with a paired bootstrap over customers.
Skipped when ../shared/data is absent. Size: RWB_TUNE_USERS (default 700 customers),
RWB_TUNE_TRIALS (36), RWB_TUNE_TIMEOUT seconds (720)."""
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import record
from retail_workbench.data.datasets import resolve_source, sample_by_user
from retail_workbench.ops.tuning import tune
from retail_workbench.recsys.recommend import recommender_tables

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "online_retail.parquet"


def main():
    if not DATA.exists():
        print(f"skipped: {DATA} not present")
        return
    os.environ.setdefault("RWB_HOME", tempfile.mkdtemp(prefix="rwb-tune-"))
    os.environ.setdefault("RWB_PROGRESS", "0")
    n_users = int(os.environ.get("RWB_TUNE_USERS", 700))
    n_trials = int(os.environ.get("RWB_TUNE_TRIALS", 36))
    timeout = float(os.environ.get("RWB_TUNE_TIMEOUT", 720))
    tables = recommender_tables(resolve_source(str(DATA), tables=("interactions",),
                                               optional=("catalog", "customers"),
                                               format="online_retail").tables)
    interactions = sample_by_user(tables["interactions"], n_users, seed=0)
    catalog = tables["catalog"][tables["catalog"].item_id.isin(interactions.item_id)]
    customers = tables["customers"][tables["customers"].user_id.isin(interactions.user_id)]
    data = {"interactions": interactions, "catalog": catalog, "customers": customers}
    started = time.perf_counter()
    result = tune("recommender", data, n_trials=n_trials, timeout=timeout, protocol="random_n",
                  n_holdout=3, metric="precision_at_10", max_epochs=40, eval_every=5,
                  patience=2, seed=0)
    seconds = time.perf_counter() - started
    comparison = result.comparison
    print(comparison.message)
    record("tuning_online_retail", users=interactions.user_id.nunique(),
           items=interactions.item_id.nunique(), rows=len(interactions),
           trials=result.n_trials, pruned=result.n_pruned, seconds=round(seconds, 1),
           valid_default=round(result.default_value, 4), valid_best=round(result.best_value, 4),
           test_default=round(comparison.default, 4), test_tuned=round(comparison.tuned, 4),
           difference=round(comparison.difference, 4), ci_low=round(comparison.low, 4),
           ci_high=round(comparison.high, 4), p_value=round(comparison.p_value, 4),
           bootstrap_users=comparison.n_users, kept=comparison.keep,
           tuned_params={k: v for k, v in result.best_params.items()
                         if k not in ("random_state", "num_threads")})


if __name__ == "__main__":
    sys.exit(main())
