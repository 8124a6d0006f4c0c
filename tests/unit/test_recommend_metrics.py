"Ranking metrics: the vectorised code against direct per-user definitions."
import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

from retail_workbench.core import DataError, SchemaError
from retail_workbench.recsys.metrics import RANKING_METRICS, evaluate_ranking, rank_lists


def _random_case(seed=0, n_users=200, n_items=40, list_len=15):
    rng = np.random.default_rng(seed)
    truth = pd.DataFrame({"user_id": rng.integers(0, n_users, 800),
                          "item_id": rng.integers(0, n_items, 800)})
    rows = []
    for user in range(0, n_users + 20):       # 20 users have lists but no truth
        length = rng.integers(1, list_len + 1)  # some lists shorter than k
        items = rng.permutation(n_items)[:length]
        rows.append(pd.DataFrame({"user_id": user, "item_id": items,
                                  "rank": np.arange(1, length + 1)}))
    recs = pd.concat(rows, ignore_index=True)
    return truth, recs


def _loop(truth, recs, k):
    "Plain per-user definitions (the reference)."
    relevant = truth.groupby("user_id")["item_id"].agg(set).to_dict()
    lists = recs.sort_values(["user_id", "rank"]).groupby("user_id")["item_id"].agg(list)
    out = {"precision": [], "recall": [], "ndcg": [], "map": [], "mrr": [], "hit": []}
    for user, items in lists.items():
        if user not in relevant:
            continue
        rel, top = relevant[user], items[:k]
        hits = [r for r, item in enumerate(top, start=1) if item in rel]
        out["precision"].append(len(hits) / k)
        out["recall"].append(len(hits) / len(rel))
        ideal = sum(1 / np.log2(r + 1) for r in range(1, min(len(rel), k) + 1))
        out["ndcg"].append(sum(1 / np.log2(r + 1) for r in hits) / ideal)
        out["map"].append(sum((j + 1) / r for j, r in enumerate(hits)) / min(len(rel), k))
        out["mrr"].append(1 / hits[0] if hits else 0.0)
        out["hit"].append(1.0 if hits else 0.0)
    return {name: np.mean(values) for name, values in out.items()}


@pytest.mark.parametrize("k", [1, 5, 10])
def test_accuracy_metrics_equal_per_user_definitions(k):
    truth, recs = _random_case()
    expected = _loop(truth, recs, k)
    got = evaluate_ranking(truth, recs, k=k, metrics=["precision_at_k", "recall_at_k",
                                                      "ndcg_at_k", "map_at_k", "mrr",
                                                      "hit_rate_at_k"])
    assert got[f"precision_at_{k}"] == pytest.approx(expected["precision"], abs=1e-12)
    assert got[f"recall_at_{k}"] == pytest.approx(expected["recall"], abs=1e-12)
    assert got[f"ndcg_at_{k}"] == pytest.approx(expected["ndcg"], abs=1e-12)
    assert got[f"map_at_{k}"] == pytest.approx(expected["map"], abs=1e-12)
    assert got["mrr"] == pytest.approx(expected["mrr"], abs=1e-12)
    assert got[f"hit_rate_at_{k}"] == pytest.approx(expected["hit"], abs=1e-12)


def test_auc_equals_pairwise_count():
    truth, recs = _random_case(seed=3, list_len=40)
    relevant = truth.groupby("user_id")["item_id"].agg(set).to_dict()
    values = []
    for user, items in recs.sort_values(["user_id", "rank"]).groupby("user_id")["item_id"]:
        if user not in relevant:
            continue
        labels = np.array([item in relevant[user] for item in items])
        pos, neg = labels.sum(), (~labels).sum()
        if pos and neg:
            # for each positive, count negatives ranked below it
            below = [(~labels[i + 1:]).sum() for i in np.flatnonzero(labels)]
            values.append(sum(below) / (pos * neg))
    assert RANKING_METRICS["auc"](truth, recs) == pytest.approx(np.mean(values), abs=1e-12)


def test_coverage_and_novelty_follow_recommenders_definitions():
    truth, recs = _random_case(seed=1)
    train = pd.DataFrame({"user_id": np.arange(300) % 50, "item_id": np.arange(300) % 30})
    evaluated = recs[recs.user_id.isin(truth.user_id) & (recs["rank"] <= 10)]
    coverage = evaluated.item_id.nunique() / train.item_id.nunique()
    counts = train.item_id.value_counts()
    known = evaluated[evaluated.item_id.isin(counts.index)]
    novelty = np.mean(-np.log2(counts.reindex(known.item_id).to_numpy() / len(train)))
    got = evaluate_ranking(truth, recs, k=10, metrics=["catalog_coverage", "novelty"], train=train)
    assert got["catalog_coverage"] == pytest.approx(coverage)
    assert got["novelty"] == pytest.approx(novelty)


def test_diversity_equals_mean_pairwise_cosine():
    truth, recs = _random_case(seed=2)
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"item_id": np.arange(40), "f1": rng.random(40),
                             "f2": rng.random(40), "colour": rng.choice(["r", "g"], 40)})
    vectors = np.column_stack([features.f1, features.f2, features.colour == "r",
                               features.colour == "g"]).astype(float)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    values = []
    top = recs[recs["rank"] <= 10].sort_values(["user_id", "rank"])
    for user, items in top.groupby("user_id")["item_id"]:
        if user not in set(truth.user_id) or len(items) < 2:
            continue
        v = vectors[items.to_numpy()]
        sims = [v[i] @ v[j] for i in range(len(v)) for j in range(i + 1, len(v))]
        values.append(1 - np.mean(sims))
    got = RANKING_METRICS["diversity"](truth, recs, k=10, item_features=features)
    assert got == pytest.approx(np.mean(values), abs=1e-12)


def test_kendall_tau_matches_scipy_on_common_items():
    rng = np.random.default_rng(4)
    a = pd.concat([pd.DataFrame({"user_id": u, "item_id": rng.permutation(20)[:10],
                                 "rank": np.arange(1, 11)}) for u in range(30)])
    b = pd.concat([pd.DataFrame({"user_id": u, "item_id": rng.permutation(20)[:10],
                                 "rank": np.arange(1, 11)}) for u in range(30)])
    values = []
    for user in range(30):
        left = a[a.user_id == user].set_index("item_id")["rank"]
        right = b[b.user_id == user].set_index("item_id")["rank"]
        common = left.index.intersection(right.index)
        if len(common) >= 2:
            values.append(kendalltau(left[common], right[common]).statistic)
    assert RANKING_METRICS["kendall_tau"](a, b, k=10) == pytest.approx(np.mean(values))


def test_every_metric_shares_the_signature():
    truth, recs = _random_case(seed=5)
    train = truth
    features = pd.DataFrame({"item_id": np.arange(40), "category": np.arange(40) % 4})
    for name, metric in RANKING_METRICS.items():
        reference = recs if name == "kendall_tau" else truth   # tau compares two rankings
        value = metric(reference, recs, k=5, train=train, item_features=features)
        assert np.isfinite(value), name


def test_bad_inputs_are_named():
    truth, recs = _random_case()
    with pytest.raises(SchemaError, match="recs has no column 'user_id'"):
        rank_lists(truth, recs.rename(columns={"user_id": "customer"}))
    with pytest.raises(DataError, match="more than once"):
        rank_lists(truth, pd.concat([recs, recs.head(2)]))
    with pytest.raises(ValueError, match="needs `item_features`"):
        RANKING_METRICS["diversity"](truth, recs)
