"Two-stage recommender: point-in-time features, generators that plug in, the interface, ONNX parity."
import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retail_workbench.core import UnknownIdError
from retail_workbench.data.datasets import resolve_source
from retail_workbench.data.synth import make_world
from retail_workbench.recsys.recommend import (ItemKNNRecommender, PopularityRecommender,
                                               recommender_tables)
from retail_workbench.recsys.split import chronological_split
from retail_workbench.recsys.two_stage import TwoStageRecommender, feature_tables

FIXTURE = Path(__file__).parents[1] / "fixtures" / "online_retail" / "online_retail_sample.csv"
PARAMS = dict(n_candidates=25, label_days=14, n_estimators=30, min_child_samples=5,
              random_state=0)


class TopSellers:
    "A recommender from outside the package: items by units sold, nothing else (no BaseEstimator)."

    def fit(self, interactions):
        self.units_ = interactions.groupby("item_id")["value"].sum().sort_values(ascending=False)
        self.seen_ = interactions.groupby("user_id")["item_id"].agg(set)
        return self

    def recommend(self, user_ids, k=10, exclude_seen=True):
        rows = []
        for user in user_ids:
            seen = self.seen_.get(user, set()) if exclude_seen else set()
            top = [item for item in self.units_.index if item not in seen][:k]
            rows += [(user, item, float(self.units_[item]), rank + 1)
                     for rank, item in enumerate(top)]
        return pd.DataFrame(rows, columns=["user_id", "item_id", "score", "rank"])


def _generators():
    return [("item_knn", ItemKNNRecommender()), ("popular", PopularityRecommender(window_days=14))]


@pytest.fixture(scope="module")
def world():
    world = make_world(n_users=200, n_items=40, n_days=60, seed=3)
    train, test = chronological_split(world.interactions, test_frac=0.2)
    return world, train, test


@pytest.fixture(scope="module")
def fitted(world):
    world, train, _ = world
    return TwoStageRecommender(_generators(), **PARAMS).fit(train, world.catalog)


@pytest.fixture(scope="module")
def retail():
    source = resolve_source(str(FIXTURE), tables=("interactions",), format="online_retail")
    return recommender_tables(source.tables)["interactions"]


def _tables_equal(first: dict, second: dict):
    for name in ("users", "items", "pairs", "user_bands"):
        pd.testing.assert_frame_equal(first[name].sort_index().to_frame()
                                      if isinstance(first[name], pd.Series)
                                      else first[name].sort_index(),
                                      second[name].sort_index().to_frame()
                                      if isinstance(second[name], pd.Series)
                                      else second[name].sort_index())


def test_features_ignore_everything_at_or_after_the_cutoff(retail):
    cutoff = pd.Timestamp("2010-12-02")
    before = retail[retail.ts < cutoff]
    expected = feature_tables(retail, cutoff, price_bands=3)
    # the future rewritten: prices tripled, every later line repeated, a purchase exactly at the
    # cutoff of a pair bought before it, and new users and items
    later = retail[retail.ts >= cutoff]
    pair = before.iloc[0]
    future = pd.concat([later.assign(price=later.price * 3), later,
                        pd.DataFrame({"user_id": [pair.user_id, "new"],
                                      "item_id": [pair.item_id, "NEWITEM"],
                                      "ts": [cutoff, cutoff + pd.Timedelta("1h")],
                                      "event": "order", "price": [99.0, 1.0]})])
    rewritten = pd.concat([before, future], ignore_index=True)
    _tables_equal(expected, feature_tables(rewritten, cutoff, price_bands=3))
    assert "new" not in expected["users"].index and "NEWITEM" not in expected["items"].index
    # one more purchase just before the cutoff does count (the check can fail)
    earlier = pd.DataFrame({"user_id": [pair.user_id], "item_id": [pair.item_id],
                            "ts": [cutoff - pd.Timedelta("1s")], "event": "order",
                            "price": [pair.price]})
    moved = feature_tables(pd.concat([retail, earlier], ignore_index=True), cutoff, price_bands=3)
    key = (pair.user_id, pair.item_id)
    assert moved["pairs"].loc[key, "ui_orders"] == expected["pairs"].loc[key, "ui_orders"] + 1
    assert moved["pairs"].loc[key, "ui_days_since"] < 1e-4


