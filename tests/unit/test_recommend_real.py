"""Online Retail (real data, skipped without ../shared/data): LightFM against popularity, the
wrapper against raw LightFM, and the hybrid model against pure CF on items new in the test period.
Chronological split by invoice date: train before 2011-10-01, test from then on."""
import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from lightfm import LightFM
from lightfm.evaluation import auc_score, precision_at_k

from retail_workbench.recsys.recommend import (LightFMRecommender, PopularityRecommender,
                                        evaluate_models, recommender_tables)
from retail_workbench.data.datasets import resolve_source
from retail_workbench.recsys.metrics import auc, evaluate_ranking
from retail_workbench.recsys.metrics import precision_at_k as our_precision
from retail_workbench.recsys.split import chronological_split

CUT = "2011-10-01"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def retail(shared_data_module):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RWB_PROGRESS", "0")
        source = resolve_source(str(shared_data_module / "online_retail.parquet"),
                                tables=("interactions",), optional=("catalog", "customers"),
                                format="online_retail")
        tables = recommender_tables(source.tables)
        train, test = chronological_split(tables["interactions"], cut=CUT)
        # LightFM's MovieLens example settings: warp, learning rate 0.05, 10 epochs, 10 components
        model = LightFMRecommender(loss="warp", learning_rate=0.05, epochs=10, no_components=10,
                                   random_state=0, num_threads=1).fit(train)
    return tables, train, test, model


@pytest.fixture(scope="module")
def shared_data_module():
    "Module-scoped twin of conftest's `shared_data` (the data is read once for all tests here)."
    folder = Path(__file__).resolve().parents[3] / "shared" / "data"
    if not folder.exists():
        pytest.skip("../shared/data is not present")
    return folder


def test_lightfm_beats_popularity_on_online_retail(retail):
    _, train, test, model = retail
    table = evaluate_models({"lightfm": model, "popularity": PopularityRecommender().fit(train)},
                            train, test, k=10, metrics=["ndcg_at_k", "recall_at_k"])
    print("\n", table)
    assert table.loc["lightfm", "ndcg_at_10"] > 1.2 * table.loc["popularity", "ndcg_at_10"]
    assert table.loc["lightfm", "recall_at_10"] > 1.2 * table.loc["popularity", "recall_at_10"]


def test_wrapper_matches_raw_lightfm_and_its_evaluation(retail):
    _, train, test, model = retail
    assert (model.seen_.data == 1).all()     # Online Retail has orders only: every weight is 1
    raw = LightFM(loss="warp", learning_rate=0.05, no_components=10, random_state=0)
    raw.fit(model.seen_.tocoo(), epochs=10, num_threads=1)
    np.testing.assert_array_equal(raw.item_embeddings, model.model_.item_embeddings)
    known = test[test.user_id.isin(model.user_index_) & test.item_id.isin(model.item_index_)]
    # LightFM's evaluation refuses test pairs also in train (repeat purchases): drop them
    pairs = known.user_id.astype(str) + "|" + known.item_id.astype(str)
    bought_before = set(train.user_id.astype(str) + "|" + train.item_id.astype(str))
    known = known[~pairs.isin(bought_before).to_numpy()]
    rows = model.user_index_.get_indexer(known.user_id)
    cols = model.item_index_.get_indexer(known.item_id)
    test_matrix = sp.csr_matrix((np.ones(len(known), np.float32), (rows, cols)),
                                shape=model.seen_.shape)
    test_matrix.data[:] = 1
    theirs_p = precision_at_k(raw, test_matrix, model.seen_, k=10, preserve_rows=True)
    theirs_auc = auc_score(raw, test_matrix, model.seen_, preserve_rows=True)
    users = pd.unique(known.user_id)
    ours_p = our_precision(known, model.recommend(users, k=10), k=10)
    sample = users[:300]
    full = model.recommend(sample, k=len(model.item_index_))
    ours_auc = auc(known[known.user_id.isin(sample)], full)
    codes = model.user_index_.get_indexer(users)
    print(f"\nprecision@10 lightfm {theirs_p[codes].mean():.5f} ours {ours_p:.5f}; "
          f"AUC (300 users) lightfm {theirs_auc[codes[:300]].mean():.5f} ours {ours_auc:.5f}")
    assert ours_p == pytest.approx(theirs_p[codes].mean(), abs=1e-6)
    assert ours_auc == pytest.approx(theirs_auc[codes[:300]].mean(), abs=2e-3)


def test_hybrid_beats_pure_cf_on_items_unseen_in_training(retail):
    tables, train, test, model = retail
    catalog = tables["catalog"]
    new_items = np.setdiff1d(test.item_id.unique(), train.item_id.unique())
    hybrid = LightFMRecommender(no_components=10, epochs=10, random_state=0, title_words=True)
    hybrid.fit(train, catalog=catalog[catalog.item_id.isin(train.item_id)])
    hybrid.add_items(catalog[catalog.item_id.isin(new_items)])
    cf = copy.deepcopy(model)   # the pure-CF model of the fixture, left unchanged for others
    cf.add_items(catalog[catalog.item_id.isin(new_items)])   # no features: the average item
    truth = test[test.item_id.isin(new_items) & test.user_id.isin(train.user_id)]
    users = truth.user_id.unique()
    scores = {}
    for name, m in (("hybrid", hybrid), ("pure_cf", cf)):
        recs = m.recommend(users, k=len(new_items), items=new_items)
        scores[name] = {**evaluate_ranking(truth, recs, k=10, metrics=["ndcg_at_k", "recall_at_k"]),
                        "auc": auc(truth, recs)}
    print(f"\n{len(new_items)} new items, {len(users)} users:", scores)
    assert scores["hybrid"]["ndcg_at_10"] > 2 * scores["pure_cf"]["ndcg_at_10"]
    assert scores["hybrid"]["auc"] > scores["pure_cf"]["auc"] + 0.05
