"""Load benchmark of the HTTP service (`rwb serve`) for a 50k-item x 64-factor recommender (the
LightFM top-k ONNX graph), loopback only, every run bounded in time and in requests.

Baselines measured in the same run, in this process:
- one-user top-10: onnxruntime (default session; tuned session options + IO binding) vs numpy
  argpartition over the item matrix (what the service uses for one user);
- the in-process scorer the service calls (FastRecommender.recommend): p50 latency and
  single-thread calls/s.
Load (an asyncio + aiohttp client, bounded concurrency and duration):
- 1 client, closed loop: HTTP p50 vs in-process p50 (+ ms);
- open loop at a fixed rate (default 500 req/s for 20 s), latency from the scheduled send time;
- closed loop at 1, 10 and 50 clients: p50/p95/p99/max, req/s and errors; 50-client req/s vs the
  in-process single-thread calls/s;
- kill -9 of one worker under load: errors seen, and the worker's replacement;
- Triton (pytriton's tritonserver) on the same model and load, when RWB_TRITON_PYTHON names an
  interpreter with nvidia-pytriton installed (see the serving notebook for why and how).
Run: .venv/bin/python benchmarks/bench_serving_load.py [--seconds 10 --rate 500 --workers 2]"""
import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import random_topk_recommender, record  # noqa: E402

from retail_workbench.ops.service import FastRecommender  # noqa: E402

N_ITEMS, N_USERS, DIM, K = 50_000, 10_000, 64, 10
RWB = str(Path(sys.executable).parent / "rwb")
HERE = Path(__file__).resolve().parent


def build_model(folder: Path) -> Path:
    return random_topk_recommender(folder / "rec50k.onnx", N_USERS, N_ITEMS, DIM,
                                   [f"u{i}" for i in range(N_USERS)])


def percentiles(seconds: list[float]) -> dict:
    if not seconds:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3), "max_ms": round(float(ms.max()), 3)}


def per_call(fn, n: int) -> list[float]:
    times = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - started)
    return times


def one_user_scoring(path: Path, n: int = 2000) -> dict:
    "p50 of one-user top-10: ONNX default, ONNX tuned (options + IO binding), numpy."
    import onnxruntime as ort
    fast = FastRecommender(path)
    users = [f"u{i}" for i in np.random.default_rng(1).integers(0, N_USERS, n)]
    default = fast.onnx
    onnx_default = per_call(lambda i: default.recommend(users[i], K), n)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    tuned = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    binding = tuned.io_binding()
    history = np.zeros((1, N_ITEMS), np.float32)
    features = np.zeros((1, fast.n_features), np.float32)
    binding.bind_cpu_input("user_features", features)
    binding.bind_cpu_input("history", history)
    binding.bind_cpu_input("k", np.array([K], np.int64))
    binding.bind_output("scores")
    binding.bind_output("item_codes")
    index = np.zeros(1, np.int64)

    def run_tuned(i):
        index[0] = fast.user_index[users[i]]
        binding.bind_cpu_input("user_index", index)
        tuned.run_with_iobinding(binding)
        return fast.item_ids[binding.copy_outputs_to_cpu()[1][0]]
    onnx_tuned = per_call(run_tuned, n)
    numpy_path = per_call(lambda i: fast.recommend(users[i], K), n)
    same = all(fast.recommend(u, K)["items"][0]["item_id"] == default.recommend(u, K)["items"][0]
               ["item_id"] for u in users[:50])
    result = {"onnx_default_p50_ms": percentiles(onnx_default)["p50_ms"],
              "onnx_tuned_iobinding_p50_ms": percentiles(onnx_tuned)["p50_ms"],
              "numpy_p50_ms": percentiles(numpy_path)["p50_ms"], "same_top_item": same,
              "in_process_calls_per_s": round(n / sum(numpy_path))}
    result["numpy_vs_best_onnx"] = round(result["numpy_p50_ms"] / min(
        result["onnx_default_p50_ms"], result["onnx_tuned_iobinding_p50_ms"]), 3)
    return result


async def closed_loop(make_request, clients: int, seconds: float, max_requests: int = 200_000):
    "`clients` workers sending back-to-back requests for `seconds`: latencies and errors."
    latencies, errors, started = [], [], time.perf_counter()
    deadline = started + seconds

    async def client(number):
        i = number
        while time.perf_counter() < deadline and len(latencies) + len(errors) < max_requests:
            sent = time.perf_counter()
            try:
                ok = await make_request(i)
            except Exception as err:  # connection reset by a killed worker, timeouts
                errors.append((time.perf_counter() - started, type(err).__name__))
            else:
                if ok:
                    latencies.append(time.perf_counter() - sent)
                else:
                    errors.append((time.perf_counter() - started, "status"))
            i += clients

    await asyncio.gather(*(client(c) for c in range(clients)))
    elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