def test_the_classifier_learns_only_from_before_the_cutoff_and_the_labels(world, fitted):
    world, train, _ = world
    # views in the label window change no label (sales are orders) and no feature as of the
    # cutoff, so the trees must come out the same (a feature that counted them, like ui_events,
    # would change them); stage 1 for serving does see them
    window = train[train.ts >= fitted.cutoff_]
    views = window.assign(event="view").iloc[: len(window) // 2]
    noisy = pd.concat([train, views], ignore_index=True)
    other = TwoStageRecommender(_generators(), **PARAMS).fit(noisy, world.catalog)
    assert other.cutoff_ == fitted.cutoff_
    assert other.model_.booster_.model_to_string() == fitted.model_.booster_.model_to_string()
    assert len(other.tables_["users"]) == len(fitted.tables_["users"])


def test_recommend_interface_and_seen_items(world, fitted):
    _, train, _ = world
    users = train.user_id.unique()[:5]
    recs = fitted.recommend(users, k=7)
    assert list(recs.columns) == ["user_id", "item_id", "score", "rank"]
    assert recs.groupby("user_id").size().eq(7).all()
    assert recs.groupby("user_id")["rank"].apply(list).map(lambda r: r == list(range(1, 8))).all()
    assert recs.groupby("user_id").score.is_monotonic_decreasing.all()
    seen = set(map(tuple, train[["user_id", "item_id"]].to_numpy()))
    assert not any((u, i) in seen for u, i in zip(recs.user_id, recs.item_id))
    with_seen = fitted.recommend(users, k=7, exclude_seen=False)
    assert any((u, i) in seen for u, i in zip(with_seen.user_id, with_seen.item_id))
    assert fitted.feature_names_[:4] == ["item_knn_score", "item_knn_rank", "popular_score",
                                         "popular_rank"]
    assert 0 < fitted.train_positives_ < fitted.train_rows_


def test_a_generator_from_outside_plugs_in(world, fitted):
    world, train, _ = world
    model = TwoStageRecommender([("sellers", TopSellers()), ("item_knn", ItemKNNRecommender())],
                                **PARAMS).fit(train)
    assert {"sellers_score", "sellers_rank"} <= set(model.feature_names_)
    users = train.user_id.unique()[:3]
    recs = model.recommend(users, k=5)
    assert recs.groupby("user_id").size().tolist() == [5, 5, 5]
    # TopSellers serves anyone; with item-kNN alone an unknown user is an error
    assert len(model.recommend([10**9], k=3)) == 3
    knn_only = copy.copy(fitted)  # serving with item-kNN alone (no refit needed to check this)
    knn_only.generators_ = [pair for pair in fitted.generators_ if pair[0] == "item_knn"]
    with pytest.raises(UnknownIdError, match="not seen in training"):
        knn_only.recommend([10**9])


def test_onnx_reranker_matches_the_booster(world, fitted):
    from retail_workbench.ops.onnx import OPSET, default_opset
    from retail_workbench.ops.two_stage import OnnxReRanker, reranker_parity
    _, train, _ = world
    scorer = OnnxReRanker.from_model(fitted)
    assert default_opset(scorer.model_bytes()) == OPSET
    parity = reranker_parity(fitted, scorer, train.user_id.unique())
    assert parity["rows"] > 1000
    assert parity["max_abs_diff"] < 1e-5 and parity["max_rank_score_gap"] < 1e-5, parity


def test_the_family_is_registered():
    from retail_workbench.ops.families import family_names, get_family
    assert "two_stage" in family_names()
    assert get_family("two_stage").gate.metric == "ndcg_at_10"
