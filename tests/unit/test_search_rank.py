"Search ranking: BM25, position-bias EM, features, metrics, ranker vs baselines, ONNX parity."
import numpy as np
import pandas as pd
import pytest

from retail_workbench.core import ConfigError, DataError, NotFittedError, SchemaError
from retail_workbench.search.rank import (
    BM25Index, SearchFeaturizer, SearchRanker, estimate_position_bias,
    evaluate_search, kendall_tau, graded_ndcg_at_k, popularity_scores, split_log,
    text_match_scores,
)
from retail_workbench.data.synth import make_world
from retail_workbench.ops.onnx import OnnxSearchScorer, ranker_to_onnx


@pytest.fixture(scope="module")
def world():
    return make_world(n_users=1000, n_items=150, seed=4)


def test_bm25_prefers_rare_words_and_matches():
    index = BM25Index().fit(["a", "b", "c"], ["green tea", "green coffee", "black coffee"])
    scores = index.scores("green tea")
    assert scores.argmax() == 0
    assert scores[2] == 0
    assert index.scores("tea")[0] > index.scores("green")[0]   # "tea" is rarer than "green"


def test_ndcg_and_tau_by_hand():
    truth = pd.DataFrame({"query": ["q"] * 4, "item_id": [1, 2, 3, 4], "relevance": [0, 3, 1, 0]})
    scored = truth.assign(score=[4.0, 3.0, 2.0, 1.0])
    discount = 1 / np.log2(np.arange(2, 6))
    dcg = (np.array([0, 7, 1, 0]) * discount).sum()
    idcg = (np.array([7, 1, 0, 0]) * discount).sum()
    assert graded_ndcg_at_k(truth, scored, 10) == pytest.approx(dcg / idcg)
    assert graded_ndcg_at_k(truth, scored, 1) == 0.0
    assert kendall_tau(truth, truth.assign(score=truth["relevance"])) == pytest.approx(1.0)
    with pytest.raises(SchemaError, match="score"):
        graded_ndcg_at_k(truth, truth)


def test_position_bias_estimate_close_to_truth(world):
    estimate = estimate_position_bias(world.search_impressions)
    truth = world.truth.position_bias / world.truth.position_bias[0]
    assert np.abs(estimate - truth).max() < 0.1
    assert np.all(np.diff(estimate) < 0.02)   # decreasing (up to noise)


def test_featurizer_errors(world):
    featurizer = SearchFeaturizer().fit(world.search_impressions, world.catalog)
    with pytest.raises(DataError, match="not in the catalog"):
        featurizer.transform(pd.DataFrame({"query": ["tea"], "item_id": [99_999]}))
    with pytest.raises(SchemaError, match="position"):
        SearchFeaturizer().fit(world.search_impressions.drop(columns="position"), world.catalog)
    with pytest.raises(ConfigError, match="debias"):
        SearchRanker(debias="dcm").fit(world.search_impressions, world.catalog)
    with pytest.raises(NotFittedError):
        SearchRanker().rank("tea", [1, 2])


@pytest.mark.slow
def test_ranker_beats_baselines_and_onnx_matches(world, tmp_path):
    train, test = split_log(world.search_impressions)
    truth = world.truth.relevance
    pairs = truth[truth["query"].isin(test["query"].unique())].reset_index(drop=True)
    ranker = SearchRanker(n_estimators=60, random_state=0).fit(train, world.catalog)
    ltr = evaluate_search(pairs, pairs.assign(score=ranker.score(pairs)))
    text = evaluate_search(pairs, pairs.assign(score=text_match_scores(ranker.featurizer_, pairs)))
    pop = evaluate_search(pairs, pairs.assign(score=popularity_scores(ranker.featurizer_, pairs)))
    assert ltr["graded_ndcg_at_10"] > text["graded_ndcg_at_10"] + 0.02
    assert ltr["graded_ndcg_at_10"] > pop["graded_ndcg_at_10"] + 0.2
    query = pairs["query"].iloc[0]
    candidates = pairs.loc[pairs["query"] == query, "item_id"].to_numpy()
    ranked = ranker.rank(query, candidates)
    assert ranked["rank"].tolist() == list(range(1, len(candidates) + 1))
    ranker_to_onnx(ranker, tmp_path / "r.onnx")
    onnx = OnnxSearchScorer(tmp_path / "r.onnx", ranker.featurizer_)
    assert np.abs(onnx.score(pairs) - ranker.score(pairs)).max() < 1e-4
