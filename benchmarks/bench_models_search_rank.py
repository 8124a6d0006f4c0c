"""Search ranker scoring latency for 1 query x 1,000 candidates.

Measures `SearchRanker.rank` end to end (features + trees) with scikit-learn and with the ONNX
scorer, and the feature step alone. Baseline: the text-match-only ranker (BM25 features, no model)
on the same candidates, measured in the same run.
"""
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record  # noqa: E402

from retail_workbench.core import ITEM_COL, QUERY_COL  # noqa: E402
from retail_workbench.ops.onnx import OnnxSearchScorer, ranker_to_onnx  # noqa: E402
from retail_workbench.search.rank import (  # noqa: E402
    SearchRanker, split_log, text_match_scores,
)
from retail_workbench.data.synth import make_world  # noqa: E402


def per_call_ms(fn, n=50):
    "Wall times (ms) of n calls of fn()."
    fn()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return np.array(times)


def main():
    world = make_world(n_users=3000, n_items=1000, seed=0)
    train, _ = split_log(world.search_impressions)
    ranker = SearchRanker(n_estimators=150, random_state=0).fit(train, world.catalog)
    scorer = OnnxSearchScorer(ranker_to_onnx(ranker), ranker.featurizer_)
    query = train[QUERY_COL].value_counts().index[0]
    candidates = np.arange(1000)
    pairs = pd.DataFrame({QUERY_COL: query, ITEM_COL: candidates})
    sk_rank = per_call_ms(lambda: ranker.rank(query, candidates))
    onnx_rank = per_call_ms(lambda: np.argsort(-scorer.score(pairs)))
    features = per_call_ms(lambda: ranker.featurizer_.transform(pairs))
    X = ranker.featurizer_.transform(pairs).to_numpy(dtype=np.float32)
    trees_sk = per_call_ms(lambda: ranker.model_.predict(X))
    trees_onnx = per_call_ms(lambda: scorer.run({scorer.input_names[0]: X}))
    text = per_call_ms(lambda: np.argsort(-text_match_scores(ranker.featurizer_, pairs)))
    record("bench_models_search_rank", query=query, candidates=len(candidates),
           sklearn_rank_p50_ms=round(float(np.median(sk_rank)), 2),
           sklearn_rank_p99_ms=round(float(np.percentile(sk_rank, 99)), 2),
           onnx_rank_p50_ms=round(float(np.median(onnx_rank)), 2),
           onnx_rank_p99_ms=round(float(np.percentile(onnx_rank, 99)), 2),
           features_only_p50_ms=round(float(np.median(features)), 2),
           trees_only_sklearn_p50_ms=round(float(np.median(trees_sk)), 3),
           trees_only_onnx_p50_ms=round(float(np.median(trees_onnx)), 3),
           text_match_baseline_p50_ms=round(float(np.median(text)), 2),
           ratio_ltr_sklearn_vs_text_baseline=round(float(np.median(sk_rank) / np.median(text)), 2),
           ratio_ltr_onnx_vs_text_baseline=round(float(np.median(onnx_rank) / np.median(text)), 2))


if __name__ == "__main__":
    main()
