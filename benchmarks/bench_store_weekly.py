"""Weekly retention aggregates on 10M synthetic interactions: DuckDB (the store's SQL) vs pandas.

Both sides start from the same parquet snapshot on disk and produce the same two tables: weekly
views, clicks, add-to-carts, orders, ratings and units per user-item and per item, for history
older than the 90-day detail window. Each side runs in its own process, so its peak memory is
its own. Baseline: pandas (read_parquet + groupby).
Usage: python benchmarks/bench_store_weekly.py [--rows N]
"""
import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

EVENT_NAMES = {"view": "views", "click": "clicks", "add_to_cart": "add_to_carts",
               "order": "orders", "rating": "ratings"}


def make_snapshot(rows: int, folder: Path) -> tuple[str, dict]:
    "Synthetic interactions (make_world) stored as a snapshot; returns its parquet path and facts."
    from retail_workbench.data.store import SnapshotStore
    from retail_workbench.data.synth import make_world

    started = time.perf_counter()
    n_users = int(rows / 170) + 1000  # about 176 interactions per customer-year in make_world
    world = make_world(n_users=n_users, n_items=2000, n_days=365, seed=0)
    interactions = world.interactions
    if len(interactions) > rows:
        interactions = interactions.sample(n=rows, random_state=0).sort_values("ts",
                                                                              ignore_index=True)
    snap = SnapshotStore(folder / "store").write(interactions, "interactions",
                                                 source=f"make_world(n_users={n_users})")
    facts = {"rows": snap.rows, "users": int(n_users), "generate_and_store_s":
             round(time.perf_counter() - started, 1)}
    return str(snap.path / "data.parquet"), facts


def side_duckdb(path: str, window_days: int) -> dict:
    import duckdb
    import pandas as pd

    from retail_workbench.data.store import _weekly_sql

    con = duckdb.connect()
    source = f"read_parquet('{path}')"
    newest = con.sql(f"SELECT max(ts) FROM {source}").fetchall()[0][0]
    cutoff = (pd.Timestamp(newest) - pd.Timedelta(days=window_days)).isoformat()
    older = f"ts < TIMESTAMP '{cutoff}'"
    per_pair = con.sql(_weekly_sql(source, older, ["user_id", "item_id"])).df()
    per_item = con.sql(_weekly_sql(source, older, ["item_id"])).df()
    con.close()
    return {"pairs": per_pair, "items": per_item}


def side_pandas(path: str, window_days: int) -> dict:
    import pandas as pd

    events = pd.read_parquet(path, columns=["user_id", "item_id", "ts", "event", "value"])
    cutoff = events["ts"].max() - pd.Timedelta(days=window_days)
    older = events[events["ts"] < cutoff]
    week = older["ts"].dt.normalize() - pd.to_timedelta(older["ts"].dt.dayofweek, unit="D")
    older = older.assign(week=week)
    out = {}
    for name, keys in (("pairs", ["week", "user_id", "item_id"]), ("items", ["week", "item_id"])):
        counts = (older.groupby([*keys, "event"], observed=True).size()
                  .unstack("event", fill_value=0)
                  .rename(columns=EVENT_NAMES)
                  .reindex(columns=list(EVENT_NAMES.values()), fill_value=0))
        orders = older[older["event"] == "order"]
        counts["units"] = orders.groupby(keys)["value"].sum().reindex(counts.index, fill_value=0.0)
        out[name] = counts.reset_index()
    return out


def _cpu_seconds() -> float:
    "CPU time of this process, all threads (the machine may be shared, so wall time is noisy)."
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_side(side: str, path: str, window_days: int) -> dict:
    "Run one side in this process, measuring time and peak memory growth; JSON-ready."
    from _common import PeakMemory

    import duckdb  # noqa: F401  (imports are not part of the measurement)
    import pandas  # noqa: F401
    import retail_workbench.data.store  # noqa: F401

    function = side_duckdb if side == "duckdb" else side_pandas
    with PeakMemory() as memory:
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        result = function(path, window_days)
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    totals = {name: {"rows": len(table),
                     **{c: float(table[c].sum()) for c in [*EVENT_NAMES.values(), "units"]}}
              for name, table in result.items()}
    return {"seconds": seconds, "cpu_s": cpu, "peak_mib": memory.peak_mib, "totals": totals}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--window-days", type=int, default=90)
    parser.add_argument("--side", choices=["duckdb", "pandas"])
    parser.add_argument("--path")
    parser.add_argument("--fresh", action="store_true", help="Regenerate the cached data.")
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_side(args.side, args.path, args.window_days)))
        return

    from _common import record

    cached = Path(tempfile.gettempdir()) / f"rwb_bench_store_weekly_{args.rows}.parquet"
    with tempfile.TemporaryDirectory() as folder:
        if cached.exists() and not args.fresh:
            path, facts = str(cached), {"rows": args.rows, "generate_and_store_s": "cached"}
        else:
            path, facts = make_snapshot(args.rows, Path(folder))
            shutil.copyfile(path, cached)
        made = facts["generate_and_store_s"]
        made = "reused" if made == "cached" else f"{made} s to make and store"
        print(f"interactions: {facts['rows']:,} rows ({made}; input kept at {cached})", flush=True)
        measured = {}
        for side in ("duckdb", "pandas"):
            done = subprocess.run([sys.executable, __file__, "--side", side, "--path", path,
                                   "--window-days", str(args.window_days)],
                                  capture_output=True, text=True)
            if done.returncode:
                print(done.stderr[-3000:])
                raise SystemExit(f"{side} side failed")
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            measured[side] = json.loads(lines[-1])
            print(f"{side}: {measured[side]['seconds']:.2f} s wall, "
                  f"{measured[side]['cpu_s']:.2f} s CPU, "
                  f"peak +{measured[side]['peak_mib']:.0f} MiB", flush=True)
    same = measured["duckdb"]["totals"] == measured["pandas"]["totals"]
    if not same:
        print("MISMATCH", json.dumps(measured, indent=1))
    duck, pand = measured["duckdb"], measured["pandas"]
    record("store_weekly",
           rows=facts["rows"],
           window_days=args.window_days,
           weekly_user_item_rows=duck["totals"]["pairs"]["rows"],
           weekly_item_rows=duck["totals"]["items"]["rows"],
           duckdb_s=round(duck["seconds"], 2),
           pandas_s=round(pand["seconds"], 2),
           speedup_duckdb_vs_pandas=round(pand["seconds"] / duck["seconds"], 2),
           duckdb_cpu_s=round(duck["cpu_s"], 2),
           pandas_cpu_s=round(pand["cpu_s"], 2),
           cpu_ratio_pandas_over_duckdb=round(pand["cpu_s"] / duck["cpu_s"], 2),
           duckdb_peak_mib=round(duck["peak_mib"], 1),
           pandas_peak_mib=round(pand["peak_mib"], 1),
           memory_ratio_pandas_over_duckdb=round(pand["peak_mib"] / max(duck["peak_mib"], 1.0), 2),
           results_identical=same)
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
