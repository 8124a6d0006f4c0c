"Serving: the ONNX recommender scorer, the HTTP service and its reload, batch scoring, Triton export."
import json
import sys
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from retail_workbench.core import ConfigError, SourceNotFoundError
from retail_workbench.ops.registry import promote, register_version
from retail_workbench.ops.onnx import (OPSET, OnnxRecommender, annotate_recommender,
                                       build_score_graph, build_topk_graph)
from retail_workbench.ops.serving import (RecommendService, export_triton, resolve_onnx,
                                          score_batch, triton_config)
from retail_workbench.ops.tracking import training_run

RNG = np.random.default_rng(0)
U = RNG.normal(size=(6, 4)).astype(np.float32)
V = RNG.normal(size=(20, 4)).astype(np.float32)
USERS = [f"u{i}" for i in range(6)]
ITEMS = list(range(100, 120))
RWB = str(Path(sys.executable).parent / "rwb")


def score_matrix_model(user_factors, item_factors, popular=None):
    "A servable score-matrix recommender over USERS and ITEMS."
    return annotate_recommender(build_score_graph(user_factors, item_factors), USERS, ITEMS, popular)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "rec.onnx"
    onnx.save(score_matrix_model(U, V, popular=list(range(19, -1, -1))), path)
    return path


def test_scorer_matches_numpy_and_handles_cold_start(model_file):
    scorer = OnnxRecommender(model_file)
    for user in range(6):
        expected = (np.argsort(-(U[user] @ V.T))[:5] + 100).tolist()
        assert [r["item_id"] for r in scorer.recommend(f"u{user}", 5)["items"]] == expected
    cold = scorer.recommend("never-seen", 3)
    assert cold["cold_start"] and [r["item_id"] for r in cold["items"]] == [119, 118, 117]
    with pytest.raises(ConfigError, match="at least 1"):
        scorer.recommend("u1", 0)


def test_batch_leaves_out_seen_items(model_file):
    scorer = OnnxRecommender(model_file)
    best = int(np.argmax(U[1] @ V.T)) + 100
    seen = pd.DataFrame({"user_id": ["u1"], "item_id": [best]})
    recs = scorer.recommend_batch(["u1", "zz"], k=4, seen=seen)
    assert best not in recs[recs.user_id == "u1"].item_id.tolist()
    assert recs.groupby("user_id")["rank"].apply(list).to_dict() == {"u1": [1, 2, 3, 4],
                                                                     "zz": [1, 2, 3, 4]}


def test_lightfm_topk_graph_is_served_with_its_cold_start_row():
    graph = build_topk_graph(U, np.zeros(6, np.float32), V, np.linspace(0, 1, 20).astype(np.float32))
    path = Path(__import__("tempfile").mkdtemp()) / "lightfm.onnx"
    onnx.save(annotate_recommender(graph, USERS, ITEMS), path)
    scorer = OnnxRecommender(path)
    assert scorer.topk_graph
    expected = (np.argsort(-(U[2] @ V.T + np.linspace(0, 1, 20)))[:3] + 100).tolist()
    assert [r["item_id"] for r in scorer.recommend("u2", 3)["items"]] == expected
    cold = scorer.recommend("new", 2)
    assert cold["cold_start"] and [r["item_id"] for r in cold["items"]] == [119, 118]
    config = triton_config(graph, "lightfm")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for tensor in session.get_inputs() + session.get_outputs():
        assert f'name: "{tensor.name}"' in config
    assert "max_batch_size: 0" in config  # k is not batched, so full shapes are written
    assert 'name: "history"\n    data_type: TYPE_FP32\n    dims: [ -1, 20 ]' in config
    assert 'name: "k"\n    data_type: TYPE_INT64\n    dims: [ 1 ]' in config
    assert 'name: "item_codes"\n    data_type: TYPE_INT64' in config


def test_triton_repository_layout_and_config(model_file, tmp_path):
    folder = export_triton(str(model_file), tmp_path / "repo", name="rec", version=3)
    assert (folder / "3" / "model.onnx").exists()
    config = (folder / "config.pbtxt").read_text()
    assert config.startswith('name: "rec"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 64')
    assert 'name: "user_index"\n    data_type: TYPE_INT64\n    dims: [ 1 ]' in config
    assert 'name: "scores"\n    data_type: TYPE_FP32\n    dims: [ 20 ]' in config


