"""Propensity model scoring latency: ONNX (onnxruntime) vs scikit-learn, single row and batch of 10k.

Baseline: scikit-learn `predict_proba` of the same fitted pipeline, measured in the same run.
Data: the full UCI online shoppers file from ../shared/data when present, else the shipped sample.
"""
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record, timed  # noqa: E402

from retail_workbench.customers.propensity import (  # noqa: E402
    TARGET_COL, make_propensity_pipeline, session_frame,
)
from retail_workbench.data.datasets import load_sessions  # noqa: E402
from retail_workbench.ops.onnx import (  # noqa: E402
    OnnxPropensityScorer, propensity_parity, propensity_to_onnx,
)

FULL = Path(__file__).resolve().parents[2] / "shared" / "data" / "online_shoppers_intention.parquet"


def latencies(fn, rows, n=1000):
    "Per-call wall times (ms) of fn(row) over n single-row frames."
    times = []
    for i in range(n):
        row = rows[i % len(rows)]
        started = time.perf_counter()
        fn(row)
        times.append((time.perf_counter() - started) * 1000)
    return np.array(times)


def main():
    sessions = load_sessions(FULL if FULL.exists() else
                             "tests/fixtures/online_shoppers/online_shoppers_sample.parquet")
    X = session_frame(sessions)
    pipeline = make_propensity_pipeline("gbm", n_estimators=150, random_state=0)
    pipeline.fit(X, sessions[TARGET_COL].astype(int))
    scorer = OnnxPropensityScorer(propensity_to_onnx(pipeline, X))
    rows = [X.iloc[[i]] for i in range(200)]
    for row in rows[:20]:   # warm-up
        pipeline.predict_proba(row), scorer.predict_proba(row)
    sk_single = latencies(lambda r: pipeline.predict_proba(r), rows)
    ox_single = latencies(lambda r: scorer.predict_proba(r), rows)
    batch = X.sample(10_000, replace=True, random_state=0)
    sk_batch, _ = timed(pipeline.predict_proba, batch, repeat=5)
    ox_batch, _ = timed(scorer.predict_proba, batch, repeat=5)
    parity = propensity_parity(pipeline, scorer, batch)
    record("bench_models_propensity_onnx",
           data="full" if FULL.exists() else "sample", n_sessions=len(X),
           sklearn_single_p50_ms=round(float(np.percentile(sk_single, 50)), 3),
           sklearn_single_p99_ms=round(float(np.percentile(sk_single, 99)), 3),
           onnx_single_p50_ms=round(float(np.percentile(ox_single, 50)), 3),
           onnx_single_p99_ms=round(float(np.percentile(ox_single, 99)), 3),
           single_p50_speedup_onnx_vs_sklearn=round(float(np.percentile(sk_single, 50)
                                                          / np.percentile(ox_single, 50)), 1),
           sklearn_batch10k_ms=round(sk_batch * 1000, 1),
           onnx_batch10k_ms=round(ox_batch * 1000, 1),
           batch_speedup_onnx_vs_sklearn=round(sk_batch / ox_batch, 1),
           batch_max_abs_diff=parity["max_abs_diff"])


if __name__ == "__main__":
    main()
