"""Ingest throughput on the full UCI Online Retail file (541,909 invoice lines).

Measured in the same run, each into a fresh temporary folder:
- ours: `ingest(path, "online_retail")`: read the parquet file, map it to canonical
  interactions + customers, verify every row against the default rules (quarantine with reasons,
  per-rule report), and write the clean tables and the quarantine as content-addressed snapshots;
  also its three stages timed separately (load, verify, snapshot writes);
- baseline: plain pandas `read_parquet` + `to_parquet` of the same rows (no mapping, no checks).
Reported: rows/s of each, the ratio ours / baseline (how many times longer a verified, versioned
ingest takes than a bare copy), and peak memory growth of each.
Needs ../shared/data/online_retail.parquet (or RWB_BENCH_ONLINE_RETAIL=<path>).
"""
import os
import tempfile
from pathlib import Path

import pandas as pd
from _common import PeakMemory, record, timed

os.environ.setdefault("RWB_PROGRESS", "0")

from retail_workbench.data.ingest import check_source_tables, ingest  # noqa: E402
from retail_workbench.data.loaders import load  # noqa: E402
from retail_workbench.data.store import SnapshotStore  # noqa: E402
from retail_workbench.data.verify import verify  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path(os.environ.get("RWB_BENCH_ONLINE_RETAIL",
                             ROOT.parent / "shared" / "data" / "online_retail.parquet"))
REPEAT = int(os.environ.get("RWB_BENCH_REPEAT", 2))


def ours():
    with tempfile.TemporaryDirectory() as tmp:
        return ingest(SOURCE, "online_retail", store=SnapshotStore(tmp))


def baseline():
    with tempfile.TemporaryDirectory() as tmp:
        df = pd.read_parquet(SOURCE)
        df.to_parquet(Path(tmp) / "copy.parquet", index=False)
        return len(df)


def stages() -> dict:
    load_s, tables = timed(load, SOURCE, "online_retail")
    verify_s, result = timed(verify, tables["interactions"], "interactions")
    check = check_source_tables(SOURCE, "online_retail")
    with tempfile.TemporaryDirectory() as tmp:
        store = SnapshotStore(tmp)

        def write_all():
            for table, checked in check.results.items():
                store.write(checked.clean, table=table)
                store.write(checked.quarantine, table=f"{table}_quarantine")
        write_s, _ = timed(write_all)
    return {"load_s": round(load_s, 2), "verify_s": round(verify_s, 2),
            "snapshot_write_s": round(write_s, 2)}


def main():
    if not SOURCE.exists():
        print(f"skipped: {SOURCE} not found")
        return
    with PeakMemory() as ours_mem:
        ours_s, summary = timed(ours, repeat=REPEAT)
    with PeakMemory() as base_mem:
        base_s, rows = timed(baseline, repeat=REPEAT)
    assert rows == summary["rows_in"] == summary["rows_clean"] + summary["rows_quarantined"]
    record("bench_data_ingest",
           dataset="UCI Online Retail (full)", rows=rows, repeat=REPEAT,
           rows_clean=summary["rows_clean"], rows_quarantined=summary["rows_quarantined"],
           ours_ingest_s=round(ours_s, 2), ours_rows_per_s=round(rows / ours_s),
           baseline="pandas read_parquet + to_parquet",
           baseline_s=round(base_s, 2), baseline_rows_per_s=round(rows / base_s),
           ratio_ours_over_baseline_time=round(ours_s / base_s, 1),
           ours_peak_mib=round(ours_mem.peak_mib), baseline_peak_mib=round(base_mem.peak_mib),
           **stages())


if __name__ == "__main__":
    main()
