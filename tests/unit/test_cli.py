import os
import subprocess
import sys
from pathlib import Path

import retail_workbench

RWB = str(Path(sys.executable).parent / "rwb")


def run(*args, env=None):
    return subprocess.run([RWB, *args], capture_output=True, text=True, env=env)


def test_version():
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"retail_workbench {retail_workbench.__version__}"


def test_help_lists_commands():
    result = run("--help")
    assert result.returncode == 0
    assert "info" in result.stdout and "demo" in result.stdout


def test_info_reports_versions_workspace_and_stores(workspace_home):
    result = run("info")
    assert result.returncode == 0, result.stderr
    assert "lightfm        1.17" in result.stdout
    assert str(workspace_home.resolve()) in result.stdout
    assert f"sqlite:///{workspace_home.resolve()}/mlflow.db" in result.stdout


def test_user_error_is_one_line_and_non_zero(monkeypatch):
    monkeypatch.setenv("RWB_SEED", "not-a-number")
    result = run("info")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: environment variable RWB_SEED")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_command_exits_non_zero():
    result = run("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_demo_runs_and_says_what_it_did(tmp_path, monkeypatch):
    # as `make demo` runs it: no RWB_HOME, so the workspace is ./workspace of the current folder,
    # and every pipeline step (run from its own run folder) must use that same workspace
    monkeypatch.delenv("RWB_HOME")
    result = subprocess.run([RWB, "demo", "--quick"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "demo finished" in result.stdout and "champion v1" in result.stdout
    # a first run alarms nobody: no ERROR line and no kernel warning (the step kernels talk over
    # local sockets and are shut down without an interrupt)
    lines = (result.stdout + result.stderr).replace("\r", "\n").splitlines()
    assert not [line for line in lines if " ERROR " in line or line.startswith("ERROR")]
    assert not [line for line in lines if "KeyboardInterrupt" in line or "[IPKernelApp]" in line]
    workspace = tmp_path / "workspace"
    assert (workspace / "runs").is_dir() and (workspace / "data" / "store").is_dir()
    assert not list((workspace / "runs").glob("*/workspace")), "a step used its own workspace"
    # lineage: each registered model points, through MLflow, at snapshot folders that exist and
    # whose rows re-hash to their ids; its training inputs are exactly what the validate step wrote
    import json
    from retail_workbench.data.store import SnapshotStore, content_sha256, snapshot_id
    from retail_workbench.ops.registry import lineage
    monkeypatch.setenv("RWB_HOME", str(workspace))
    run_dir = next((workspace / "runs").glob("*/validate.metrics.json")).parent
    validated = json.loads((run_dir / "validate.metrics.json").read_text())["snapshots"]
    for family, tables in (("recommender", {"interactions", "catalog", "customers"}),
                           ("forecaster", {"sales"})):
        trail = lineage(family, "champion")
        training = trail[trail["context"] == "training"]
        assert dict(zip(training["table"], training["snapshot_id"])) == {
            t: validated[t] for t in tables}
        assert set(trail["context"]) == {"training", "evaluation"}
        assert trail["exists"].all() and trail["rehash_ok"].all(), trail
        for table, snap_id, path in trail[["table", "snapshot_id", "path"]].values:
            stored = SnapshotStore().read(snap_id)
            assert snapshot_id(table, content_sha256(stored)) == snap_id
            assert Path(path) == SnapshotStore().get(snap_id).path
    shown = subprocess.run([RWB, "registry", "lineage", "recommender", "champion"],
                           capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "RWB_HOME": str(workspace)})
    assert shown.returncode == 0, shown.stderr
    assert validated["interactions"] in shown.stdout
