"ops.onnx: sessions, opset of every exporter, float32 threshold snapping, one scorer interface."
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
from sklearn.tree import DecisionTreeRegressor

import retail_workbench
from retail_workbench.core import ConfigError
from retail_workbench.ops.onnx import (
    IR_VERSION, OPSET, OnnxPropensityScorer, OnnxRecommender, OnnxScorer, OnnxSearchScorer,
    build_score_graph, build_topk_graph, default_opset, load_model, make_session,
    propensity_to_onnx, ranker_to_onnx, recommender_to_onnx, save_model,
    snap_float32_thresholds,
)

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def recommender():
    from retail_workbench.recsys.recommend import LightFMRecommender
    interactions = pd.DataFrame({"user_id": RNG.integers(0, 40, 400),
                                 "item_id": RNG.integers(0, 25, 400)})
    return LightFMRecommender(no_components=4, epochs=2, random_state=0).fit(interactions)


@pytest.fixture(scope="module")
def propensity():
    from retail_workbench.customers.propensity import make_propensity_pipeline
    X = pd.DataFrame({"a": RNG.normal(size=200).astype(np.float32),
                      "b": RNG.normal(size=200).astype(np.float32),
                      "kind": RNG.choice(["x", "y"], 200).astype(object)})
    y = (X["a"] + (X["kind"] == "x") > 0.5).astype(int)
    pipeline = make_propensity_pipeline("gbm", n_estimators=10, cv=2, numeric=("a", "b"),
                                        categorical=("kind",), random_state=0)
    return pipeline.fit(X, y), X


@pytest.fixture(scope="module")
def ranker():
    from retail_workbench.data.synth import make_world
    from retail_workbench.search.rank import SearchRanker
    world = make_world(n_users=300, n_items=60, n_days=60, seed=1)
    return SearchRanker(n_estimators=5, random_state=0).fit(world.search_impressions,
                                                            world.catalog)


def test_sessions_honour_the_thread_count(tmp_path):
    path = save_model(build_score_graph(np.ones((3, 2)), np.ones((4, 2))), tmp_path / "m.onnx")
    for threads in (1, 3):
        options = make_session(path, threads=threads).get_session_options()
        assert (options.intra_op_num_threads, options.inter_op_num_threads) == (threads, 1)
    assert OnnxScorer(path, threads=2).session.get_session_options().intra_op_num_threads == 2
    assert OnnxScorer(path).session.get_session_options().intra_op_num_threads == 1
    with pytest.raises(ConfigError, match="threads=-2"):
        make_session(path, threads=-2)


def test_every_exporter_writes_opset_and_ir_version(recommender, propensity, ranker, tmp_path):
    pipeline, X = propensity
    models = {
        "recommender": recommender_to_onnx(recommender, tmp_path / "recommender.onnx"),
        "propensity": propensity_to_onnx(pipeline, X, tmp_path / "propensity.onnx"),
        "ranker": ranker_to_onnx(ranker, tmp_path / "ranker.onnx"),
        "topk": build_topk_graph(np.ones((3, 2)), np.zeros(3), np.ones((4, 2)), np.zeros(4)),
        "score": build_score_graph(np.ones((3, 2)), np.ones((4, 2))),
    }
    for name, model in models.items():
        assert default_opset(model) == OPSET, name
        assert model.ir_version == IR_VERSION, name
    for name in ("recommender", "propensity", "ranker"):
        saved = load_model(tmp_path / f"{name}.onnx")
        assert (default_opset(saved), saved.ir_version) == (OPSET, IR_VERSION), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["propensity.onnx", "ranker.onnx",
                                                           "recommender.onnx"]


def _all_thresholds(estimator) -> np.ndarray:
    trees = [e.tree_ for e in np.ravel(estimator.estimators_)]
    return np.concatenate([t.threshold[t.feature >= 0] for t in trees])


