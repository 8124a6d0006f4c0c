"Recommenders: scikit-learn contract, quality against baselines, cold start and errors."
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from lightfm import LightFM
from sklearn.base import clone

from retail_workbench.core import ConfigError, DataError, NotFittedError, UnknownIdError
from retail_workbench.recsys.recommend import (ItemKNNRecommender, LightFMRecommender,
                                        PopularityRecommender, RandomRecommender,
                                        evaluate_models, recommender_tables)
from retail_workbench.data.datasets import resolve_source
from retail_workbench.recsys.metrics import evaluate_ranking
from retail_workbench.recsys.split import chronological_split, cold_user_split
from retail_workbench.data.synth import make_world


@pytest.fixture(scope="module")
def world():
    return make_world(n_users=600, n_items=100, n_days=100, seed=0)


@pytest.fixture(scope="module")
def split(world):
    return chronological_split(world.interactions, test_frac=0.25)


@pytest.fixture(scope="module")
def fitted(split):
    train, _ = split
    return LightFMRecommender(no_components=16, epochs=8, random_state=0).fit(train)


def test_hyperparameters_live_in_init_and_clone(fitted):
    params = fitted.get_params()
    assert params["epochs"] == 8 and params["loss"] == "warp" and params["num_threads"] == 1
    fresh = clone(fitted)
    assert not hasattr(fresh, "model_") and fresh.get_params() == params
    with pytest.raises(NotFittedError):
        fresh.recommend([1])


def test_same_seed_same_recommendations(split, fitted):
    train, test = split
    again = LightFMRecommender(no_components=16, epochs=8, random_state=0).fit(train)
    users = test.user_id[test.user_id.isin(train.user_id)].unique()[:50]
    pd.testing.assert_frame_equal(fitted.recommend(users), again.recommend(users))


def test_lightfm_beats_baselines_on_the_synthetic_world(split, fitted):
    train, test = split
    models = {"lightfm": fitted, "popularity": PopularityRecommender().fit(train),
              "random": RandomRecommender(random_state=0).fit(train)}
    table = evaluate_models(models, train, test, k=10)
    assert table.loc["lightfm", "ndcg_at_10"] > 1.1 * table.loc["popularity", "ndcg_at_10"]
    assert table.loc["lightfm", "recall_at_10"] > table.loc["popularity", "recall_at_10"]
    assert table.loc["popularity", "ndcg_at_10"] > 2 * table.loc["random", "ndcg_at_10"]


def test_wrapper_reproduces_raw_lightfm_exactly(split):
    train, _ = split
    ones = {event: 1.0 for event in ("view", "click", "add_to_cart", "order", "rating")}
    ours = LightFMRecommender(epochs=3, random_state=3, event_weights=ones).fit(train)
    raw = LightFM(loss="warp", learning_rate=0.05, random_state=3)
    raw.fit(ours.seen_.tocoo(), epochs=3, num_threads=1)
    np.testing.assert_array_equal(raw.item_embeddings, ours.model_.item_embeddings)
    np.testing.assert_array_equal(raw.user_biases, ours.model_.user_biases)
    users = np.arange(10)
    predicted = raw.predict(np.repeat(users, ours.seen_.shape[1]),
                            np.tile(np.arange(ours.seen_.shape[1]), len(users)))
    scores = ours._score(users, ours.seen_[users], None).ravel()
    np.testing.assert_allclose(scores, predicted, atol=1e-5)


def test_recommend_frame_and_seen_items(split, fitted):
    train, _ = split
    user = train.user_id.iloc[0]
    recs = fitted.recommend([user], k=5)
    assert list(recs.columns) == ["user_id", "item_id", "score", "rank"]
    assert recs["rank"].tolist() == [1, 2, 3, 4, 5]
    assert recs.score.is_monotonic_decreasing
    assert not set(recs.item_id) & set(train.item_id[train.user_id == user])
    with_seen = fitted.recommend([user], k=len(fitted.item_index_), exclude_seen=False)
    assert len(with_seen) == len(fitted.item_index_)


def test_event_weights_change_the_model_and_unknown_events_fail(split):
    train, _ = split
    default = LightFMRecommender(epochs=2, random_state=0).fit(train)
    orders_only = LightFMRecommender(epochs=2, random_state=0, event_weights={
        "view": 0.01, "click": 0.01, "add_to_cart": 0.01, "order": 1.0, "rating": 1.0}).fit(train)
    assert not np.allclose(default.item_embeddings_, orders_only.item_embeddings_)
    with pytest.raises(DataError, match="without a weight"):
        LightFMRecommender(epochs=1, event_weights={"order": 1.0}).fit(train)


def test_string_and_integer_ids_give_the_same_lists(split):
    train, _ = split
    small = train.head(3000)
    # zero-padded labels sort like the integers, so both runs see the same index order
    as_text = small.assign(user_id=small.user_id.map("u{:06d}".format),
                           item_id=small.item_id.map("i{:06d}".format))
    a = LightFMRecommender(epochs=2, random_state=0).fit(small).recommend(small.user_id[:5])
    b = LightFMRecommender(epochs=2, random_state=0).fit(as_text).recommend(as_text.user_id[:5])
    assert a.item_id.map("i{:06d}".format).tolist() == b.item_id.tolist()
    np.testing.assert_allclose(a.score, b.score)


