import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def workspace_home(tmp_path, monkeypatch):
    "Every test gets its own empty workspace and no progress bars."
    home = tmp_path / "workspace"
    monkeypatch.setenv("RWB_HOME", str(home))
    monkeypatch.setenv("RWB_PROGRESS", "0")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home


@pytest.fixture
def shared_data():
    "The real datasets beside the project; tests that need them skip where they are absent."
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
