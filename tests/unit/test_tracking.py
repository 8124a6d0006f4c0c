"MLflow tracking on the workspace: where runs go, what a training run records, failures."
from pathlib import Path

import mlflow
import nbformat
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from retail_workbench.core import ConfigError
from retail_workbench.ops.tracking import (get_experiment_id, snapshot_dataset, tracking_uri,
                                       training_run)


def linear_onnx(weights):
    w = numpy_helper.from_array(np.asarray(weights, np.float32).reshape(-1, 1), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "linear",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, len(weights)])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def test_default_store_is_sqlite_in_the_workspace(workspace_home):
    assert tracking_uri() == f"sqlite:///{workspace_home.resolve()}/mlflow.db"
    experiment = get_experiment_id("unit")
    assert (workspace_home / "mlflow.db").exists()
    location = mlflow.get_experiment(experiment).artifact_location
    assert location.startswith("file://") and "artifacts/mlflow/unit" in location


def test_mlflow_tracking_uri_is_honoured(monkeypatch, tmp_path, workspace_home):
    other = tmp_path / "server" / "tracking.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{other}")
    with training_run("unit") as run:
        run.log_metrics({"m": 1.0})
    assert other.exists()
    assert not (workspace_home / "mlflow.db").exists()
    assert mlflow.get_run(run.run_id).data.metrics["m"] == 1.0


def test_training_run_records_data_code_params_metrics_and_model(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    notebook = tmp_path / "train.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), notebook)
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    import pandas as pd
    from retail_workbench.data.store import SnapshotStore
    store = SnapshotStore()
    snapshots = [store.write(pd.DataFrame({"user_id": [1], "item_id": [2]}), "interactions"),
                 store.write(pd.DataFrame({"item_id": [2], "price": [1.0]}), "catalog")]
    with training_run("unit", params={"k": 10, "opt": {"lr": 0.1}}, snapshots=snapshots) as run:
        run.log_metrics({"ndcg_at_10": 0.25, "nested": {"x": 2}, "flag": True})
        run.log_figure(fig, "curve")
        run.log_notebook(notebook)
        uri = run.log_model(onnx_model=linear_onnx([2.0, 3.0]))
    recorded = mlflow.get_run(run.run_id)
    assert recorded.info.status == "FINISHED"
    assert recorded.data.params == {"k": "10", "opt.lr": "0.1"}
    assert recorded.data.metrics == {"ndcg_at_10": 0.25, "nested.x": 2.0}
    assert recorded.data.tags["catalog_version"] == snapshots[1].id
    assert recorded.data.tags["family"] == "unit"
    digests = {d.dataset.name: d.dataset.digest for d in recorded.inputs.dataset_inputs}
    assert digests == {"interactions": snapshots[0].id, "catalog": snapshots[1].id}
    paths = {a.path for a in mlflow.MlflowClient().list_artifacts(run.run_id, "plots")}
    paths |= {a.path for a in mlflow.MlflowClient().list_artifacts(run.run_id, "notebooks")}
    assert paths == {"plots/curve.png", "notebooks/train.ipynb"}
    flavors = mlflow.models.get_model_info(uri).flavors
    assert {"onnx", "python_function"} <= set(flavors)
    out = mlflow.pyfunc.load_model(uri).predict(np.array([[1.0, 1.0]], np.float32))
    assert float(np.asarray(out["y"]).ravel()[0]) == pytest.approx(5.0)


def test_snapshot_datasets_point_at_existing_snapshot_folders(tmp_path):
    import json
    import pandas as pd
    from retail_workbench.core import SourceNotFoundError
    from retail_workbench.data.store import SnapshotStore
    store = SnapshotStore(tmp_path / "store")
    snap = store.write(pd.DataFrame({"query": ["tea"], "item_id": [1]}), "search_impressions")
    dataset = snapshot_dataset(dict(id=snap.id, table=snap.table), store)
    assert dataset.digest == snap.id and len(snap.id) == 35   # the store's longest kind of id
    assert Path(json.loads(dataset.source.to_json())["uri"]) == snap.path
    assert (snap.path / "data.parquet").exists()
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        snapshot_dataset(dict(id="interactions-00000000deadbeef", table="interactions"), store)
    with pytest.raises(ConfigError, match="has no id or table"):
        snapshot_dataset(dict(id="x"))


def test_failed_run_is_marked_failed_and_error_propagates():
    with pytest.raises(RuntimeError, match="broken"):
        with training_run("unit", run_name="failing"):
            raise RuntimeError("broken")
    runs = mlflow.search_runs([get_experiment_id()], filter_string="tags.mlflow.runName = 'failing'")
    assert runs["status"].tolist() == ["FAILED"]
    assert "broken" in runs["tags.error"].iloc[0]
    assert mlflow.active_run() is None


def test_store_snapshots_are_recorded(workspace_home):
    import pandas as pd
    from retail_workbench.data.store import SnapshotStore
    snap = SnapshotStore().write(pd.DataFrame({"item_id": [1, 2], "title": ["a", "b"]}),
                                 table="catalog")
    with training_run("unit", snapshots=[snap]) as run:
        pass
    recorded = mlflow.get_run(run.run_id)
    assert recorded.inputs.dataset_inputs[0].dataset.digest == snap.id
    assert recorded.data.tags["catalog_version"] == snap.id


def test_switching_workspace_switches_the_store(tmp_path, monkeypatch):
    import os
    get_experiment_id("first")
    assert "MLFLOW_TRACKING_URI" not in os.environ  # MLflow's export is undone
    monkeypatch.setenv("RWB_HOME", str(tmp_path / "second"))
    get_experiment_id("second")
    assert (tmp_path / "second" / "mlflow.db").exists()
    assert mlflow.get_experiment_by_name("first") is None