def test_cold_start_users_from_events_beat_random(split, fitted):
    train, test = split
    history, holdout = cold_user_split(train, test, n_history=5)
    users = holdout.user_id.unique()
    assert len(users) >= 10
    folded = evaluate_ranking(holdout, fitted.recommend(users, interactions=history), k=10,
                              metrics=["ndcg_at_k"])
    random = evaluate_ranking(holdout, RandomRecommender(random_state=0).fit(train).recommend(
        users, interactions=history), k=10, metrics=["ndcg_at_k"])
    assert folded["ndcg_at_10"] > 2 * random["ndcg_at_10"]
    recs = fitted.recommend(users[:1], interactions=history)
    assert not set(recs.item_id) & set(history.item_id[history.user_id == users[0]])


def test_cold_start_users_from_attributes_and_new_items(world, split):
    train, _ = split
    items = world.catalog.item_id.unique()
    old_items, new_items = items[:80], items[80:]
    model = LightFMRecommender(no_components=8, epochs=3, random_state=0)
    model.fit(train[train.item_id.isin(old_items)],
              catalog=world.catalog[world.catalog.item_id.isin(old_items)],
              customers=world.customers)
    newcomer = pd.DataFrame({"user_id": ["new-east", "new-west"], "region": ["east", "west"]})
    recs = model.recommend(["new-east", "new-west"], k=5, customers=newcomer)
    assert len(recs) == 10
    with pytest.raises(UnknownIdError, match="customers="):
        model.recommend(["nobody"])
    model.add_items(world.catalog[world.catalog.item_id.isin(new_items)])
    user = train.user_id.iloc[0]
    fresh = model.recommend([user], k=5, items=new_items)
    assert set(fresh.item_id) <= set(new_items) and len(fresh) == 5
    assert fresh.score.nunique() > 1   # ranked from features, not all tied


def test_unknown_ids_and_bad_settings_fail_clearly(fitted):
    with pytest.raises(UnknownIdError, match="not seen in training"):
        fitted.recommend(["ghost"])
    with pytest.raises(UnknownIdError, match="candidate item ids"):
        fitted.recommend([fitted.user_index_[0]], items=["no-item"])
    with pytest.raises(UnknownIdError, match="unknown item ids"):
        fitted.similar_items(["no-item"])
    with pytest.raises(ConfigError, match="loss must be one of"):
        LightFMRecommender(loss="hinge").fit(pd.DataFrame({"user_id": [1], "item_id": [2]}))
    with pytest.raises(ConfigError, match="positive"):
        fitted.recommend([fitted.user_index_[0]], k=0)


def test_baselines_share_the_interface(split):
    train, test = split
    users = test.user_id.unique()[:20]
    for model in (PopularityRecommender(window_days=14), ItemKNNRecommender(n_neighbors=20),
                  RandomRecommender(random_state=1)):
        recs = model.fit(train).recommend(users[users.isin(train.user_id)] if hasattr(users, "isin")
                                          else [u for u in users if u in set(train.user_id)], k=7)
        assert list(recs.columns) == ["user_id", "item_id", "score", "rank"]
        assert recs.groupby("user_id").size().max() == 7
    popular = PopularityRecommender().fit(train)
    assert len(popular.recommend(["never-seen"], k=3)) == 3   # needs no history
    knn = ItemKNNRecommender().fit(train)
    item = train.item_id.iloc[0]
    similar = knn.similar_items([item], k=5)
    assert item not in set(similar.similar_item_id) and similar.score.is_monotonic_decreasing


def test_recommender_tables_from_the_online_retail_fixture():
    from pathlib import Path
    fixture = Path(__file__).parents[1] / "fixtures" / "online_retail" / "online_retail_sample.csv"
    source = resolve_source(str(fixture), tables=("interactions",), optional=("customers",),
                            format="online_retail")
    tables = recommender_tables(source.tables)
    interactions = tables["interactions"]
    assert interactions.user_id.notna().all()
    assert not interactions.item_id.isin(["POST", "DOT", "M"]).any()
    assert set(tables["catalog"].item_id) >= set(interactions.item_id)


def test_recommender_tables_from_snapshot_ids(world):
    "Side tables come from the ids given, never from whatever is latest in the store."
    from retail_workbench.data.store import SnapshotStore
    store = SnapshotStore()
    snap = store.write(world.interactions.head(500), table="interactions", source="synthetic")
    old_catalog = store.write(world.catalog, table="catalog", source="synthetic")
    store.write(world.catalog.head(5), table="catalog", source="a later ingest")  # now latest
    source = resolve_source({"interactions": snap.id, "catalog": old_catalog.id},
                            tables=("interactions",), optional=("catalog", "customers"))
    tables = recommender_tables(source.tables)
    assert len(tables["interactions"]) == 500
    assert len(tables["catalog"]) == len(world.catalog) and tables["customers"] is None
    assert source.snapshot_ids == {"interactions": snap.id, "catalog": old_catalog.id}
