"`rwb snapshots`, `rwb snapshot-diff`, `rwb sql`, `rwb retain` through the real entry point."
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from retail_workbench.data.store import SnapshotStore

RWB = str(Path(sys.executable).parent / "rwb")


def run(*args):
    return subprocess.run([RWB, *args], capture_output=True, text=True)


def test_snapshots_json_diff_and_unknown_id(workspace_home):
    store = SnapshotStore()
    v1 = store.write(pd.DataFrame({"item_id": [1, 2], "price": [2.0, 3.0]}), "catalog", "t")
    v2 = store.write(pd.DataFrame({"item_id": [2, 3], "price": [3.0, 1.0]}), "catalog", "t")
    store.write(pd.DataFrame({"a": [1]}), "other")

    listed = run("snapshots", "--table", "catalog", "--json")
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)
    assert [r["id"] for r in records] == [v1.id, v2.id]
    assert [r["latest"] for r in records] == [False, True]

    diffed = run("snapshot-diff", v1.id, v2.id, "--json")
    assert diffed.returncode == 0, diffed.stderr
    summary = json.loads(diffed.stdout)
    assert (summary["added"], summary["removed"], summary["changed"]) == (1, 1, 0)

    missing = run("snapshot-diff", v1.id, "catalog-0123456789abcdef")
    assert missing.returncode == 1
    assert "catalog-0123456789abcdef" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1

    bad_sql = run("sql", "select * from no_such_table")
    assert bad_sql.returncode == 1 and bad_sql.stderr.startswith("error: query failed")


def test_a_damaged_snapshot_breaks_only_queries_that_read_it(workspace_home):
    store = SnapshotStore()
    damaged = store.write(pd.DataFrame({"item_id": range(50), "price": 1.0}), "catalog", "t")
    store.write(pd.DataFrame({"user_id": [1, 2, 3]}), "customers", "t")
    data = damaged.path / "data.parquet"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])

    other = run("sql", "select count(*) as n from customers", "--json")
    assert other.returncode == 0, other.stderr
    assert json.loads(other.stdout) == [{"n": 3}]
    failed = run("sql", "select count(*) from catalog")
    assert failed.returncode == 1
    assert len(failed.stderr.strip().splitlines()) == 1 and damaged.id in failed.stderr

    verified = run("store", "verify")
    assert verified.returncode == 1
    assert verified.stdout.splitlines()[0].startswith(f"damaged  {damaged.id}  (catalog)")
    assert verified.stdout.splitlines()[-1] == "verified 2 snapshot(s): 1 damaged"
    assert run("store", "verify", "--table", "customers").returncode == 0
    gc = run("store", "gc", "--dry-run")
    assert gc.returncode == 0 and gc.stdout.strip() == "nothing to remove"
