"Optuna tuning: storage, resumption, pruning, MLflow child runs, and no peeking at the test period."
import json

import mlflow
import optuna
import pandas as pd
import pytest

from retail_workbench.core import ConfigError, DataError
from retail_workbench.data.datasets import resolve_source
from retail_workbench.data.store import SnapshotStore
from retail_workbench.ops.families import FAMILIES, Family, family_inputs, get_family
from retail_workbench.ops.registry import GateConfig
from retail_workbench.ops.tracking import get_experiment_id
from retail_workbench.ops.tuning import best_params_path, load_best_params, tune


def _toy_family(seen: list) -> Family:
    "A family whose validation score is known: the closer x is to 3, the better; epochs help."
    def split(snapshots, quick):
        return {"train": "train", "valid": "valid", "train_full": "train_full", "test": "test",
                "context": {}}

    def fit(params, train, context):
        seen.append(train)
        return params

    def evaluate(model, train, truth, context):
        seen.append(truth)
        return {"score": -abs(model["x"] - 3.0) + model["epochs"] / 100}

    def space(trial):
        return {"x": trial.suggest_float("x", 0.0, 10.0), "epochs": trial.suggest_int("epochs", 4, 8)}

    return Family("toy", GateConfig("score"), {"x": 9.0, "epochs": 4}, split, fit, evaluate,
                  None, space)


@pytest.fixture
def toy(monkeypatch):
    seen = []
    monkeypatch.setitem(FAMILIES, "toy", _toy_family(seen))
    return seen


def test_study_in_default_storage_beats_default_and_never_sees_test(toy, workspace_home):
    result = tune("toy", n_trials=12, seed=1)
    assert (workspace_home / "optuna.db").exists()
    assert result.default_value == pytest.approx(-6.0 + 0.04)
    assert result.best_value > result.default_value + 3
    assert set(toy[: -4]) <= {"train", "valid"}  # tuning: train and validation only
    assert toy[-4:] == ["train_full", "test", "train_full", "test"]  # the final report
    assert load_best_params("toy") == result.best_params
    saved = json.loads(best_params_path("toy").read_text())
    assert saved["value"] == pytest.approx(result.best_value)
    trials = mlflow.search_runs([get_experiment_id()],
                                filter_string=f"tags.mlflow.parentRunId = '{result.mlflow_run_id}'")
    assert len(trials) == 12
    assert result.n_pruned >= 1 and (trials["status"] == "KILLED").sum() == result.n_pruned


def test_study_resumes_and_accepts_any_rdb_url(toy, tmp_path):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    tune("toy", n_trials=2, storage=storage, study_name="s", evaluate_test=False)
    again = tune("toy", n_trials=3, storage=storage, study_name="s", evaluate_test=False)
    assert again.n_trials == 5
    study = optuna.load_study(study_name="s", storage=storage)
    assert study.trials[0].params == {"x": 9.0, "epochs": 4}  # the default configuration first


def test_errors():
    with pytest.raises(ConfigError, match="unknown model family"):
        tune("churn")
    with pytest.raises(ConfigError, match="at least 1"):
        tune("recommender", n_trials=0)


@pytest.mark.slow
def test_recommender_validation_is_carved_from_train():
    tables = family_inputs(get_family("forecaster"), "synthetic:quick").tables
    tables.update(family_inputs(get_family("recommender"), "synthetic:quick").tables)
    data = get_family("recommender").split(tables)
    assert data["train"]["ts"].max() <= data["valid"]["ts"].min()
    assert data["train_full"]["ts"].max() <= data["test"]["ts"].min()
    assert len(data["train"]) + len(data["valid"]) == len(data["train_full"])
    forecaster = get_family("forecaster").split(tables)
    assert forecaster["train_full"]["date"].max() < forecaster["test"]["date"].min()
    assert forecaster["valid"]["date"].min() > forecaster["train"]["date"].max()


@pytest.mark.slow
def test_tuning_reads_only_the_tables_it_is_given(workspace_home):
    "A workspace with only the user's interactions: no synthetic table is ever put in their place."
    world = resolve_source("synthetic:quick", tables=("interactions",))
    mine = SnapshotStore().write(world["interactions"], table="interactions", source="my export")
    with pytest.raises(DataError, match="table 'sales' is needed"):
        tune("forecaster", "store", n_trials=1)
    result = tune("recommender", "store", n_trials=1, quick=True, evaluate_test=False)
    inputs = mlflow.get_run(result.mlflow_run_id).inputs.dataset_inputs
    assert [(d.dataset.name, d.dataset.digest) for d in inputs] == [("interactions", mine.id)]
    assert SnapshotStore().tables() == ["interactions"]
