"""Fault injection for the snapshot store: writers killed with SIGKILL at random moments or at named
points, concurrent writers, truncated and bit-flipped files. Used by test_store_faults.py and
benchmarks/bench_store_faults.py; `run_all` returns the counts they print."""
import multiprocessing
import os
import random
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "online_retail"
NOW = "2012-06-01"  # fixed "now" for the time rules, so the same file always gives the same ids
def socket_host() -> str:
    "This host's name, as the store writes it into tmp names and the lock file."
    import socket
    return socket.gethostname()


POINTS = ("before-rename", "after-rename", "before-commit", "after-commit")


def make_sources(folder: Path, n: int = 3, frame: pd.DataFrame | None = None,
                 rows: int = 20_000) -> list[Path]:
    "`n` different Online Retail files: every n-th fixture line, or `rows`-line slices of `frame`."
    folder.mkdir(parents=True, exist_ok=True)
    if frame is not None:
        paths = [folder / f"slice{k}.csv" for k in range(n)]
        for k, path in enumerate(paths):
            frame.iloc[k * rows:(k + 1) * rows].to_csv(path, index=False)
        return paths
    lines = (FIXTURE / "online_retail_sample.csv").read_text(encoding="latin-1").splitlines()
    header, body = lines[0], lines[1:]
    paths = []
    for k in range(n):
        path = folder / f"part{k}.csv"
        path.write_text("\n".join([header, *body[k::n]]) + "\n", encoding="latin-1")
        paths.append(path)
    return paths


# -- what the killed processes run ----------------------------------------------------------
def _arm(point: str | int | None):
    "Kill this process at the named checkpoint, or at the k-th checkpoint reached."
    import retail_workbench.data.store as store_module
    if point is None:
        return
    seen = [0]

    def hook(name):
        seen[0] += 1
        if name == point or seen[0] == point:
            os.kill(os.getpid(), signal.SIGKILL)
    store_module._FAULT_HOOK = hook


def ingest_job(root: str, path: str, point=None):
    from retail_workbench.data.ingest import ingest
    from retail_workbench.data.store import SnapshotStore
    os.environ["RWB_PROGRESS"] = "0"
    _arm(point)
    ingest(path, "online_retail", store=SnapshotStore(root), now=NOW)


def retention_job(root: str, point=None):
    from retail_workbench.data.store import SnapshotStore, apply_retention
    _arm(point)
    apply_retention(SnapshotStore(root), window_days=60)


def multi_write_job(root: str, seed: int, point=None):
    "A step that writes four tables in one transaction."
    from retail_workbench.data.store import SnapshotStore
    _arm(point)
    store = SnapshotStore(root)
    rng = np.random.default_rng(seed)
    with store.transaction(f"step {seed}"):
        for name in ("features_user", "features_item", "scores", "report"):
            store.write(pd.DataFrame({"key": np.arange(2000), "value": rng.normal(size=2000)}),
                        name, source=f"step {seed}")


# -- the checks ------------------------------------------------------------------------------
def _folders(root: Path) -> set:
    return {p.name for p in (root / "snapshots").iterdir()}


def _check(root: Path, allowed: list[tuple[dict, set]], counts: dict) -> dict:
    "Open the store (which recovers), and count what breaks the all-or-nothing promise."
    from retail_workbench.data.store import SnapshotStore
    store = SnapshotStore(root)
    heads = store.commit_record()["heads"]
    matches = [folders for wanted, folders in allowed if wanted == heads]
    if not matches:
        counts["inconsistent_heads"] += 1
    elif _folders(root) != matches[0]:
        counts["leftover_snapshots"] += len(_folders(root) ^ matches[0])
    damaged = store.verify_snapshots()
    counts["damaged_after_kill"] += int((~damaged["ok"]).sum())
    counts["leftover_files"] += len(list((root / "tmp").iterdir()))
    counts["leftover_files"] += len(list((root / "txn").iterdir()))
    _count_lost_rows(store, counts)
    return heads


