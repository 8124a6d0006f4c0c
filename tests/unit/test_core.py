import logging

import numpy as np
import pytest

from retail_workbench import core


def test_workspace_defaults_to_rwb_home_and_creates_folders_on_demand(workspace_home):
    ws = core.get_workspace()
    assert ws.root == workspace_home.resolve()
    assert not workspace_home.exists()
    for name in core.WORKSPACE_DIRS:
        assert getattr(ws, name).is_dir()


def test_workspace_default_is_relative_to_current_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("RWB_HOME")
    monkeypatch.chdir(tmp_path)
    assert core.get_workspace().root == (tmp_path / "workspace").resolve()


def test_settings_defaults_point_tracking_and_tuning_into_the_workspace(workspace_home):
    settings = core.get_settings()
    assert settings.seed == 42 and settings.n_jobs == -1 and settings.progress is False
    assert settings.mlflow_tracking_uri == f"sqlite:///{workspace_home.resolve()}/mlflow.db"
    assert settings.optuna_storage.endswith("/optuna.db")


def test_settings_honour_mlflow_tracking_uri(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert core.get_settings().mlflow_tracking_uri == "http://tracking.example:5000"


@pytest.mark.parametrize("name,value,message", [
    ("RWB_SEED", "abc", "RWB_SEED='abc' is not an integer"),
    ("RWB_N_JOBS", "1.5", "RWB_N_JOBS='1.5' is not an integer"),
    ("RWB_LOG_LEVEL", "LOUD", "is not a logging level"),
])
def test_bad_settings_raise_config_error_naming_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(core.ConfigError, match=message):
        core.get_settings()


def test_error_hierarchy_carries_hints():
    assert issubclass(core.SchemaError, core.DataError)
    assert issubclass(core.DataError, core.WorkbenchError)
    assert "rwb snapshots" in str(core.SourceNotFoundError("no snapshot 'abc'"))
    assert isinstance(core.UnknownIdError("user 'u1'"), KeyError)


def test_seed_everything_makes_runs_repeatable():
    first = core.seed_everything(3).normal(size=4), np.random.rand()
    second = core.seed_everything(3).normal(size=4), np.random.rand()
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1] == second[1]


def test_loggers_live_under_the_package_logger():
    log = core.get_logger("forecast")
    assert log.name == "retail_workbench.forecast"
    assert logging.getLogger("retail_workbench").handlers


def test_canonical_tables_use_the_column_constants():
    assert core.CANONICAL_TABLES["interactions"] == (
        core.USER_COL, core.ITEM_COL, core.TS_COL, core.EVENT_COL, core.SESSION_COL, core.VALUE_COL)
    assert set(core.CANONICAL_TABLES) == {
        "interactions", "search_impressions", "catalog", "sales", "customers"}
