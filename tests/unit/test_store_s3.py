"""The store and the workspace on a real S3-compatible server (moto's server mode, on loopback):
commits, verify, concurrent writers, writers killed with SIGKILL mid snapshot, and ingest -> snapshot ->
train -> register with store, MLflow artifacts and run folders in the bucket. Run with -s for the counts."""
import json
import logging
import multiprocessing
import os
import socket
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import store_faults  # noqa: E402
from retail_workbench.cli.app import main  # noqa: E402
from retail_workbench.data.store import (  # noqa: E402
    ObjectSnapshotStore, SnapshotStore, StoreLockedError, Transaction)

pytest.importorskip("moto.server")
POINTS = ("before-manifest", "after-manifest", "before-commit", "after-commit")


@pytest.fixture(scope="module")
def s3_server():
    "One moto S3 server on a free loopback port for the whole module."
    from moto.server import ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_server, monkeypatch):
    "A fresh bucket, with the environment s3fs, boto3 and MLflow read their endpoint from."
    import boto3
    import s3fs
    s3fs.S3FileSystem.clear_instance_cache()   # a filesystem cached by another test has other settings
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_server}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    name = f"rwb-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return f"s3://{name}"


def _frame(seed: int, rows: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"key": np.arange(rows), "value": rng.normal(size=rows)})


def test_a_store_on_s3_commits_reads_and_verifies_with_the_cli(bucket, tmp_path, monkeypatch,
                                                                capsys):
    store = SnapshotStore(f"{bucket}/shop")
    assert isinstance(store, ObjectSnapshotStore)
    first = store.write(_frame(1), "prices")
    with store.transaction("restock"):
        second = store.write(_frame(2), "prices")
        store.write(_frame(3), "stock")
    local = SnapshotStore(tmp_path / "local").write(_frame(1), "prices")
    assert first.id == local.id and first.to_dict()["sha256"] == local.sha256  # same ids as disk
    again = SnapshotStore(f"{bucket}/shop", cache=tmp_path / "other-cache")  # a second reader
    pd.testing.assert_frame_equal(again.read_latest("prices"), _frame(2))
    assert again.log()["message"].tolist() == ["restock", "write prices"]
    assert again.latest("prices").id == second.id and again.commit_record()["seq"] == 2
    names = store.backend.names("")
    assert "commits/00000002.json" in names and not any(n.startswith("lock") for n in names)

    monkeypatch.setenv("RWB_WORKSPACE", bucket)
    SnapshotStore().write(_frame(4), "prices")
    assert SnapshotStore().root == f"{bucket}/data/store"
    assert main(["store", "verify"]) == 0 and "1 snapshot(s): all intact" in capsys.readouterr().out
    damaged = SnapshotStore(f"{bucket}/shop")
    data = damaged.backend.read(f"snapshots/{second.id}/data.parquet")
    damaged.backend.write(f"snapshots/{second.id}/data.parquet", data[:-30])  # cut short
    assert main(["store", "verify", "--store", f"{bucket}/shop"]) == 1  # the `rwb` entry point
    assert f"damaged  {second.id}" in capsys.readouterr().out
    with pytest.raises(Exception, match=second.id):
        SnapshotStore(f"{bucket}/shop", cache=tmp_path / "fresh").read(second.id)


def _writer(root: str, table: str, rounds: int):
    os.environ["RWB_PROGRESS"] = "0"
    store = SnapshotStore(root)
    for k in range(rounds):
        with store.transaction(f"{table} {k}"):
            store.write(_frame(100 * k + len(table)), table)
            store.write(_frame(k), f"{table}_log")