def _count_lost_rows(store, counts: dict):
    "For the last commit, if an ingest: rows in = clean + quarantined, table by table."
    record = store.commit_record()
    for table, facts in record.get("meta", {}).get("tables", {}).items():
        kept = store.get(facts["snapshot_id"]).rows
        if facts.get("quarantine_id"):
            kept += store.get(facts["quarantine_id"]).rows
        counts["lost_rows"] += abs(facts["rows_in"] - kept)
        counts["ingests_checked"] += 1


def _run(ctx, target, args, kill_after: float | None, counts: dict):
    process = ctx.Process(target=target, args=args)
    process.start()
    if kill_after is not None:
        process.join(kill_after)
        if process.is_alive():
            os.kill(process.pid, signal.SIGKILL)
    process.join()
    counts["runs"] += 1
    if process.exitcode == -signal.SIGKILL:
        counts["kills"] += 1
    elif process.exitcode != 0:
        counts["failed_runs"] += 1
    return process.exitcode


def _reference(ctx, base: Path, work: Path, target, args_of, counts) -> tuple[dict, set, float]:
    "Heads and folders after an uninterrupted run from `base`, and how long it took."
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work)
    started = time.perf_counter()
    _run(ctx, target, args_of(work), None, counts)
    elapsed = time.perf_counter() - started
    from retail_workbench.data.store import SnapshotStore
    return SnapshotStore(work).commit_record()["heads"], _folders(work), elapsed


