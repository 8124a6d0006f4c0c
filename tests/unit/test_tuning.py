"Optuna tuning: storage, resumption, pruning, MLflow child runs, and no peeking at the test period."
import dataclasses
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


def _toy_family(seen: list, test_target: float = 3.0) -> Family:
    """A family whose scores are known: the closer x is to 3 on validation (to `test_target` on the
    test part), the better; epochs help a little."""
    def split(snapshots, quick, protocol="chronological", n=1, seed=0):
        return {"train": "train", "valid": "valid", "train_full": "train_full", "test": "test",
                "context": {}}

    def fit(params, train, context):
        seen.append(train)
        return params

    def evaluate(model, train, truth, context):
        seen.append(truth)
        target = test_target if truth == "test" else 3.0
        return {"score": -abs(model["x"] - target) + model["epochs"] / 100}

    def space(trial, context=None):
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
    assert toy[-4:] == ["train_full", "train_full", "test", "test"]  # both refitted, then scored
    assert result.comparison.keep == "tuned" and result.comparison.tuned_better
    assert result.comparison.tuned == pytest.approx(result.test["best"])
    assert result.comparison.default == pytest.approx(-6.0 + 0.04)
    assert "tuning beat the defaults on the held-out split" in result.comparison.message
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
        tune("no_such_family")
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


def test_when_tuning_loses_on_the_held_out_split_the_defaults_are_kept(monkeypatch, workspace_home):
    "Validation prefers x near 3, the test part prefers x = 9 (the default): tuning overfits."
    seen = []
    monkeypatch.setitem(FAMILIES, "toy", _toy_family(seen, test_target=9.0))
    result = tune("toy", n_trials=8, seed=1)
    assert result.best_value > result.default_value           # better on validation ...
    comparison = result.comparison
    assert comparison.tuned < comparison.default and not comparison.tuned_better  # ... not on test
    assert comparison.keep == "default" and result.chosen_params == {}
    assert comparison.message.startswith("tuning did not beat the defaults on the held-out split: "
                                         f"{comparison.tuned:.4f} vs {comparison.default:.4f}")
    assert comparison.message.endswith("keeping the defaults")
    assert load_best_params("toy") == {}                      # training falls back to the defaults
    saved = json.loads(best_params_path("toy").read_text())
    assert saved["kept"] == "default" and saved["tuned_params"] == result.best_params
    run = mlflow.get_run(result.mlflow_run_id)
    assert run.data.tags["tuning_kept"] == "default"
    assert run.data.metrics["tuned_minus_default_test_score"] == pytest.approx(
        comparison.difference)


def test_paired_bootstrap_is_run_on_the_outer_split_per_user(monkeypatch, workspace_home):
    "Per-user scores come from the test part only; the interval and p-value follow from them."
    seen = []
    family = _toy_family(seen)
    users = pd.Index([f"u{i}" for i in range(50)], name="user_id")

    def evaluate_users(model, train, truth, context):
        seen.append(("per user", truth))
        noise = pd.Series(range(50), index=users) % 5 / 1000
        return pd.DataFrame({"score": -abs(model["x"] - 3.0) + noise})

    monkeypatch.setitem(FAMILIES, "toy", dataclasses.replace(family, evaluate_users=evaluate_users))
    result = tune("toy", n_trials=6, seed=1, require_significant=True)
    per_user = [item for item in seen if isinstance(item, tuple)]
    assert per_user == [("per user", "test"), ("per user", "test")]
    comparison = result.comparison
    assert comparison.n_users == 50 and comparison.p_value == 0.0
    assert comparison.low == pytest.approx(comparison.high)    # every user gains the same
    assert comparison.low == pytest.approx(6.0 - abs(result.best_params["x"] - 3.0))
    assert comparison.keep == "tuned"


def test_bad_settings():
    with pytest.raises(ConfigError, match="at least 1"):
        tune("recommender", max_epochs=0)
    with pytest.raises(ConfigError, match="splits by time only"):
        get_family("forecaster").split({}, protocol="random_n")


def _pairs(frame: pd.DataFrame) -> set:
    return set(zip(frame["user_id"], frame["item_id"]))


def test_recommender_trials_never_see_the_outer_test_part(monkeypatch, workspace_home):
    "Online Retail fixture, 2 random items per user: only the final comparison touches the test part."
    from pathlib import Path
    from retail_workbench.data.loaders import load_online_retail
    from retail_workbench.recsys.recommend import recommender_tables
    fixture = Path(__file__).parents[1] / "fixtures" / "online_retail" / "online_retail_sample.csv"
    tables = recommender_tables(load_online_retail(fixture))
    tables = {t: tables[t] for t in ("interactions", "catalog", "customers")}
    family = get_family("recommender")
    test_pairs = _pairs(family.split(tables, protocol="random_n", n=2, seed=0)["test"])
    calls = []

    def fit_steps(params, train, context, every):
        calls.append(("train", _pairs(train)))
        yield from family.fit_steps(params, train, context, every)

    def fit(params, train, context):
        calls.append(("train", _pairs(train)))
        return family.fit(params, train, context)

    def evaluate(model, train, truth, context):
        calls.append(("truth", _pairs(truth)))
        return family.evaluate(model, train, truth, context)

    def evaluate_users(model, train, truth, context):
        calls.append(("truth", _pairs(truth)))
        return family.evaluate_users(model, train, truth, context)

    monkeypatch.setitem(FAMILIES, "recommender", dataclasses.replace(
        family, fit=fit, fit_steps=fit_steps, evaluate=evaluate, evaluate_users=evaluate_users))
    result = tune("recommender", tables, n_trials=3, protocol="random_n", n_holdout=2,
                  max_epochs=4, eval_every=2, n_resamples=100)
    touching = [i for i, (_, pairs) in enumerate(calls) if pairs & test_pairs]
    # the last six calls: two fits on train + validation, two scores and two per-user scores
    assert touching == list(range(len(calls) - 4, len(calls)))
    assert [kind for kind, _ in calls[-6:]] == ["train", "train"] + ["truth"] * 4
    assert all(pairs == test_pairs for _, pairs in calls[-4:])
    train_full = _pairs(tables["interactions"]) - test_pairs
    assert calls[-6][1] == calls[-5][1] == train_full
    trial_trains = [pairs for kind, pairs in calls[:-6] if kind == "train"]
    assert trial_trains and all(pairs < train_full for pairs in trial_trains)  # minus validation
    assert result.comparison.n_users == len({user for user, _ in test_pairs})
    assert result.best_params["epochs"] in (2, 4)
