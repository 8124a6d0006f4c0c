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


def _pairs(df):
    return set(zip(df["user_id"], df["item_id"]))


def test_random_n_split_holds_out_exactly_n_items_of_each_eligible_user(interactions):
    from retail_workbench.recsys.split import random_n_split
    train, test = random_n_split(interactions, n=3, random_state=0)
    items_per_user = interactions.groupby("user_id")["item_id"].nunique()
    eligible = set(items_per_user[items_per_user >= 4].index)
    held = test.groupby("user_id")["item_id"].nunique()
    assert set(held.index) == eligible and (held == 3).all()
    assert not _pairs(train) & _pairs(test)   # a repeat of a held-out pair never stays in train
    again, _ = random_n_split(interactions, n=3, random_state=0)
    assert again.index.equals(train.index)
    other, _ = random_n_split(interactions, n=3, random_state=1)
    assert not other.index.equals(train.index)


@pytest.mark.parametrize("protocol", ["chronological", "last_n", "random_n"])
def test_protocol_split_nested_twice_never_mixes_validation_and_test(protocol, interactions):
    from retail_workbench.recsys.split import protocol_split
    train_full, test = protocol_split(interactions, protocol, n=2, random_state=0)
    train, valid = protocol_split(train_full, protocol, n=2, random_state=1)
    assert not set(valid.index) & set(test.index) and not set(train.index) & set(test.index)
    assert len(train) + len(valid) + len(test) == len(interactions)
    if protocol == "chronological":
        assert train["ts"].max() <= valid["ts"].min() and valid["ts"].max() <= test["ts"].min()
    else:
        assert test.groupby("user_id").size().max() >= 2
        assert valid.groupby("user_id")["item_id"].nunique().max() == 2
    if protocol == "random_n":
        assert not _pairs(valid) & _pairs(test)
    with pytest.raises(ConfigError, match="unknown protocol"):
        protocol_split(interactions, "leave_one_out")