def test_snapping_makes_thresholds_float32_exact_without_changing_predictions():
    X = RNG.normal(size=(400, 4)).astype(np.float32)
    y = X[:, 0] * 2 + X[:, 1] ** 2
    for model in (GradientBoostingRegressor(n_estimators=15, random_state=0).fit(X, y),
                  RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y > 1)):
        before = model.predict(X)
        thresholds = _all_thresholds(model)
        assert (thresholds.astype(np.float32).astype(np.float64) != thresholds).any()
        assert snap_float32_thresholds(model) > 0
        snapped = _all_thresholds(model)
        np.testing.assert_array_equal(snapped.astype(np.float32).astype(np.float64), snapped)
        assert (snapped <= thresholds).all()
        np.testing.assert_array_equal(model.predict(X), before)
        assert snap_float32_thresholds(model) == 0


def test_snapping_rounds_down_where_nearest_rounding_would_move_a_value_across():
    low = np.float32(1e6)  # neighbours 1/16 apart (trees do not split closer than 1e-7)
    while np.float32((np.float64(low) + np.float64(np.nextafter(low, np.inf))) / 2) == low:
        low = np.nextafter(low, np.float32(np.inf))   # until the midpoint rounds up (ties to even)
    high = np.nextafter(low, np.float32(np.inf))
    X = np.array([[low], [high]], np.float32)
    tree = DecisionTreeRegressor().fit(X, [0.0, 1.0])
    assert np.float32(tree.tree_.threshold[0]) == high   # nearest float32 would send `high` left
    assert snap_float32_thresholds(tree) == 1
    assert tree.tree_.threshold[0] == np.float64(low)    # the largest float32 below the split
    assert tree.predict(X).tolist() == [0.0, 1.0]


def test_snapping_reaches_the_trees_inside_a_calibrated_pipeline():
    from retail_workbench.customers.propensity import make_propensity_pipeline
    X = pd.DataFrame({"a": RNG.normal(size=120).astype(np.float32),
                      "kind": RNG.choice(["x", "y"], 120).astype(object)})
    y = (X["a"] > 0).astype(int)
    pipeline = make_propensity_pipeline("gbm", n_estimators=5, cv=2, numeric=("a",),
                                        categorical=("kind",), random_state=0).fit(X, y)
    before = pipeline.predict_proba(X)
    assert snap_float32_thresholds(pipeline) > 0
    for calibrated in pipeline.steps[-1][1].calibrated_classifiers_:
        snapped = _all_thresholds(calibrated.estimator)
        np.testing.assert_array_equal(snapped.astype(np.float32).astype(np.float64), snapped)
    np.testing.assert_array_equal(pipeline.predict_proba(X), before)


def test_family_scorers_share_the_base_interface(recommender, propensity, ranker, tmp_path):
    pipeline, X = propensity
    scorers = {
        "recommender": OnnxRecommender.from_recommender(recommender, threads=2),
        "propensity": OnnxPropensityScorer(propensity_to_onnx(pipeline, X), threads=2),
        "search": OnnxSearchScorer(ranker_to_onnx(ranker), ranker.featurizer_, threads=2),
    }
    for name, scorer in scorers.items():
        assert isinstance(scorer, OnnxScorer), name
        assert scorer.session.get_session_options().intra_op_num_threads == 2, name
        assert scorer.input_names == [i.name for i in scorer.session.get_inputs()], name
        path = scorer.save(tmp_path / f"{name}.onnx")
        assert load_model(path).SerializeToString() == scorer.model_bytes(), name
    probabilities = scorers["propensity"].predict_proba(X)
    np.testing.assert_allclose(probabilities, pipeline.predict_proba(X)[:, 1], atol=1e-6)
    assert OnnxRecommender(tmp_path / "recommender.onnx").recommend(0, k=3)["items"]


def test_save_replaces_a_file_without_leaving_temporaries(tmp_path):
    target = tmp_path / "deep" / "model.onnx"
    save_model(build_score_graph(np.ones((2, 2)), np.ones((3, 2))), target)
    save_model(build_score_graph(np.ones((5, 2)), np.ones((3, 2))).SerializeToString(), target)
    assert load_model(target).graph.initializer[0].dims == [5, 2]
    assert [p.name for p in target.parent.iterdir()] == ["model.onnx"]


def test_model_families_contain_no_onnx_code():
    package = Path(retail_workbench.__file__).parent
    onnx_import = re.compile(r"^\s*(import|from)\s+(onnx|onnxruntime|skl2onnx)\b", re.M)
    for family in ("recsys", "customers", "search"):
        for module in (package / family).glob("*.py"):
            assert not onnx_import.search(module.read_text()), module