async def open_loop(make_request, rate: float, seconds: float, max_in_flight: int = 256):
    "Requests sent at a fixed rate; latency counted from each request's scheduled time."
    latencies, errors, total = [], [], int(rate * seconds)
    limit = asyncio.Semaphore(max_in_flight)
    started = time.perf_counter()

    async def one(i, scheduled):
        async with limit:
            try:
                ok = await make_request(i)
            except Exception as err:
                errors.append(type(err).__name__)
                return
            (latencies if ok else errors).append(time.perf_counter() - scheduled)

    tasks = []
    for i in range(total):
        scheduled = started + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    return latencies, errors, time.perf_counter() - started


def summary(latencies, errors, elapsed) -> dict:
    return {**percentiles(latencies), "req_per_s": round(len(latencies) / elapsed),
            "requests": len(latencies) + len(errors), "errors": len(errors)}


def start_server(path: Path, workers: int) -> tuple[subprocess.Popen, str]:
    command = [RWB, "serve", "--port", "0", "--workers", str(workers), "--model", str(path),
               "--history", "none", "--poll", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = server.stdout.readline()
    if " on " not in line:
        raise SystemExit(f"rwb serve did not start: {line}{server.stdout.read()}")
    return server, line.split(" on ")[1].split(" ")[0]


def children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(p) for p in (task / "children").read_text().split()}
    return found


async def run_load(url: str, args, server_pid: int) -> dict:
    import aiohttp
    rng = np.random.default_rng(2)
    users = [f"u{i}" for i in rng.integers(0, N_USERS, 100_000)]
    results = {}
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:
        async def recommend(i):
            async with session.get("/recommend", params={"user_id": users[i % len(users)],
                                                         "k": str(K)}) as response:
                await response.read()
                return response.status == 200
        while True:  # wait until every worker has loaded its model
            try:
                if await recommend(0):
                    break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        await closed_loop(recommend, 10, 2)  # warm-up
        for clients in (1, 10, 50):
            results[f"closed_{clients}"] = summary(*await closed_loop(recommend, clients,
                                                                      args.seconds))
        before = children(server_pid)
        victim = sorted(before)[0]

        async def kill_later():
            await asyncio.sleep(args.seconds / 3)
            os.kill(victim, signal.SIGKILL)
        killer = asyncio.create_task(kill_later())
        latencies, errors, elapsed = await closed_loop(recommend, 20, args.seconds)
        await killer
        after = children(server_pid)
        results["kill_worker"] = {**summary(latencies, errors, elapsed),
                                  "killed": victim, "replaced_by": sorted(after - before),
                                  "error_kinds": sorted({kind for _, kind in errors}),
                                  "errors_after_kill_s": [round(t - args.seconds / 3, 3)
                                                          for t, _ in errors[:5]]}
        results["open_loop"] = summary(*await open_loop(recommend, args.rate, args.open_seconds))
    return results


async def run_triton(port: int, args) -> dict:
    import aiohttp
    rng = np.random.default_rng(3)
    users = rng.integers(0, N_USERS, 100_000)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}",
                                     connector=aiohttp.TCPConnector(limit=0)) as session:
        async def infer(i):
            body = {"inputs": [{"name": "user_index", "shape": [1, 1], "datatype": "INT64",
                                "data": [int(users[i % len(users)])]}]}
            async with session.post("/v2/models/recommender/infer", json=body) as response:
                await response.read()
                return response.status == 200
        await closed_loop(infer, 10, 2)
        return {f"triton_closed_{c}": summary(*await closed_loop(infer, c, args.seconds))
                for c in (1, 50)}


def triton(path: Path, args) -> dict:
    "The same model behind pytriton's tritonserver (Python backend), when an interpreter is given."
    python = os.environ.get("RWB_TRITON_PYTHON")
    if not python:
        return {"triton": "skipped: set RWB_TRITON_PYTHON to a python with nvidia-pytriton"}
    port = 8300
    env = {**os.environ, "LD_LIBRARY_PATH": os.environ.get("RWB_TRITON_LIBPYTHON", "")}
    server = subprocess.Popen([python, str(HERE / "triton_recommender.py"), str(path), str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        for line in server.stdout:
            if "TRITON READY" in line:
                break
        else:
            return {"triton": "failed to start"}
        return asyncio.run(run_triton(port, args))
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--open-seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    import uvloop
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)  # the in-process baseline is single-threaded, like each worker
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    with tempfile.TemporaryDirectory() as folder:
        path = build_model(Path(folder))
        scoring = one_user_scoring(path)
        record("serving_one_user", **scoring)
        server, url = start_server(path, args.workers)
        try:
            load = asyncio.run(run_load(url, args, server.pid))
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
        one_client = load["closed_1"]["p50_ms"]
        record("serving_load", workers=args.workers, cores=os.cpu_count(),
               load_average_1min=round(os.getloadavg()[0], 2), **{
            f"{name}.{key}": value for name, values in load.items()
            for key, value in values.items()},
            http_1_client_p50_minus_in_process_p50_ms=round(one_client - scoring["numpy_p50_ms"], 3),
            closed_50_vs_in_process_single_thread=round(
                load["closed_50"]["req_per_s"] / scoring["in_process_calls_per_s"], 3))
        record("serving_triton", **triton(path, args))


if __name__ == "__main__":
    main()
