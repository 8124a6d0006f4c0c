"""The papermill pipeline: a failing step stops it and leaves the registry alone, resume continues,
a pipeline killed mid-step and resumed ends in the same registry state as an uninterrupted run,
and a second training run on the same data is not promoted."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from retail_workbench.core import ConfigError
from retail_workbench.ops.pipeline import (PipelineError, load_pipeline, load_state, resume_pipeline,
                                       run_pipeline)
from retail_workbench.ops.registry import CHAMPION, alias_version, list_versions

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pipeline"
RWB = str(Path(sys.executable).parent / "rwb")


def registry_state():
    listing = list_versions()
    return listing[["name", "version", "aliases", "decision", "score", "champion_score"]] \
        .to_dict(orient="records")


def test_pipeline_file_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_pipeline(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="template"):
        load_pipeline({"steps": [{"name": "a", "template": "no_such_template"}]})
    spec = load_pipeline({"steps": [{"name": "a", "template": str(FIXTURES / "ok_step.ipynb")},
                                    {"name": "b", "template": "gone", "optional": True}]})
    assert [s.name for s in spec.steps] == ["a"]
    with pytest.raises(ConfigError, match="give parameter overrides or 'skip'"):
        load_pipeline({"steps": [{"name": "a", "template": str(FIXTURES / "ok_step.ipynb"), "quick": 3}]})


@pytest.mark.slow
def test_quick_runs_leave_out_the_steps_marked_skip(workspace_home):
    spec = {"name": "quick-skip", "templates": str(FIXTURES), "steps": [
        {"name": "first", "template": "ok_step", "parameters": {"name": "first"}},
        {"name": "full_only", "template": "ok_step", "parameters": {"name": "full_only"}, "quick": "skip"}]}
    assert [s.skip_quick for s in load_pipeline(spec).steps] == [False, True]
    result = run_pipeline(spec, quick=True)
    assert result.status == "succeeded"
    assert dict(zip(result.steps.name, result.steps.status)) == {"first": "succeeded", "full_only": "skipped"}
    assert not (result.run_dir / "full_only.ipynb").exists()


@pytest.mark.slow
def test_failing_step_stops_keeps_notebook_marks_run_failed_and_leaves_registry(workspace_home):
    spec = {"name": "fails-before-register", "templates": str(FIXTURES), "steps": [
        {"name": "first", "template": "ok_step", "parameters": {"name": "first"}},
        {"name": "broken", "template": "fail_step",
         "parameters": {"fail_unless_exists": "{run_dir}/fixed"}},
        {"name": "register", "template": "register_step"}]}
    with pytest.raises(PipelineError, match="rwb pipeline resume") as failure:
        run_pipeline(spec, run_id="r1", shared_kernel=True)
    assert "step asked to fail" in str(failure.value)
    state = load_state("r1")
    assert [s["status"] for s in state["steps"].values()] == ["succeeded", "failed", "pending"]
    failed_notebook = Path(state["steps"]["broken"]["notebook"])
    assert "step asked to fail" in failed_notebook.read_text()
    assert (workspace_home / "runs" / "r1" / "first.metrics.json").exists()
    assert mlflow.get_run(state["mlflow_run_id"]).info.status == "FAILED"
    assert list_versions().empty  # the registry is untouched

    (workspace_home / "runs" / "r1" / "fixed").touch()
    resumed = resume_pipeline("r1")
    assert resumed.status == "succeeded"
    assert mlflow.get_run(state["mlflow_run_id"]).info.status == "FINISHED"
    assert alias_version("tiny", CHAMPION) == "1"
    metrics = json.loads((workspace_home / "runs" / "r1" / "register.metrics.json").read_text())
    assert metrics["promoted"] is True


@pytest.mark.slow
def test_killed_pipeline_resumes_to_the_same_registry_state(tmp_path, monkeypatch):
    spec = str(FIXTURES / "kill_resume.yaml")
    # uninterrupted reference run
    reference_home = tmp_path / "reference"
    reference_home.mkdir()
    (reference_home / "wait.go").touch()
    monkeypatch.setenv("RWB_HOME", str(reference_home))
    assert run_pipeline(spec, shared_kernel=True).status == "succeeded"
    expected = registry_state()
    assert [r["decision"] for r in expected] == ["promoted", "promoted"]

    # killed mid-step (while 'wait' runs), then resumed
    home = tmp_path / "killed"
    home.mkdir()
    env = {**os.environ, "RWB_HOME": str(home), "RWB_PROGRESS": "0"}
    process = subprocess.Popen([RWB, "pipeline", "run", spec, "--shared-kernel"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 240
    while not (home / "wait.started").exists():
        assert process.poll() is None and time.time() < deadline, "the pipeline never reached 'wait'"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # the pipeline and its kernel
    process.wait()
    (run_id,) = [p.name for p in (home / "runs").iterdir() if (p / "pipeline.json").exists()]
    monkeypatch.setenv("RWB_HOME", str(home))
    state = load_state(run_id)
    assert state["steps"]["wait"]["status"] == "running"
    assert state["steps"]["register_b"]["status"] == "pending"
    assert len(list_versions()) == 1

    (home / "wait.go").touch()
    assert resume_pipeline(run_id).status == "succeeded"
    assert registry_state() == expected
    killed_child = mlflow.get_run(state["steps"]["wait"]["mlflow_run_id"])
    assert killed_child.info.status == "KILLED"


@pytest.mark.slow
def test_second_training_on_the_same_data_is_not_promoted(workspace_home):
    from retail_workbench.ops.pipeline import ingest_step, train_register_step
    snapshots = ingest_step("synthetic:quick")["snapshots"]
    first = train_register_step("recommender", snapshots, quick=True)
    second = train_register_step("recommender", snapshots, quick=True)
    assert first["promoted"] and not second["promoted"]
    assert second["challenger_score"] == pytest.approx(second["champion_score"])
    assert second["eval_snapshot"] == first["eval_snapshot"]
    listing = list_versions("recommender").set_index("version")
    assert listing.loc[1, "aliases"] == "champion" and listing.loc[2, "decision"] == "rejected"
    assert "does not beat champion" in listing.loc[2, "reason"]
    run = mlflow.get_run(second["mlflow_run_id"])
    contexts = {d.dataset.name: d.tags for d in run.inputs.dataset_inputs}
    assert set(contexts) == {"interactions", "catalog", "customers", "recommender_eval"}
    assert run.data.tags["catalog_version"].startswith("catalog-")


@pytest.mark.slow
def test_steps_train_on_the_ids_earlier_steps_reported_not_on_the_latest_heads(workspace_home):
    "A head moved by a concurrent ingest between validate and training does not reach the model."
    from retail_workbench.data.store import SnapshotStore
    templates = Path(__file__).resolve().parents[2] / "templates"
    spec = {"name": "ids", "templates": str(templates), "steps": [
        {"name": "ingest", "template": "ct_ingest", "parameters": {"data": "{data}"}},
        {"name": "validate", "template": "ct_validate", "parameters": {"snapshots": "{snapshots}"}},
        {"name": "move", "template": str(FIXTURES / "move_head_step.ipynb")},
        {"name": "recommender", "template": "ct_train_register",
         "parameters": {"family": "recommender", "snapshots": "{snapshots}", "quick": True}}]}
    result = run_pipeline(spec, data="synthetic:quick", shared_kernel=True)
    assert result.status == "succeeded"
    validated = json.loads((result.run_dir / "validate.metrics.json").read_text())["snapshots"]
    moved = json.loads((result.run_dir / "move.metrics.json").read_text())["moved_head"]
    assert SnapshotStore().latest("interactions").id == moved != validated["interactions"]
    trained = json.loads((result.run_dir / "recommender.metrics.json").read_text())["trained_on"]
    assert trained["interactions"] == validated["interactions"]
    state = load_state(result.run_id)
    assert state["snapshots"]["interactions"] == validated["interactions"]
