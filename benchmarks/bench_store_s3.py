"""Snapshot write and read on an S3 server (moto's server mode on loopback) vs a local folder store.

The same frames are written as snapshots (one transaction each) and read back cold (a fresh read
cache) on both stores. Baseline: the folder store in the same run. moto answers in-process over HTTP,
so the ratio measures the protocol's round trips (manifest, conditional commit, lease) plus HTTP and
parquet transfer on loopback, not a real network; on a real bucket latency per request dominates.
Then writers are killed with SIGKILL at every checkpoint and at random moments, and the counts of
heads pointing at partial snapshots are printed (they must be 0).
Usage: python benchmarks/bench_store_s3.py [--rows N] [--tables K] [--kills K]
"""
import argparse
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "unit"))
from _common import record  # noqa: E402


def frames(rows: int, tables: int) -> dict:
    rng = np.random.default_rng(0)
    return {f"table{k}": pd.DataFrame({"user_id": rng.integers(0, 10_000, rows),
                                       "item_id": rng.integers(0, 2_000, rows),
                                       "value": rng.normal(size=rows)}) for k in range(tables)}


def write_then_read(store_of, tables: dict) -> tuple[float, float]:
    "Seconds to write every table (a transaction each), then to read each back with a cold cache."
    store = store_of("write")
    started = time.perf_counter()
    for name, df in tables.items():
        store.write(df, name)
    written = time.perf_counter() - started
    reader = store_of("read")
    started = time.perf_counter()
    for name, df in tables.items():
        assert len(reader.read_latest(name)) == len(df)
    return written, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--tables", type=int, default=5)
    parser.add_argument("--kills", type=int, default=12)
    args = parser.parse_args()
    os.environ["RWB_PROGRESS"] = "0"
    import boto3
    from moto.server import ThreadedMotoServer
    from retail_workbench.data.store import ObjectSnapshotStore, SnapshotStore

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=f"http://{host}:{port}")
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    scratch = Path(tempfile.mkdtemp())
    tables = frames(args.rows, args.tables)
    try:
        local_write, local_read = write_then_read(
            lambda role: SnapshotStore(scratch / "local"), tables)
        s3_write, s3_read = write_then_read(
            lambda role: ObjectSnapshotStore(f"s3://{bucket}/store", cache=scratch / role), tables)
        from test_store_s3 import KILLED_TABLES, _check_after_kill, _killed_writer
        import store_faults
        ctx = multiprocessing.get_context("fork")
        rng = np.random.default_rng(1)
        counts = dict.fromkeys(["runs", "kills", "failed_runs", "inconsistent_heads",
                                "partial_heads", "incomplete_seen", "leftovers_after_recovery",
                                "damaged"], 0)
        roots = []
        for k in range(args.kills + 1):
            root = f"s3://{bucket}/faults{k}"
            ObjectSnapshotStore(root, cache=scratch / f"b{k}").write(tables["table0"][:100],
                                                                      KILLED_TABLES[0])
            roots.append(root)
        before = ObjectSnapshotStore(roots[0], cache=scratch / "c0").commit_record()["heads"]
        started = time.perf_counter()
        store_faults._run(ctx, _killed_writer, (roots[0], 1), None, counts)
        elapsed = time.perf_counter() - started
        after = ObjectSnapshotStore(roots[0], cache=scratch / "c1").commit_record()["heads"]
        points = ["before-manifest", "after-manifest", "before-commit", "after-commit"]
        for k, root in enumerate(roots[1:]):
            if k < len(points):
                point, kill_after = points[k], 60.0
            elif k % 2:
                point, kill_after = int(rng.integers(1, 9)), 60.0
            else:
                point, kill_after = None, float(rng.uniform(0.1, 1.0) * elapsed)
            store_faults._run(ctx, _killed_writer, (root, 1, point), kill_after, counts)
            _check_after_kill(root, [before, after], counts, scratch / f"check{k}")
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    record("store_s3", rows=args.rows, tables=args.tables,
           local_write_s=round(local_write, 3), s3_write_s=round(s3_write, 3),
           write_ratio_s3_over_local=round(s3_write / local_write, 2),
           local_read_s=round(local_read, 3), s3_read_s=round(s3_read, 3),
           read_ratio_s3_over_local=round(s3_read / local_read, 2), **counts)


if __name__ == "__main__":
    main()
