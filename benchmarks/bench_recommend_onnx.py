"""ONNX top-10 scorer on 50,000 items x 64 components: single-user latency (p50, p99) and batch
throughput of onnxruntime against NumPy (matmul + seen masking + argpartition) on the same
embeddings. Random embeddings (the graph does not depend on how they were learned); both sides
run on one thread (OMP/OpenBLAS threads and onnxruntime intra-op threads set to 1)."""
import os

for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[name] = "1"

import time

import numpy as np

from _common import record
from retail_workbench.ops.onnx import OnnxScorer, build_topk_graph

N_USERS, N_ITEMS, D, K = 10_000, 50_000, 64, 10
SINGLE_CALLS, BATCH, BATCH_REPEATS = 500, 256, 5


def numpy_top_k(users, items_t, item_biases, user_biases, history, k):
    scores = users @ items_t + item_biases + user_biases[:, None]
    scores[history > 0] = -np.inf
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-values, axis=1)
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(values, order, axis=1)


def main():
    rng = np.random.default_rng(0)
    users = (rng.normal(size=(N_USERS, D)) / np.sqrt(D)).astype(np.float32)
    items = (rng.normal(size=(N_ITEMS, D)) / np.sqrt(D)).astype(np.float32)
    user_biases = rng.normal(size=N_USERS).astype(np.float32) * 0.1
    item_biases = rng.normal(size=N_ITEMS).astype(np.float32) * 0.1
    items_t = np.ascontiguousarray(items.T)
    scorer = OnnxScorer(build_topk_graph(users, user_biases, items, item_biases), threads=1)
    history = np.zeros((BATCH, N_ITEMS), np.float32)
    seen = rng.integers(0, N_ITEMS, (BATCH, 20))
    np.put_along_axis(history, seen, 1.0, axis=1)
    no_features = np.zeros((BATCH, 1), np.float32)
    k = np.array([K], np.int64)

    def onnx_call(index, rows):
        return scorer.run({"user_index": index, "user_features": no_features[rows],
                           "history": history[rows], "k": k})

    # parity on a batch first
    index = np.arange(BATCH, dtype=np.int64)
    scores, codes = onnx_call(index, slice(0, BATCH))
    np_codes, np_scores = numpy_top_k(users[:BATCH], items_t, item_biases, user_biases[:BATCH],
                                      history, K)
    assert (codes == np_codes).mean() > 0.999 and np.abs(scores - np_scores).max() < 1e-4

    single_onnx, single_numpy = [], []
    for call in range(SINGLE_CALLS):
        user = call % BATCH
        started = time.perf_counter()
        onnx_call(np.array([user], np.int64), slice(user, user + 1))
        single_onnx.append(time.perf_counter() - started)
        started = time.perf_counter()
        numpy_top_k(users[user:user + 1], items_t, item_biases, user_biases[user:user + 1],
                    history[user:user + 1], K)
        single_numpy.append(time.perf_counter() - started)
    folded = []   # a new user folded in from 20 events (index one past the last user)
    for call in range(SINGLE_CALLS // 5):
        user = call % BATCH
        started = time.perf_counter()
        onnx_call(np.array([N_USERS], np.int64), slice(user, user + 1))
        folded.append(time.perf_counter() - started)
    onnx_batch = numpy_batch = float("inf")
    for _ in range(BATCH_REPEATS):
        started = time.perf_counter()
        onnx_call(index, slice(0, BATCH))
        onnx_batch = min(onnx_batch, time.perf_counter() - started)
        started = time.perf_counter()
        numpy_top_k(users[:BATCH], items_t, item_biases, user_biases[:BATCH], history, K)
        numpy_batch = min(numpy_batch, time.perf_counter() - started)
    ms = lambda values, q: round(float(np.percentile(values, q)) * 1000, 3)
    record("bench_recommend_onnx", items=N_ITEMS, components=D, k=K, threads=1,
           onnx_single_p50_ms=ms(single_onnx, 50), onnx_single_p99_ms=ms(single_onnx, 99),
           onnx_fold_in_user_p50_ms=ms(folded, 50), onnx_fold_in_user_p99_ms=ms(folded, 99),
           numpy_single_p50_ms=ms(single_numpy, 50), numpy_single_p99_ms=ms(single_numpy, 99),
           batch_users=BATCH,
           onnx_batch_users_per_s=round(BATCH / onnx_batch, 1),
           numpy_batch_users_per_s=round(BATCH / numpy_batch, 1),
           onnx_vs_numpy_single_p50=round(np.percentile(single_numpy, 50)
                                          / np.percentile(single_onnx, 50), 2),
           onnx_vs_numpy_batch_throughput=round(numpy_batch / onnx_batch, 2))


if __name__ == "__main__":
    main()
