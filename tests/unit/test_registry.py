"Model registry: versions, aliases, the promotion gate's decisions, manual promotion, rollback."
import mlflow
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from retail_workbench.core import ConfigError
from retail_workbench.ops.registry import (CHALLENGER, CHAMPION, GateConfig, RegistryError, alias_version,
                                       decide, list_versions, promote, promotion_gate,
                                       register_version, rollback)
from retail_workbench.ops.tracking import training_run

X_EVAL = np.array([[1.0, 2.0], [2.0, 1.0], [0.5, 0.5], [3.0, 0.0]], np.float32)
Y_EVAL = X_EVAL @ np.array([2.0, 1.0], np.float32)


def linear_onnx(weights):
    w = numpy_helper.from_array(np.asarray(weights, np.float32).reshape(-1, 1), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "linear",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def mae(uri):
    folder = mlflow.artifacts.download_artifacts(uri)
    session = ort.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
    return float(np.abs(session.run(None, {"x": X_EVAL})[0].ravel() - Y_EVAL).mean())


def train(weights, key=None):
    with training_run("linear", params={"w": weights}) as run:
        run.log_model(onnx_model=linear_onnx(weights))
    return register_version(run.model_uri, "linear", source_key=key)


@pytest.mark.parametrize("challenger, champion, config, promote_it", [
    (0.30, 0.25, GateConfig("ndcg", margin=0.01), True),
    (0.255, 0.25, GateConfig("ndcg", margin=0.01), False),  # inside the margin
    (0.25, 0.25, GateConfig("ndcg"), False),                 # equal never promotes
    (0.20, 0.25, GateConfig("ndcg"), False),                 # worse
    (9.0, 10.0, GateConfig("mae", "minimize"), True),
    (10.0, 9.0, GateConfig("mae", "minimize"), False),
    (float("nan"), 0.2, GateConfig("ndcg"), False),
    (0.01, None, GateConfig("ndcg"), True),                  # no champion yet
])
def test_decide(challenger, champion, config, promote_it):
    assert decide(challenger, champion, config).promote is promote_it


def test_gate_config_is_checked():
    with pytest.raises(ConfigError, match="'maximize' or 'minimize'"):
        GateConfig("mae", "lower")
    with pytest.raises(ConfigError, match="negative"):
        GateConfig("mae", margin=-0.1)


def test_gate_promotes_only_winners_and_records_why():
    gate = GateConfig("mae", "minimize", margin=0.05)
    first = promotion_gate("linear", mae, gate, challenger=train([1.0, 1.0]), eval_snapshot="ev-1")
    assert first.promote and alias_version("linear", CHAMPION) == "1"
    better = promotion_gate("linear", mae, gate, challenger=train([1.9, 1.0]), eval_snapshot="ev-1")
    assert better.promote and alias_version("linear", CHAMPION) == "2"
    assert better.champion_score == pytest.approx(mae("models:/linear/1"))
    equal = promotion_gate("linear", mae, gate, challenger=train([1.9, 1.0]), eval_snapshot="ev-1")
    worse = promotion_gate("linear", mae, gate, challenger=train([0.0, 0.0]), eval_snapshot="ev-1")
    assert not equal.promote and not worse.promote
    assert alias_version("linear", CHAMPION) == "2"
    assert alias_version("linear", CHALLENGER) == "4"
    tags = mlflow.MlflowClient().get_model_version("linear", "3").tags
    assert tags["gate.decision"] == "rejected"
    assert tags["gate.eval_snapshot"] == "ev-1" and tags["gate.champion_version"] == "2"
    assert "does not beat champion" in tags["gate.reason"]
    listing = list_versions("linear").set_index("version")
    assert listing["decision"].to_dict() == {1: "promoted", 2: "promoted", 3: "rejected",
                                             4: "rejected"}
    assert listing.loc[2, "aliases"] == "champion" and listing.loc[4, "aliases"] == "challenger"


def test_registration_and_gate_are_idempotent():
    gate = GateConfig("mae", "minimize")
    version = train([1.0, 1.0], key="run-a/linear")
    assert train([1.0, 1.0], key="run-a/linear") == version
    promotion_gate("linear", mae, gate, challenger=version)
    again = promotion_gate("linear", lambda uri: -1.0, gate, challenger=version)
    assert again.promote and len(list_versions("linear")) == 1


def test_manual_promotion_and_rollback():
    gate = GateConfig("mae", "minimize")
    for weights in ([1.0, 1.0], [1.5, 1.0], [1.9, 1.0]):
        promotion_gate("linear", mae, gate, challenger=train(weights))
    assert alias_version("linear", CHAMPION) == "3"
    assert rollback("linear") == "2" and alias_version("linear", CHAMPION) == "2"
    assert rollback("linear") == "1"
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback("linear")
    assert promote("linear", "3") == "3"
    assert mlflow.MlflowClient().get_model_version("linear", "3").tags["gate.decision"] == "manual"
    with pytest.raises(RegistryError, match="has no version 7"):
        promote("linear", "7")
    with pytest.raises(RegistryError, match="no registered model"):
        rollback("nothing")
    with pytest.raises(RegistryError, match="no challenger"):
        promotion_gate("linear", mae, gate)
