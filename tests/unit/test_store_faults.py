"""The store under faults: writers killed with SIGKILL mid ingest, retention and a multi-table step,
concurrent `rwb ingest`s, a held lock, stale leftovers, damaged files and an old-layout store.
Run with -s to see the counts."""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import store_faults  # noqa: E402
from retail_workbench.data.ingest import ingest  # noqa: E402
from retail_workbench.data.store import (  # noqa: E402
    SnapshotStore, StoreLock, StoreLockedError, content_sha256, snapshot_id)

RWB = str(Path(sys.executable).parent / "rwb")
MUST_BE_ZERO = ("failed_runs", "inconsistent_heads", "leftover_snapshots", "leftover_files",
                "damaged_after_kill", "damaged_reads_unnoticed", "queries_broken_by_other_damage",
                "lost_rows")


def test_killed_concurrent_and_damaged_writers_never_mix_heads_or_lose_rows(tmp_path):
    counts = store_faults.run_all(tmp_path, kill_runs=8, concurrent=2, damaged=6, seed=1)
    print("\nstore faults:", json.dumps(counts))
    assert counts["kills"] >= 12 and counts["concurrent_rounds"] == 2
    assert counts["corruptions_named_exactly"] == counts["corrupted_files"] == 6
    assert counts["ingests_checked"] > 0
    assert {name: counts[name] for name in MUST_BE_ZERO} == dict.fromkeys(MUST_BE_ZERO, 0)


def _rwb(*args, env=None, **kwargs):
    return subprocess.Popen([RWB, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, **kwargs)


def test_two_rwb_ingests_into_one_workspace_run_one_after_the_other(tmp_path, workspace_home):
    sources = store_faults.make_sources(tmp_path, n=2)
    alone = []
    for k, path in enumerate(sources):
        store = SnapshotStore(tmp_path / f"alone{k}")
        ingest(path, "online_retail", store=store)
        alone.append(store.commit_record()["heads"])
    runs = [_rwb("ingest", path, "--format", "online_retail") for path in sources]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    store = SnapshotStore()
    assert store.commit_record()["heads"] in alone
    assert sorted(json.dumps(m, sort_keys=True) for m in store.log()["moved"]) == sorted(
        json.dumps(h, sort_keys=True) for h in alone)  # two commits, one file each


def test_a_writer_waits_for_the_lock_says_for_whom_and_gives_up_naming_the_holder(
        tmp_path, workspace_home):
    path = store_faults.make_sources(tmp_path, n=1)[0]
    store = SnapshotStore()
    with store.lock():
        refused = _rwb("ingest", path, "--format", "online_retail",
                       env={"RWB_LOCK_TIMEOUT": "0.5"})
        _, err = refused.communicate(timeout=120)
        assert refused.returncode == 1
        assert len(err.strip().splitlines()) == 2  # the waiting notice, then the error
        assert err.strip().splitlines()[-1].startswith("error: the store ")
        assert f"locked by pid {os.getpid()} on " in err and "gave up after 0.5 s" in err
        waiting = _rwb("ingest", path, "--format", "online_retail")
        notice = waiting.stderr.readline()
        assert "waiting for the store lock" in notice and f"pid {os.getpid()}" in notice
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert {"customers", "interactions"} <= set(store.tables()) and len(store.log()) == 1


def test_only_stale_leftovers_are_removed(tmp_path):
    store = SnapshotStore(tmp_path / "store")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        host = store_faults.socket_host()
        live = store.root / "tmp" / f"catalog-0000000000000000.{host}.{sleeper.pid}.0123456789ab"
        gone = store.root / "tmp" / f"catalog-1111111111111111.{host}.{dead.pid}.0123456789ab"
        fresh_unknown = store.root / "tmp" / "catalog-2222222222222222.far.9.0123456789ab"
        for leftover in (live, gone, fresh_unknown):
            leftover.mkdir()
        SnapshotStore(store.root)  # opening with the lock free tidies what is stale
        assert sorted(p.name for p in (store.root / "tmp").iterdir()) == sorted(
            [live.name, fresh_unknown.name])
        assert store.gc(dry_run=True).empty
        assert store.gc(older_than_s=0)["path"].tolist() == [f"tmp/{fresh_unknown.name}"]
        assert live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_store_written_before_commit_records_keeps_working(tmp_path):
    root = tmp_path / "old"
    df = pd.DataFrame({"item_id": [1, 2, 3], "price": [1.0, 2.5, 4.0]})
    digest = content_sha256(df)
    old_id = snapshot_id("catalog", digest)
    folder = root / "snapshots" / old_id
    folder.mkdir(parents=True)
    df.to_parquet(folder / "data.parquet", index=False)
    manifest = {"id": old_id, "table": "catalog", "sha256": digest, "rows": 3,
                "schema": {"item_id": "int64", "price": "float64"}, "source": "old",
                "parent": None, "created_at": "2025-01-01T00:00:00+00:00"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (root / "heads").mkdir()
    (root / "heads" / "catalog").write_text(old_id + "\n")
    (root / "tmp").mkdir()

    store = SnapshotStore(root)
    assert store.latest("catalog").id == old_id and store.latest("catalog").bytes is None
    pd.testing.assert_frame_equal(store.read(old_id, verify=True), df)
    assert store.verify(old_id) and store.verify_snapshots()["ok"].all()
    new = store.write(df.assign(price=0.5), "catalog", parent=old_id)
    assert store.tables() == ["catalog"] and store.latest("catalog").id == new.id
    assert store.commit_record()["seq"] == 1 and not (root / "heads").exists()
    (folder / "data.parquet").write_bytes(b"PAR1")  # a damaged old snapshot is still found
    assert store.verify_snapshots().set_index("id")["ok"].to_dict() == {old_id: False,
                                                                         new.id: True}


def test_lock_is_reentrant_and_released_by_a_killed_holder(tmp_path):
    lock_path = tmp_path / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from retail_workbench.data.store import "
         f"StoreLock; StoreLock({str(lock_path)!r}).acquire(); print('held', flush=True); "
         "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(StoreLockedError, match=f"locked by pid {holder.pid} on "):
        StoreLock(lock_path, timeout=0.2).acquire()
    holder.kill()
    holder.wait()
    lock = StoreLock(lock_path, timeout=5)
    assert lock.acquire() and not lock.acquire()
    assert lock.previous_owner["pid"] == holder.pid  # it died holding the lock: noticed
    lock.release()
    lock.release()


def test_a_damaged_commit_record_falls_back_to_the_newest_kept_one(tmp_path):
    store = SnapshotStore(tmp_path / "store")
    store.write(pd.DataFrame({"a": [1]}), "t")
    second = store.write(pd.DataFrame({"a": [2]}), "t")
    (store.root / "commit.json").write_text('{"seq": 2, "hea')
    assert store.latest("t").id == second.id
    report = store.verify_snapshots()
    assert report.loc[~report["ok"], "id"].tolist() == ["commit.json"]
    third = store.write(pd.DataFrame({"a": [3]}), "t")  # the next commit writes a whole one
    assert store.latest("t").id == third.id and store.verify_snapshots()["ok"].all()
    assert store.log()["seq"].tolist() == [3, 2, 1]
