"""Time and peak memory of `make_world` at about ten million interactions.

Measured in the same run:
- ours: `make_world(n_users=52_000, n_items=5_000, n_days=365)` (about 10M interactions, 2M search
  impressions and 5M store-day sales rows), vectorised numpy;
- baseline 1 (naive generator): the same interaction model written as a plain per-user,
  per-session, per-view Python loop (popularity-weighted candidates, softmax choice on user-item
  affinity, funnel), timed on a sample of users and extrapolated to the same number of
  interactions (it makes only interactions: no search, catalogue or sales, so the ratio is
  conservative);
- baseline 2 (I/O reference): writing the generated interactions to parquet with pandas, to put the
  generation time next to the cost of merely storing the rows.
Reported: wall and CPU seconds (the machine is shared, so CPU time is the fairer figure; the
ratio against the naive loop is in CPU time), interactions per second, peak memory growth, and
the ratios.
Sizes can be changed with RWB_BENCH_USERS / RWB_BENCH_ITEMS / RWB_BENCH_DAYS.
"""
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import PeakMemory, record, timed

os.environ.setdefault("RWB_PROGRESS", "0")

from retail_workbench.data.synth import (AFFINITY_CENTER, SEGMENTS, make_world)  # noqa: E402

USERS = int(os.environ.get("RWB_BENCH_USERS", 52_000))
ITEMS = int(os.environ.get("RWB_BENCH_ITEMS", 5_000))
DAYS = int(os.environ.get("RWB_BENCH_DAYS", 365))
SAMPLE_USERS = int(os.environ.get("RWB_BENCH_SAMPLE_USERS", 400))


def naive_interactions(world, n_users: int, seed: int = 0) -> int:
    "The interaction model as a plain Python loop over users, sessions and views; returns rows."
    rng = np.random.default_rng(seed)
    truth = world.truth
    user_factors, item_factors = truth.user_factors, truth.item_factors
    popularity = truth.item_popularity.to_numpy()
    first = world.catalog.groupby("item_id")["category"].first()
    category_of = first.to_numpy()
    categories = sorted(set(category_of))
    members = {c: np.flatnonzero(category_of == c) for c in categories}
    member_pop = {c: popularity[m] / popularity[m].sum() for c, m in members.items()}
    segment_names = list(SEGMENTS.index)
    rows = []
    for user in range(n_users):
        params = SEGMENTS.loc[truth.segments.iloc[user]]
        n_sessions = rng.poisson(params["sessions_per_year"] * DAYS / 365)
        for session in range(n_sessions):
            day = rng.integers(0, DAYS)
            logits = np.array([user_factors[user] @ item_factors[members[c]].mean(axis=0)
                               for c in categories])
            probs = np.exp(logits - logits.max())
            category = categories[rng.choice(len(categories), p=probs / probs.sum())]
            n_views = 1 + rng.poisson(params["views_per_session"] - 1)
            for view in range(n_views):
                candidates = rng.choice(members[category], size=10, p=member_pop[category])
                scores = np.array([user_factors[user] @ item_factors[j] for j in candidates])
                weights = np.exp(scores - scores.max())
                pick = rng.choice(10, p=weights / weights.sum())
                item, affinity = candidates[pick], scores[pick]
                rows.append((user, item, day, "view", session, 1.0))
                centred = affinity - AFFINITY_CENTER
                if rng.random() < 1 / (1 + np.exp(-(params["click_logit"] - 0.7 + 0.5 * centred))):
                    rows.append((user, item, day, "click", session, 1.0))
                    if rng.random() < 1 / (1 + np.exp(-(params["cart_logit"] - 0.9
                                                         + 0.5 * centred))):
                        rows.append((user, item, day, "add_to_cart", session, 1.0))
                        if rng.random() < params["order_rate"]:
                            quantity = 1 + rng.poisson(params["extra_quantity"])
                            rows.append((user, item, day, "order", session, float(quantity)))
    del segment_names
    return len(rows)


def main():
    print(f"make_world(n_users={USERS:,}, n_items={ITEMS:,}, n_days={DAYS})")
    load_before = os.getloadavg()[0]
    cpu_started = time.process_time()
    with PeakMemory() as memory:
        seconds, world = timed(make_world, n_users=USERS, n_items=ITEMS, n_days=DAYS, seed=1)
    cpu_seconds = time.process_time() - cpu_started
    n_rows = len(world.interactions)
    all_rows = sum(len(df) for df in world.tables.values())
    print(world)

    started = time.process_time()
    naive_rows = naive_interactions(world, SAMPLE_USERS)
    naive_seconds = time.process_time() - started
    naive_rate = naive_rows / naive_seconds
    naive_extrapolated = n_rows / naive_rate

    with tempfile.TemporaryDirectory() as tmp:
        with PeakMemory() as write_memory:
            write_seconds, _ = timed(world.interactions.to_parquet, Path(tmp) / "i.parquet")

    record("bench_synth_world",
           users=USERS, items=ITEMS, days=DAYS,
           interactions=n_rows, search_impressions=len(world.search_impressions),
           sales_rows=len(world.sales), all_rows=all_rows,
           load_average_at_start=round(load_before, 1),
           make_world_seconds=round(seconds, 2),
           make_world_cpu_seconds=round(cpu_seconds, 2),
           interactions_per_second=round(n_rows / seconds),
           interactions_per_cpu_second=round(n_rows / cpu_seconds),
           all_rows_per_second=round(all_rows / seconds),
           make_world_peak_mib=round(memory.peak_mib),
           naive_loop_sample_users=SAMPLE_USERS, naive_loop_rows=naive_rows,
           naive_loop_rows_per_cpu_second=round(naive_rate),
           naive_loop_extrapolated_cpu_seconds=round(naive_extrapolated, 1),
           speedup_vs_naive_loop_cpu=round(naive_extrapolated / cpu_seconds, 1),
           pandas_parquet_write_seconds=round(write_seconds, 2),
           pandas_parquet_write_peak_mib=round(write_memory.peak_mib),
           make_world_over_parquet_write=round(seconds / write_seconds, 2))


if __name__ == "__main__":
    main()
