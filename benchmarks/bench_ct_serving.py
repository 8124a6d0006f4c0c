"""Serving benchmark for a 50k-item recommender (the LightFM top-k ONNX graph):
- /recommend over HTTP on loopback under bounded load (50 concurrent keep-alive clients, 20 s),
  latency p50/p99 and throughput, against the in-process onnxruntime call (baseline);
- batch scoring (`score_batch`, parquet in -> parquet out, streamed in chunks) in rows/s, against
  calling the scorer in-process on the same users with no file I/O (baseline).
Run: .venv/bin/python benchmarks/bench_ct_serving.py [--seconds 20 --clients 50]"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakMemory, random_topk_recommender, record, timed  # noqa: E402

from retail_workbench.ops.onnx import OnnxRecommender  # noqa: E402
from retail_workbench.ops.serving import score_batch  # noqa: E402

N_ITEMS, N_USERS, DIM = 50_000, 20_000, 32


def build_model(folder: Path) -> Path:
    return random_topk_recommender(folder / "rec50k.onnx", N_USERS, N_ITEMS, DIM)


SERVER = """
import sys, time
from retail_workbench.ops.serving import RecommendService
service = RecommendService([sys.argv[1]], port=int(sys.argv[2]), poll_seconds=0).start()
print("ready", flush=True)
time.sleep(3600)
"""


def load(port: int, clients: int, seconds: float, users: np.ndarray) -> tuple[list, int]:
    latencies, errors, lock = [], [0], threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(seed: int):
        rng = np.random.default_rng(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.perf_counter() < stop_at:
            user = int(rng.choice(users))
            started = time.perf_counter()
            conn.request("GET", f"/recommend?user_id={user}&k=10")
            response = conn.getresponse()
            body = response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 200 or not json.loads(body)["items"]:
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--batch-users", type=int, default=20_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    path = build_model(folder)
    print(f"model: {N_ITEMS} items, {N_USERS} users, dim {DIM}: {path.stat().st_size / 2**20:.0f} MiB")

    # baseline: in-process onnxruntime call through the same scorer, one user at a time
    scorer = OnnxRecommender(path)
    users = np.arange(N_USERS)
    rng = np.random.default_rng(1)
    calls = []
    for user in rng.choice(users, 300):
        started = time.perf_counter()
        scorer.recommend(int(user), 10)
        calls.append(time.perf_counter() - started)
    in_p50, in_p99 = np.percentile(calls, 50) * 1e3, np.percentile(calls, 99) * 1e3

    # HTTP service in its own process on loopback, bounded load from this process
    port = 18000 + os.getpid() % 1000
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(path), str(port)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        load(port, 2, 1.0, users)  # warm-up
        latencies, errors = load(port, args.clients, args.seconds, users)
    finally:
        server.terminate()
        server.wait()
    http_p50 = np.percentile(latencies, 50) * 1e3
    http_p99 = np.percentile(latencies, 99) * 1e3
    throughput = len(latencies) / args.seconds
    record("ct_serving_http", items=N_ITEMS, clients=args.clients, seconds=args.seconds,
           requests=len(latencies), errors=errors, p50_ms=round(http_p50, 2),
           p99_ms=round(http_p99, 2), throughput_rps=round(throughput, 1),
           baseline_inprocess_p50_ms=round(in_p50, 2), baseline_inprocess_p99_ms=round(in_p99, 2),
           baseline_inprocess_rps_1thread=round(1e3 / in_p50, 1),
           ratio_http_p50_vs_inprocess=round(http_p50 / in_p50, 2),
           ratio_http_rps_vs_inprocess_1thread=round(throughput / (1e3 / in_p50), 2))

    # batch scoring: parquet in, parquet out, streamed in chunks
    batch_users = pd.DataFrame({"user_id": rng.choice(users, args.batch_users)})
    batch_users.loc[::50, "user_id"] = -1  # some cold-start users
    batch_users.to_parquet(folder / "users.parquet")
    with PeakMemory() as memory:
        report = score_batch(str(path), folder / "users.parquet", folder / "recs.parquet", k=10,
                             chunk_rows=5_000)
    baseline_seconds, _ = timed(lambda: scorer.recommend_batch(batch_users.user_id.tolist(), 10))
    record("ct_serving_batch", items=N_ITEMS, users=args.batch_users, rows_out=report["rows_out"],
           seconds=report["seconds"], users_per_second=report["rows_per_second"],
           output_rows_per_second=round(report["rows_out"] / report["seconds"]),
           peak_memory_mib=round(memory.peak_mib, 1),
           baseline_inprocess_users_per_second=round(args.batch_users / baseline_seconds),
           ratio_vs_inprocess=round(report["rows_per_second"] / (args.batch_users / baseline_seconds), 2))


if __name__ == "__main__":
    main()
