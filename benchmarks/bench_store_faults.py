"""The store under faults, at more seeds than the test gate runs, and what its commits cost.

Kills writers with SIGKILL at random moments and at named points of an ingest, a retention and a
four-table step; runs concurrent ingests into one store; truncates and bit-flips snapshot files
(tests/unit/store_faults.py). On the real Online Retail file (../shared/data) when present:
three 20,000-line slices; otherwise on the fixture. Then the price of a transaction: storing a
table through `SnapshotStore.write` (hash, parquet, fsync, journal, lock, commit record) against
the baseline of writing the same table with `DataFrame.to_parquet` alone.
Usage: python benchmarks/bench_store_faults.py [--kill-runs N] [--concurrent N] [--damaged N]
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "unit"))

from _common import record  # noqa: E402
import store_faults  # noqa: E402

SHARED = HERE.parent.parent / "shared" / "data" / "online_retail.parquet"


def write_cost(folder: Path, rows: int = 200_000, repeat: int = 5) -> dict:
    "Seconds per write: the store's transaction vs to_parquet alone, on fresh content each time."
    from retail_workbench.data.store import SnapshotStore
    store = SnapshotStore(folder / "cost")
    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({"user_id": rng.integers(0, 10_000, rows),
                            "item_id": rng.integers(0, 5_000, rows),
                            "value": rng.normal(size=rows)}) for _ in range(repeat)]
    started = time.perf_counter()
    for k, df in enumerate(frames):
        df.to_parquet(folder / f"plain{k}.parquet", index=False)
    plain = (time.perf_counter() - started) / repeat
    started = time.perf_counter()
    for df in frames:
        store.write(df, "interactions", source="bench")
    stored = (time.perf_counter() - started) / repeat
    return {"rows": rows, "to_parquet_s": round(plain, 4), "store_write_s": round(stored, 4),
            "ratio_store_write_over_to_parquet": round(stored / plain, 2)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-runs", type=int, default=40)
    parser.add_argument("--concurrent", type=int, default=6)
    parser.add_argument("--damaged", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        data = "tests/fixtures/online_retail (every 3rd of 3,000 lines)"
        sources = None
        if SHARED.exists():
            sources = store_faults.make_sources(scratch / "src", 3, pd.read_parquet(SHARED))
            data = f"{SHARED.name}: 3 slices of 20,000 lines"
        started = time.perf_counter()
        counts = store_faults.run_all(scratch, kill_runs=args.kill_runs,
                                      concurrent=args.concurrent, damaged=args.damaged,
                                      seed=args.seed, sources=sources)
        elapsed = time.perf_counter() - started
        cost = write_cost(scratch)
    record("store_faults", data=data, seconds=round(elapsed, 1), **counts, **cost)
    broken = [name for name in ("failed_runs", "inconsistent_heads", "leftover_snapshots",
                                "leftover_files", "damaged_after_kill", "lost_rows",
                                "damaged_reads_unnoticed", "queries_broken_by_other_damage")
              if counts[name]]
    if broken or counts["corruptions_named_exactly"] != counts["corrupted_files"]:
        print("FAILED:", broken)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