def kill_rounds(ctx, base: Path, scratch: Path, target, args_of, rng, rounds: int, counts):
    "Kill `target` at random moments and named points, each from a copy of `base`."
    from retail_workbench.data.store import SnapshotStore
    before = (SnapshotStore(base).commit_record()["heads"], _folders(base))
    after_heads, after_folders, elapsed = _reference(ctx, base, scratch / "ref", target,
                                                     args_of, counts)
    allowed = [before, (after_heads, after_folders)]
    for k in range(rounds):
        work = scratch / f"run{k}"
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(base, work)
        if k % 2 == 0:  # a named point, or the n-th point reached
            point = POINTS[(k // 2) % len(POINTS)] if k % 4 == 0 else int(rng.integers(1, 12))
            _run(ctx, target, args_of(work, point), 30.0, counts)
        else:  # a random moment within the run
            _run(ctx, target, args_of(work), float(rng.uniform(0, 1.2 * elapsed)), counts)
        _check(work, allowed, counts)
        # a later run from the recovered store completes and ends where an uninterrupted one does
        if k % 3 == 0:
            _run(ctx, target, args_of(work), None, counts)
            if SnapshotStore(work).commit_record()["heads"] != after_heads:
                counts["inconsistent_heads"] += 1
        shutil.rmtree(work, ignore_errors=True)


def concurrent_rounds(ctx, sources, scratch: Path, rounds: int, counts):
    "Ingest different files into one store at once; heads must be one file's, never mixed."
    from retail_workbench.data.store import SnapshotStore
    expected = []
    for k, path in enumerate(sources):  # each file's heads on its own
        heads, _, _ = _reference(ctx, _empty_store(scratch / f"alone{k}"), scratch / f"ref{k}",
                                 ingest_job, lambda w, p=path: (str(w), str(p)), counts)
        expected.append(heads)
    for r in range(rounds):
        root = _empty_store(scratch / f"together{r}")
        processes = [ctx.Process(target=ingest_job, args=(str(root), str(p))) for p in sources]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
            counts["runs"] += 1
            counts["failed_runs"] += int(process.exitcode != 0)
        counts["concurrent_rounds"] += 1
        store = SnapshotStore(root)
        if store.commit_record()["heads"] not in expected:
            counts["inconsistent_heads"] += 1
        for record in store.log().itertuples():  # every commit is exactly one file's
            if not any(record.moved == heads for heads in expected):
                counts["inconsistent_heads"] += 1
        counts["damaged_after_kill"] += int((~store.verify_snapshots()["ok"]).sum())
        _count_lost_rows(store, counts)
    return expected


def _empty_store(root: Path) -> Path:
    from retail_workbench.data.store import SnapshotStore
    shutil.rmtree(root, ignore_errors=True)
    SnapshotStore(root)
    return root


def damage_rounds(base: Path, scratch: Path, rng, rounds: int, counts):
    "Truncate or flip one bit of a random snapshot file; it alone is named, other tables work."
    import duckdb
    from retail_workbench.data.store import SnapshotDamagedError, SnapshotStore
    for r in range(rounds):
        root = scratch / f"damaged{r}"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(base, root)
        store = SnapshotStore(root)
        heads = store.commit_record()["heads"]
        victim_table = sorted(heads)[int(rng.integers(len(heads)))]
        victim = store.latest(victim_table)
        data = victim.path / "data.parquet"
        raw = bytearray(data.read_bytes())
        if r % 2 == 0:
            data.write_bytes(bytes(raw[: int(rng.integers(0, len(raw)))]))
        else:
            raw[int(rng.integers(len(raw)))] ^= 1 << int(rng.integers(8))
            data.write_bytes(bytes(raw))
        counts["corrupted_files"] += 1
        report = store.verify_snapshots()
        named = set(report.loc[~report["ok"], "id"])
        counts["corruptions_named_exactly"] += int(named == {victim.id})
        try:
            store.read(victim.id, verify=True)
            counts["damaged_reads_unnoticed"] += 1
        except SnapshotDamagedError as err:
            counts["damaged_reads_unnoticed"] += int(victim.id not in str(err))
        others = [t for t in heads if t != victim_table]
        for table in others:
            count = store.sql(f"select count(*) as n from {table}")["n"].item()
            counts["queries_broken_by_other_damage"] += int(count != store.latest(table).rows)
        if r % 2 == 0:  # truncated: the cheap check on every read sees it
            try:
                store.sql(f"select count(*) from {victim_table}")
                counts["damaged_reads_unnoticed"] += 1
            except duckdb.Error as err:
                counts["damaged_reads_unnoticed"] += int(victim.id not in str(err))
        shutil.rmtree(root, ignore_errors=True)


def run_all(scratch: Path, kill_runs: int = 12, concurrent: int = 3, damaged: int = 6,
            seed: int = 0, sources: list[Path] | None = None) -> dict:
    "Every fault scenario; returns the counts (zero is right for all but the totals)."
    counts = dict.fromkeys(
        ["runs", "kills", "failed_runs", "concurrent_rounds", "corrupted_files",
         "corruptions_named_exactly", "inconsistent_heads", "leftover_snapshots",
         "leftover_files", "damaged_after_kill", "damaged_reads_unnoticed",
         "queries_broken_by_other_damage", "lost_rows", "ingests_checked"], 0)
    rng = np.random.default_rng(seed)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["retail_workbench.data.ingest", "retail_workbench.data.store",
                                "retail_workbench.data.loaders", Path(__file__).stem])
    sources = sources or make_sources(scratch)
    first = _empty_store(scratch / "base")
    _run(ctx, ingest_job, (str(first), str(sources[0])), None, counts)

    kill_rounds(ctx, first, scratch / "k_ingest", ingest_job,
                lambda w, p=None: (str(w), str(sources[1]), p), rng, kill_runs, counts)
    kill_rounds(ctx, first, scratch / "k_retain", retention_job,
                lambda w, p=None: (str(w), p), rng, max(kill_runs // 2, 2), counts)
    kill_rounds(ctx, first, scratch / "k_multi", multi_write_job,
                lambda w, p=None: (str(w), 7, p), rng, max(kill_runs // 2, 2), counts)
    concurrent_rounds(ctx, sources, scratch / "together", concurrent, counts)
    damage_rounds(first, scratch / "damage", rng, damaged, counts)
    return counts