def test_score_batch_streams_chunks_to_parquet_and_csv(model_file, tmp_path):
    users = pd.DataFrame({"user_id": (USERS + ["new"]) * 5})
    users.to_csv(tmp_path / "users.csv", index=False)
    report = score_batch(str(model_file), tmp_path / "users.csv", tmp_path / "out.parquet", k=3,
                         chunk_rows=4)
    assert (report["rows_in"], report["rows_out"]) == (35, 105)
    out = pd.read_parquet(tmp_path / "out.parquet")
    first = out[out.user_id == "u0"].item_id.tolist()[:3]
    assert first == (np.argsort(-(U[0] @ V.T))[:3] + 100).tolist()
    users.to_parquet(tmp_path / "users.parquet")
    score_batch(str(model_file), tmp_path / "users.parquet", tmp_path / "out.csv", k=2, chunk_rows=6)
    assert len(pd.read_csv(tmp_path / "out.csv")) == 70
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        score_batch(str(model_file), tmp_path / "none.csv", tmp_path / "x.csv")


def test_score_batch_with_a_tabular_model(tmp_path):
    w = numpy_helper.from_array(np.array([[2.0], [1.0]], np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "linear",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=9)
    model.metadata_props.append(onnx.StringStringEntryProto(key="rwb.features",
                                                            value=json.dumps(["a", "b"])))
    onnx.save(model, tmp_path / "linear.onnx")
    pd.DataFrame({"id": range(10), "a": np.arange(10.0), "b": 1.0}).to_parquet(tmp_path / "in.parquet")
    score_batch(str(tmp_path / "linear.onnx"), tmp_path / "in.parquet", tmp_path / "out.parquet",
                chunk_rows=3)
    out = pd.read_parquet(tmp_path / "out.parquet")
    np.testing.assert_allclose(out.prediction, 2 * np.arange(10.0) + 1)


def _register(model):
    with training_run("recommender") as run:
        run.log_model(onnx_model=model)
    return register_version(run.model_uri, "recommender")


def _get(url):
    return json.loads(urllib.request.urlopen(url, timeout=30).read())


def test_service_answers_and_reloads_when_the_champion_moves():
    promote("recommender", _register(score_matrix_model(U, V)))
    service = RecommendService(["recommender"], port=0, poll_seconds=0.2).start()
    try:
        assert service.host == "127.0.0.1"
        health = _get(service.url + "/health")
        assert (health["status"], health["reloads"], health["models"]) == ("ok", 0, {"recommender": "1"})
        assert service.health() == {"status": "ok", "alias": "champion", "reloads": 0,
                                    "models": {"recommender": "1"}}
        answer = _get(service.url + "/recommend?user_id=u3&k=2")
        assert [r["item_id"] for r in answer["items"]] == (np.argsort(-(U[3] @ V.T))[:2] + 100).tolist()
        assert _get(service.url + "/recommend?user_id=ghost&k=2")["cold_start"] is True
        for path, code in (("/recommend?k=2", 400), ("/nothing", 404),
                           ("/recommend?user_id=u1&k=x", 400)):
            with pytest.raises(urllib.error.HTTPError) as failure:
                urllib.request.urlopen(service.url + path, timeout=30)
            assert failure.value.code == code
        promote("recommender", _register(score_matrix_model(U, -V)))
        deadline = time.time() + 20
        while _get(service.url + "/health")["models"]["recommender"] != "2":
            assert time.time() < deadline, "the service did not reload the new champion"
            time.sleep(0.1)
        answer = _get(service.url + "/recommend?user_id=u3&k=1")
        assert answer["items"][0]["item_id"] == int(np.argmin(U[3] @ V.T)) + 100
    finally:
        service.stop()


def test_resolve_reports_unknown_models():
    with pytest.raises(SourceNotFoundError, match="not in the registry"):
        resolve_onnx("nothing@champion")


def test_cli_score_and_registry(model_file, tmp_path, workspace_home):
    promote("recommender", _register(score_matrix_model(U, V)))
    pd.DataFrame({"user_id": USERS}).to_parquet(tmp_path / "users.parquet")
    result = subprocess.run([RWB, "score", "--model", "recommender@champion", "--input",
                             str(tmp_path / "users.parquet"), "--output", str(tmp_path / "o.csv"),
                             "--k", "3"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "scored 6 rows -> 18 rows" in result.stdout and "version 1" in result.stdout
    assert len(pd.read_csv(tmp_path / "o.csv")) == 18
