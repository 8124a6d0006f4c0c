"""NeuMF: negative sampling never returns a positive, pre-training starts NeuMF from its branches,
early stopping keeps the best epoch, the sampled protocol's ranks, and ONNX parity on a
fixture of real Online Retail lines."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retail_workbench.recsys.neumf import (NeuMFRecommender, _sample_negatives, leave_one_out,
                                          sampled_ranking)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _two_tastes(n_users=40, n_items=30, per_user=6, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    half = n_items // 2
    for user in range(n_users):
        group = np.arange(half) + (half if user % 2 else 0)
        for t, item in enumerate(rng.choice(group, per_user, replace=False)):
            rows.append((user, int(item), pd.Timestamp("2024-01-01") + pd.Timedelta(days=t)))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "ts"])


def test_negatives_avoid_every_positive():
    rng = np.random.default_rng(0)
    n_items = 50
    users = rng.integers(0, 20, 400)
    items = rng.integers(0, n_items, 400)
    keys = np.unique(users.astype(np.int64) * n_items + items)
    drawn = _sample_negatives(np.repeat(np.arange(20), 500), n_items, keys, rng)
    assert not np.isin(np.repeat(np.arange(20), 500).astype(np.int64) * n_items + drawn, keys).any()


def test_pretrained_neumf_starts_from_its_branches():
    import torch
    data = _two_tastes()
    model = NeuMFRecommender(factors=4, epochs=2, pretrain=True, alpha=0.3, random_state=0)
    model._check_params()
    model._fit_index(data)
    n_users = len(model.user_index_)
    gmf, mlp = model._new_network("gmf", n_users), model._new_network("mlp", n_users)
    joined = model._joined(gmf, mlp)
    users, items = torch.tensor([0, 5, 9]), torch.tensor([1, 2, 20])
    with torch.no_grad():
        expected = 0.3 * gmf(users, items) + 0.7 * mlp(users, items)
        torch.testing.assert_close(joined(users, items), expected, atol=1e-6, rtol=0)


def test_early_stopping_keeps_the_best_epoch():
    model = NeuMFRecommender(factors=4, epochs=30, learning_rate=0.05, patience=2,
                             random_state=0)
    snapshots = [model.weights_["output.weight"].copy() for _ in model.fit_epochs(_two_tastes())]
    scores = pd.DataFrame(model.history_)["valid_ndcg_at_10"].to_numpy()
    assert len(scores) < 30 and model.epochs_trained_ == len(scores)   # stopped early
    assert scores[-2:].max() <= scores[:-2].max()     # because two epochs brought no gain
    best = int(np.argmax(scores))
    np.testing.assert_array_equal(model.weights_["output.weight"], snapshots[best])
    assert not np.array_equal(snapshots[best], snapshots[len(scores) - 1])


def test_sampled_ranking_of_an_oracle_and_its_opposite():
    data = _two_tastes()
    train, test = leave_one_out(data)

    class Oracle:
        "Ranks each user's held-out item first (or last with `worst`)."
        def __init__(self, worst=False):
            self.worst = worst
            self.user_index_ = pd.Index(sorted(train.user_id.unique()))
            self.item_index_ = pd.Index(sorted(train.item_id.unique()))

        def recommend(self, user_ids, k=10, exclude_seen=False, items=None):
            rows = []
            allowed = self.item_index_ if items is None else items
            for user in user_ids:
                target = test.loc[test.user_id == user, "item_id"].iloc[0]
                order = [target] + [i for i in allowed if i != target]
                order = order[::-1] if self.worst else order
                rows += [(user, item, -rank, rank + 1) for rank, item in enumerate(order[:k])]
            return pd.DataFrame(rows, columns=["user_id", "item_id", "score", "rank"])

    best = sampled_ranking(Oracle(), train, test, n_negatives=10)
    worst = sampled_ranking(Oracle(worst=True), train, test, n_negatives=10)
    assert best["sampled_hr_at_10"] == best["sampled_ndcg_at_10"] == 1.0
    assert worst["sampled_hr_at_10"] == 0.0      # 10 negatives all rank above it: position 10


@pytest.mark.skipif(not (FIXTURES / "online_retail" / "online_retail_sample.csv").exists(),
                    reason="Online Retail fixture absent")
def test_onnx_parity_on_real_lines():
    from retail_workbench.data.loaders import load_online_retail
    from retail_workbench.ops.neumf import neumf_parity
    from retail_workbench.recsys.recommend import recommender_tables
    tables = recommender_tables(load_online_retail(str(FIXTURES / "online_retail" / "online_retail_sample.csv")))
    train, test = leave_one_out(tables["interactions"])
    model = NeuMFRecommender(factors=4, epochs=2, random_state=0).fit(train)
    users = test.user_id[test.user_id.isin(model.user_index_)].unique()
    parity = neumf_parity(model, users, k=10, n_pairs=2000)
    assert parity["topk_same_items"], parity
    assert parity["topk_max_abs_diff"] < 1e-5 and parity["pair_max_abs_diff"] < 1e-5, parity