def test_concurrent_writers_on_s3_serialise_and_lose_no_commit(bucket):
    root = f"{bucket}/busy"
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_writer, args=(root, table, 2)) for table in ("left", "right")]
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
    assert [p.exitcode for p in writers] == [0, 0]
    store = SnapshotStore(root)
    history = store.log()
    assert sorted(history["seq"]) == list(range(1, 5))  # four commits, none lost or doubled
    for moved in history["moved"]:  # each commit is one writer's transaction, whole
        assert sorted(moved) in (["left", "left_log"], ["right", "right_log"])
    assert set(store.tables()) == {"left", "left_log", "right", "right_log"}
    assert store.verify_snapshots()["ok"].all()

    # two writers that bypass the lease and race for the same seq: the server refuses the second
    racers = [Transaction(store, f"racer {k}") for k in range(2)]
    for k, tx in enumerate(racers):
        tx.write(_frame(50 + k), f"racer{k}")
    seq = store.commit_record()["seq"] + 1
    assert store.backend.create(f"commits/{seq:08d}.json", json.dumps(
        dict(store.commit_record(), seq=seq, moved={})).encode())
    assert not store.backend.create(f"commits/{seq:08d}.json", b"{}")
    for tx in racers:
        tx.commit()
    assert [tx.record["seq"] for tx in racers] == [seq + 1, seq + 2]
    assert {"racer0", "racer1", "left", "right"} <= set(store.tables())

    # a live holder's lease is waited for and named; an expired one is broken
    holder = {"pid": 1, "host": socket.gethostname(), "since": "2026-01-01T00:00:00",
              "command": "rwb ingest", "expires": time.time() + 60}
    assert store.backend.create("lock", json.dumps(holder).encode())
    with pytest.raises(StoreLockedError, match="locked by pid 1 on .* gave up after 0.3 s"):
        SnapshotStore(root, lock_timeout=0.3, recover=False).write(_frame(9), "left")
    store.backend.write("lock", json.dumps({**holder, "host": "elsewhere", "expires": 0}).encode())
    store.write(_frame(9), "left")
    assert not store.backend.exists("lock") and store.latest("left").rows == 500


KILLED_TABLES = ("features_user", "features_item", "scores")


def _killed_writer(root: str, seed: int, point=None):
    "One transaction writing three tables; SIGKILLs itself at checkpoint `point` when given."
    store_faults._arm(point)
    store = SnapshotStore(root)
    with store.transaction(f"step {seed}"):
        for k, table in enumerate(KILLED_TABLES):
            store.write(_frame(seed + k, rows=300), table, source=f"step {seed}")


def _check_after_kill(root: str, allowed: list, counts: dict, cache: Path):
    "What a reader sees right after the kill, then what the next writer leaves."
    reader = ObjectSnapshotStore(root, recover=False, cache=cache / "reader")
    heads = reader.commit_record()["heads"]
    counts["inconsistent_heads"] += heads not in allowed
    for table, snap_id in heads.items():  # every head is a complete, intact snapshot
        counts["partial_heads"] += not reader.has_snapshot(snap_id)
        counts["partial_heads"] += reader.check(snap_id, deep=True) is not None
    counts["incomplete_seen"] += sum(  # what a kill leaves behind, which no head points at
        item["kind"] != "journal" for item in reader._garbage())
    recovered = ObjectSnapshotStore(root, cache=cache / "next")  # breaks the dead lease, rolls back
    counts["leftovers_after_recovery"] += len(recovered.gc(dry_run=True))
    counts["damaged"] += int((~recovered.verify_snapshots()["ok"]).sum())


def test_writers_killed_mid_snapshot_on_s3_never_expose_a_partial_head(bucket, tmp_path):
    ctx = multiprocessing.get_context("fork")
    rng = np.random.default_rng(7)
    counts = dict.fromkeys(["runs", "kills", "failed_runs", "inconsistent_heads", "partial_heads",
                            "incomplete_seen", "leftovers_after_recovery", "damaged"], 0)

    def base(name: str) -> str:
        root = f"{bucket}/{name}"
        ObjectSnapshotStore(root, cache=tmp_path / name).write(_frame(0), "features_user")
        return root

    reference = base("reference")
    before = ObjectSnapshotStore(reference, cache=tmp_path / "r0").commit_record()["heads"]
    started = time.perf_counter()
    store_faults._run(ctx, _killed_writer, (reference, 1), None, counts)
    elapsed = time.perf_counter() - started
    after = ObjectSnapshotStore(reference, cache=tmp_path / "r1").commit_record()["heads"]
    assert set(after) == set(KILLED_TABLES)
    kills = [("before-manifest", None), ("before-commit", None),  # named checkpoints
             (int(rng.integers(1, 7)), None),                      # the n-th checkpoint
             (None, float(rng.uniform(0.2, 0.9) * elapsed))]        # a random moment
    for k, (point, kill_after) in enumerate(kills):
        root = base(f"run{k}")
        store_faults._run(ctx, _killed_writer, (root, 1, point), kill_after or 60.0, counts)
        _check_after_kill(root, [before, after], counts, tmp_path / f"check{k}")
        if k == 0:  # the next writer completes and ends where an uninterrupted run does
            store_faults._run(ctx, _killed_writer, (root, 1), None, counts)
            finished = ObjectSnapshotStore(root, cache=tmp_path / "again").commit_record()
            counts["inconsistent_heads"] += finished["heads"] != after
    print("\ns3 store faults:", json.dumps(counts))
    assert counts["kills"] >= 3 and counts["incomplete_seen"] > 0
    zero = ("failed_runs", "inconsistent_heads", "partial_heads", "leftovers_after_recovery",
            "damaged")
    assert {name: counts[name] for name in zero} == dict.fromkeys(zero, 0)


