"Helpers shared by the benchmark scripts: timing, peak memory, and recording results."
import json
import os
import resource
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn, *args, repeat: int = 1, **kwargs):
    "Best wall time of `repeat` calls of fn(*args, **kwargs), and the last result."
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - started)
    return best, result


class PeakMemory:
    "Peak resident memory growth (MiB) of this process while the block runs, sampled every 5 ms."

    def __enter__(self):
        self._process = psutil.Process(os.getpid())
        self._start = self._process.memory_info().rss
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            grown = (self._process.memory_info().rss - self._start) / 2**20
            self.peak_mib = max(self.peak_mib, grown)
            time.sleep(0.005)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def record(name: str, **values):
    "Print `values` and append them with a timestamp to results/<name>.jsonl."
    RESULTS.mkdir(exist_ok=True)
    values = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **values}
    with open(RESULTS / f"{name}.jsonl", "a") as out:
        out.write(json.dumps(values) + "\n")
    for key, value in values.items():
        print(f"  {key:<40} {value}")


def random_topk_recommender(path: Path, n_users: int, n_items: int, dim: int,
                            user_ids=None) -> Path:
    "A LightFM-shaped top-k ONNX recommender with random factors, saved at `path`."
    import numpy as np
    from retail_workbench.ops.onnx import annotate_recommender, build_topk_graph, save_model
    rng = np.random.default_rng(0)
    graph = build_topk_graph(rng.normal(size=(n_users, dim)).astype(np.float32) / 4,
                             np.zeros(n_users, np.float32),
                             rng.normal(size=(n_items, dim)).astype(np.float32) / 4,
                             rng.normal(size=n_items).astype(np.float32) / 10)
    users = list(range(n_users)) if user_ids is None else user_ids
    save_model(annotate_recommender(graph, users, list(range(n_items))), path)
    return path


ONLINE_RETAIL = Path(__file__).resolve().parents[2] / "shared" / "data" / "online_retail.parquet"


def online_retail_recommender_tables():
    "Online Retail (../shared/data) as the recommender's tables, or None (and a message) when absent."
    from retail_workbench.data.datasets import resolve_source
    from retail_workbench.recsys.recommend import recommender_tables
    if not ONLINE_RETAIL.exists():
        print(f"skipped: {ONLINE_RETAIL} not present")
        return None
    return recommender_tables(resolve_source(str(ONLINE_RETAIL), tables=("interactions",),
                                             optional=("catalog", "customers"),
                                             format="online_retail").tables)
