"Splitters: partitions, no leakage across the cut, per-user guarantees."
import pandas as pd
import pytest

from retail_workbench.core import ConfigError, SchemaError
from retail_workbench.recsys.split import (SPLITTERS, chronological_split, cold_user_split,
                                              last_n_split, stratified_split)
from retail_workbench.data.synth import make_world


@pytest.fixture(scope="module")
def interactions():
    return make_world(n_users=300, n_items=60, n_days=60, seed=1).interactions


@pytest.mark.parametrize("name", sorted(SPLITTERS))
def test_every_splitter_partitions_the_rows(name, interactions):
    train, test = SPLITTERS[name](interactions)
    assert len(train) + len(test) == len(interactions)
    assert not set(train.index) & set(test.index)
    assert len(test) > 0 and len(train) > 0


def test_chronological_split_has_no_test_row_before_the_cut(interactions):
    cut = pd.Timestamp("2023-02-10")
    train, test = chronological_split(interactions, cut=cut)
    assert test.ts.min() >= cut > train.ts.max()
    train, test = chronological_split(interactions, test_frac=0.25)
    assert test.ts.min() >= train.ts.max()
    assert abs(len(test) / len(interactions) - 0.25) < 0.02


def test_last_n_split_holds_out_each_users_latest(interactions):
    train, test = last_n_split(interactions, n=2)
    assert (test.groupby("user_id").size() == 2).all()
    latest_train = train.groupby("user_id").ts.max()
    assert (test.ts.to_numpy() >= latest_train.reindex(test.user_id).to_numpy()).all()


def test_stratified_split_keeps_every_user_in_train(interactions):
    train, test = stratified_split(interactions, test_frac=0.3, random_state=0)
    assert set(train.user_id) == set(interactions.user_id)
    share = test.groupby("user_id").size() / interactions.groupby("user_id").size()
    assert share.dropna().between(0, 0.5).all()


def test_cold_user_split_gives_first_events_of_new_users(interactions):
    train, test = chronological_split(interactions, test_frac=0.3)
    history, holdout = cold_user_split(train, test, n_history=3)
    assert not set(history.user_id) & set(train.user_id)
    assert (history.groupby("user_id").size() <= 3).all()
    last_history = history.groupby("user_id").ts.max()
    first_holdout = holdout.groupby("user_id").ts.min().reindex(last_history.index)
    assert len(last_history) > 0
    assert (last_history.to_numpy() <= first_holdout.to_numpy()).all()


def test_bad_arguments_are_named(interactions):
    with pytest.raises(SchemaError, match="'ts'"):
        chronological_split(interactions.drop(columns="ts"))
    with pytest.raises(ConfigError, match="between 0 and 1"):
        stratified_split(interactions, test_frac=0)