def test_ingest_snapshot_train_register_with_the_workspace_on_s3(bucket, monkeypatch, tmp_path):
    import fsspec
    import mlflow
    import onnxruntime as ort
    from retail_workbench.core import save_metrics
    from retail_workbench.data.ingest import ingest
    from retail_workbench.ops.registry import register_version
    from retail_workbench.ops.tracking import training_run
    from test_registry import linear_onnx

    workspace = f"{bucket}/ws"
    monkeypatch.setenv("RWB_WORKSPACE", workspace)
    source = store_faults.make_sources(tmp_path, n=4)[0]  # a quarter of the Online Retail fixture
    summary = ingest(source, "online_retail", now=store_faults.NOW)
    store = SnapshotStore()
    assert isinstance(store, ObjectSnapshotStore) and store.root == f"{workspace}/data/store"
    snap = store.latest("interactions")
    assert summary["tables"]["interactions"]["snapshot_id"] == snap.id

    orders = store.read(snap.id)  # train: order value from hour and weekday, least squares
    orders = orders[orders["event"] == "order"]
    X = np.column_stack([orders["ts"].dt.hour, orders["ts"].dt.dayofweek]).astype(np.float32)
    weights = np.linalg.lstsq(X, orders["value"].to_numpy(np.float32), rcond=None)[0]
    with training_run("linear", params={"w": weights.tolist()}, snapshots=[snap]) as run:
        run.log_model(onnx_model=linear_onnx(weights))
        save_metrics({"orders": len(orders)}, "linear")
    version = register_version(run.model_uri, "linear_s3")

    recorded = mlflow.get_run(run.run_id)
    assert recorded.info.artifact_uri.startswith(f"{workspace}/artifacts/mlflow/retail_workbench/")
    assert [d.dataset.digest for d in recorded.inputs.dataset_inputs] == [snap.id]
    fs, _ = fsspec.core.url_to_fs(workspace)
    in_bucket = fs.find(workspace)
    assert any(p.endswith("/model.onnx") and "/artifacts/mlflow/" in p for p in in_bucket)
    assert any(p.endswith("/linear.metrics.json") and "/ws/runs/linear/" in p for p in in_bucket)
    assert not (Path(os.environ["RWB_HOME"]) / "data" / "store").exists()  # nothing stored locally
    folder = mlflow.artifacts.download_artifacts(f"models:/linear_s3/{version}")
    session = ort.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": X[:5]})[0].ravel(), X[:5] @ weights,
                               rtol=1e-5)

    # then a writer of that workspace store is SIGKILLed mid snapshot: the heads stay the old ones
    heads = store.commit_record()["heads"]
    counts = dict.fromkeys(["runs", "kills", "failed_runs", "inconsistent_heads", "partial_heads",
                            "incomplete_seen", "leftovers_after_recovery", "damaged"], 0)
    point = int(np.random.default_rng(3).integers(1, 8))  # checkpoints 1-7 come before the commit
    store_faults._run(multiprocessing.get_context("fork"), _killed_writer, (store.root, 5, point),
                      60.0, counts)
    _check_after_kill(store.root, [heads], counts, tmp_path / "after-kill")
    assert counts["kills"] == 1 and counts["incomplete_seen"] > 0
    zero = ("inconsistent_heads", "partial_heads", "leftovers_after_recovery", "damaged")
    assert {name: counts[name] for name in zero} == dict.fromkeys(zero, 0)
