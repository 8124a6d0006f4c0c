"ONNX scorer: parity with the Python model for every user of a test set, known and cold."
import numpy as np
import onnx
import pytest

from retail_workbench.core import UnknownIdError
from retail_workbench.recsys.recommend import LightFMRecommender
from retail_workbench.recsys.split import chronological_split, cold_user_split
from retail_workbench.data.synth import make_world
from retail_workbench.ops.onnx import (OnnxRecommender, OnnxScorer, build_topk_graph,
                                       recommender_to_onnx)


@pytest.fixture(scope="module")
def setup():
    world = make_world(n_users=500, n_items=90, n_days=90, seed=2)
    train, test = chronological_split(world.interactions, test_frac=0.3)
    model = LightFMRecommender(no_components=24, epochs=4, random_state=0)
    model.fit(train, catalog=world.catalog, customers=world.customers)
    return world, train, test, model


def test_every_test_user_gets_the_same_top_k_and_scores(setup):
    world, train, test, model = setup
    history, _ = cold_user_split(train, test, n_history=3)
    users = test.user_id.unique()            # warm users, folded-in users, attribute-only users
    assert (~np.isin(users, train.user_id)).sum() > 10
    scorer = OnnxRecommender.from_recommender(model)
    python = model.recommend(users, k=10, interactions=history, customers=world.customers)
    exported = scorer.recommend_batch(users, k=10, interactions=history,
                                      customers=world.customers)
    assert len(python) == len(exported) == 10 * len(users)
    assert (python.user_id.to_numpy() == exported.user_id.to_numpy()).all()
    assert (python.item_id.to_numpy() == exported.item_id.to_numpy()).all()
    assert np.abs(python.score.to_numpy() - exported.score.to_numpy()).max() < 1e-6


def test_graph_is_valid_onnx_and_masks_seen_items(setup):
    _, train, _, model = setup
    graph = recommender_to_onnx(model)
    onnx.checker.check_model(graph)
    scorer = OnnxRecommender(graph, recommender=model)
    user = model.user_index_[0]
    recs = scorer.recommend_batch([user], k=len(model.item_index_))
    seen = set(train.item_id[train.user_id == user])
    assert not seen & set(recs.item_id)
    assert len(recs) == len(model.item_index_) - len(seen)


def test_unknown_users_without_cold_start_data_fail(setup):
    _, _, _, model = setup
    with pytest.raises(UnknownIdError, match="not seen in training"):
        OnnxRecommender.from_recommender(model).recommend_batch(["ghost"])


def test_file_alone_serves_ids_from_metadata_with_seen_masking(setup, tmp_path):
    _, train, _, model = setup
    path = OnnxRecommender.from_recommender(model).save(tmp_path / "rec.onnx")
    alone = OnnxRecommender(path)
    users = list(model.user_index_[:20])
    served = alone.recommend_batch(users, k=5, seen=train[["user_id", "item_id"]])
    python = model.recommend(users, k=5)
    assert (served.item_id.to_numpy() == python.item_id.to_numpy()).all()
    assert np.abs(served.score.to_numpy() - python.score.to_numpy()).max() < 1e-6
    one = alone.recommend(users[0], k=5, seen=train[["user_id", "item_id"]])
    assert [r["item_id"] for r in one["items"]] == python.item_id.tolist()[:5]
    assert not one["cold_start"] and alone.recommend("ghost", k=3)["cold_start"]


def test_raw_graph_matches_numpy_argpartition():
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(20, 8)), rng.normal(size=(300, 8))
    biases = rng.normal(size=300)
    scorer = OnnxScorer(build_topk_graph(users, np.zeros(20), items, biases))
    scores, codes = scorer.run({"user_index": np.arange(20, dtype=np.int64),
                                "user_features": np.zeros((20, 1), np.float32),
                                "history": np.zeros((20, 300), np.float32),
                                "k": np.array([10], np.int64)})
    expected = (users @ items.T + biases).astype(np.float32)
    top = np.argsort(-expected, axis=1)[:, :10]
    np.testing.assert_array_equal(codes, top)
    np.testing.assert_allclose(scores, np.take_along_axis(expected, top, axis=1), atol=1e-4)
