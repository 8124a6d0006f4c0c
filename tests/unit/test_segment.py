"Segmentation: order lines, customer features, choosing k, names, recovery of true segments."
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from retail_workbench.core import ConfigError, DataError, NotFittedError, SchemaError
from retail_workbench.customers.segment import (
    BEHAVIOUR_FEATURES, CustomerSegmenter, choose_k, customer_features, name_segments,
    segment_stability,
)
from retail_workbench.data.datasets import (example_order_lines, order_lines_from_cdnow,
                                            order_lines_from_interactions)

CDNOW = "tests/fixtures/segment_customers/cdnow_customers.parquet"
RETAIL = "tests/fixtures/segment_customers/online_retail_customers.parquet"


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    centers = ([0, 0], [5, 0], [0, 5], [5, 5])
    return np.vstack([rng.normal(c, 0.4, (50, 2)) for c in centers])


def test_choose_k_finds_four_blobs():
    scores = choose_k(_blobs(), (2, 7), random_state=0)
    for column in ("best_silhouette", "best_davies_bouldin", "elbow"):
        assert scores.loc[scores[column], "k"].item() == 4
    with pytest.raises(ConfigError, match="k_range"):
        choose_k(_blobs(), (1, 3))


def test_rfm_by_hand():
    lines = pd.DataFrame({
        "user_id": ["a", "a", "a", "b"], "order_id": [1, 1, 2, 3],
        "ts": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-10", "2024-01-05"]),
        "quantity": [2.0, 1.0, 1.0, 4.0], "amount": [20.0, 5.0, -10.0, 8.0],
        "is_return": [False, False, True, False]})
    features = customer_features(lines, as_of="2024-01-11")
    assert features.loc["a", "recency_days"] == 10      # the return is not a purchase
    assert features.loc["a", "monetary"] == 15.0        # 20 + 5 - 10
    assert features.loc["a", "basket_size"] == 3.0
    assert features.loc["b", "avg_unit_price"] == 2.0
    assert features.loc["a", "return_rate"] == pytest.approx(1 / 3)
    with pytest.raises(SchemaError, match="order_id"):
        customer_features(lines.drop(columns="order_id"))


def test_cdnow_and_online_retail_sources():
    lines, _, truth = example_order_lines("cdnow", CDNOW)
    cdnow = customer_features(lines)
    assert truth is None and len(cdnow) == 2000
    raw = pd.read_parquet(CDNOW)
    assert cdnow["monetary"].sum() == pytest.approx(raw["dollar_value"].sum())
    retail = customer_features(example_order_lines("online_retail", RETAIL)[0])
    assert 330 < len(retail) <= 350 and (retail["return_rate"] > 0).any()
    with pytest.raises(DataError, match="yyyymmdd"):
        order_lines_from_cdnow(raw.assign(date="Jan 1997"))


def test_order_lines_need_prices():
    interactions = pd.DataFrame({"user_id": [1], "item_id": [1], "ts": [pd.Timestamp("2024-01-01")],
                                 "event": ["order"], "session_id": [1], "value": [1.0]})
    with pytest.raises(SchemaError, match="catalog"):
        order_lines_from_interactions(interactions)


def test_names_are_readable_and_unique():
    overall = pd.Series({"recency_days": 30.0, "frequency": 4.0, "monetary": 200.0,
                         "avg_unit_price": 5.0, "tenure_days": 300.0})
    profiles = pd.DataFrame({"recency_days": [200.0, 210.0, 5.0], "frequency": [1.0, 1.0, 12.0],
                             "monetary": [20.0, 400.0, 900.0], "avg_unit_price": [5.0, 5.0, 6.0],
                             "tenure_days": [300.0, 300.0, 300.0]})
    names = name_segments(profiles, overall)
    assert names.is_unique
    assert names[2] == "loyal high spenders" and names[0].startswith("lapsed")


@pytest.mark.slow
def test_recovers_synthetic_segments_and_assigns_new_customers():
    lines, interactions, truth = example_order_lines("synthetic", n_users=1000, seed=3)
    features = customer_features(lines, interactions)
    truth = truth.reindex(features.index)
    segmenter = CustomerSegmenter(n_clusters=5, features=BEHAVIOUR_FEATURES,
                                  random_state=0).fit(features)
    assert adjusted_rand_score(truth, segmenter.labels_) > 0.35
    shuffled = features.sample(frac=1.0, random_state=1)
    assert (segmenter.predict(shuffled) == segmenter.predict(features).reindex(shuffled.index)).all()
    assert segment_stability(segmenter, features, seeds=(0, 1, 2)) > 0.6
    with pytest.raises(NotFittedError):
        CustomerSegmenter().predict(features)
    with pytest.raises(DataError, match="frequency"):
        segmenter.predict(features.assign(frequency=np.nan).iloc[:3])
