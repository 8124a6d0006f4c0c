"""Ranking metrics on 100k users x 10k items, top-10 lists: the vectorised `evaluate` against a
plain per-user Python loop of the same definitions (precision, recall, NDCG, MAP@k, MRR, hit rate).

The loop is timed on a sample of 10,000 users and extrapolated linearly to 100,000 (its cost is
per user); the two are checked to give the same values on that sample."""
import time

import numpy as np
import pandas as pd

from _common import PeakMemory, record, timed
from retail_workbench.recsys.metrics import evaluate_ranking

N_USERS, N_ITEMS, K, N_TRUTH, SAMPLE = 100_000, 10_000, 10, 5, 10_000
METRICS = ["precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "mrr", "hit_rate_at_k"]


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    popularity = rng.pareto(1.5, N_ITEMS) + 1
    p = popularity / popularity.sum()
    truth = pd.DataFrame({"user_id": np.repeat(np.arange(N_USERS), N_TRUTH),
                          "item_id": rng.choice(N_ITEMS, N_USERS * N_TRUTH, p=p)})
    # top-10 lists: distinct items per user, biased towards popular ones
    items = np.argsort(rng.random((N_USERS, 50)) / p[rng.integers(0, N_ITEMS, (N_USERS, 50))],
                       axis=1)[:, :K]
    candidates = rng.integers(0, N_ITEMS, (N_USERS, 50))
    top = np.take_along_axis(candidates, items, axis=1)
    recs = pd.DataFrame({"user_id": np.repeat(np.arange(N_USERS), K), "item_id": top.ravel(),
                         "rank": np.tile(np.arange(1, K + 1), N_USERS)})
    recs = recs.drop_duplicates(["user_id", "item_id"])
    return truth, recs


def loop_metrics(truth, recs, k):
    "The same definitions, one user at a time."
    relevant = {}
    for user, item in zip(truth.user_id.to_numpy(), truth.item_id.to_numpy()):
        relevant.setdefault(user, set()).add(item)
    lists = {}
    for user, item in zip(recs.user_id.to_numpy(), recs.item_id.to_numpy()):
        lists.setdefault(user, []).append(item)   # recs are already in rank order
    sums = dict.fromkeys(["precision", "recall", "ndcg", "map", "mrr", "hit"], 0.0)
    n = 0
    for user, items in lists.items():
        if user not in relevant:
            continue
        rel, n = relevant[user], n + 1
        hits = [r for r, item in enumerate(items[:k], start=1) if item in rel]
        ideal = sum(1 / np.log2(r + 1) for r in range(1, min(len(rel), k) + 1))
        sums["precision"] += len(hits) / k
        sums["recall"] += len(hits) / len(rel)
        sums["ndcg"] += sum(1 / np.log2(r + 1) for r in hits) / ideal
        sums["map"] += sum((j + 1) / r for j, r in enumerate(hits)) / min(len(rel), k)
        sums["mrr"] += 1 / hits[0] if hits else 0.0
        sums["hit"] += 1.0 if hits else 0.0
    return {key: value / n for key, value in sums.items()}


def main():
    started = time.perf_counter()
    truth, recs = make_data()
    print(f"data: {N_USERS} users, {N_ITEMS} items, {len(recs)} recommendations, "
          f"{len(truth)} held-out rows ({time.perf_counter() - started:.1f} s to generate)")
    with PeakMemory() as memory:
        vectorised_s, scores = timed(evaluate_ranking, truth, recs, k=K, metrics=METRICS, repeat=3)
    sample_truth = truth[truth.user_id < SAMPLE]
    sample_recs = recs[recs.user_id < SAMPLE]
    loop_sample_s, loop_scores = timed(loop_metrics, sample_truth, sample_recs, K)
    check = evaluate_ranking(sample_truth, sample_recs, k=K, metrics=METRICS)
    for ours, theirs in zip(["precision_at_10", "recall_at_10", "ndcg_at_10", "map_at_10", "mrr",
                             "hit_rate_at_10"], loop_scores):
        assert abs(check[ours] - loop_scores[theirs]) < 1e-9, (ours, check[ours])
    loop_s = loop_sample_s * N_USERS / SAMPLE
    record("bench_recommend_metrics",
           users=N_USERS, items=N_ITEMS, k=K, metrics=len(METRICS),
           vectorised_s=round(vectorised_s, 3),
           vectorised_peak_mib=round(memory.peak_mib, 1),
           loop_sample_users=SAMPLE, loop_sample_s=round(loop_sample_s, 3),
           loop_extrapolated_s=round(loop_s, 2),
           speedup_vs_loop=round(loop_s / vectorised_s, 1),
           ndcg_at_10=round(scores["ndcg_at_10"], 5))


if __name__ == "__main__":
    main()
