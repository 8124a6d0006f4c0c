"""Quality on real data: Online Retail (UCI), customers with ids, chronological split by invoice
date (train before 2011-10-01). LightFM (pure CF and hybrid with title words and price bands)
against popularity, item-kNN and random on the test users seen in training; hybrid against pure CF
on items first sold in the test period; the cold-start slice (new customers, first 3 lines).
Skipped when ../shared/data is absent."""
import sys
import time

import numpy as np

from _common import online_retail_recommender_tables, record
from retail_workbench.recsys.recommend import (ItemKNNRecommender, LightFMRecommender,
                                        PopularityRecommender, RandomRecommender,
                                        evaluate_cold_start, evaluate_models)
from retail_workbench.recsys.metrics import auc, evaluate_ranking
from retail_workbench.recsys.split import chronological_split

CUT, K = "2011-10-01", 10
PARAMS = dict(no_components=32, epochs=20, learning_rate=0.05, loss="warp", random_state=0)


def main():
    tables = online_retail_recommender_tables()
    if tables is None:
        return
    catalog = tables["catalog"]
    train, test = chronological_split(tables["interactions"], cut=CUT)
    fit_s = {}
    models = {}
    for name, model, kwargs in (
            ("lightfm", LightFMRecommender(**PARAMS), {}),
            ("lightfm_hybrid", LightFMRecommender(**PARAMS, title_words=True),
             {"catalog": catalog[catalog.item_id.isin(train.item_id)],
              "customers": tables["customers"]}),
            ("popularity", PopularityRecommender(), {}),
            ("popularity_30d", PopularityRecommender(window_days=30), {}),
            ("item_knn", ItemKNNRecommender(), {}),
            ("random", RandomRecommender(random_state=0), {})):
        started = time.perf_counter()
        models[name] = model.fit(train, **kwargs)
        fit_s[name] = round(time.perf_counter() - started, 1)
    table = evaluate_models(models, train, test, k=K,
                            metrics=["precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k",
                                     "hit_rate_at_k", "catalog_coverage"])
    print(table.round(4).to_string())
    cold = evaluate_cold_start({n: models[n] for n in ("lightfm", "lightfm_hybrid", "popularity",
                                                       "item_knn")},
                               train, test, n_history=3, k=K, customers=tables["customers"])
    print(cold.round(4).to_string())
    new_items = np.setdiff1d(test.item_id.unique(), train.item_id.unique())
    new_catalog = catalog[catalog.item_id.isin(new_items)]
    truth = test[test.item_id.isin(new_items) & test.user_id.isin(train.user_id)]
    users = truth.user_id.unique()
    unseen = {}
    for name in ("lightfm_hybrid", "lightfm"):
        model = models[name].add_items(new_catalog)
        recs = model.recommend(users, k=len(new_items), items=new_items)
        unseen[name] = {**evaluate_ranking(truth, recs, k=K, metrics=["ndcg_at_k", "recall_at_k"]),
                        "auc": auc(truth, recs)}
    record("bench_recommend_online_retail",
           train_rows=len(train), test_rows=len(test), cut=CUT, params=str(PARAMS),
           fit_seconds=str(fit_s),
           **{f"{m}_{c}": round(float(table.loc[m, c]), 4) for m in table.index
              for c in ("ndcg_at_10", "recall_at_10", "precision_at_10", "catalog_coverage")},
           ndcg_ratio_lightfm_vs_popularity=round(float(
               table.loc["lightfm", "ndcg_at_10"] / table.loc["popularity", "ndcg_at_10"]), 2),
           cold_users=int(cold["users"].iloc[0]) if len(cold) else 0,
           **{f"cold_{m}_ndcg_at_10": round(float(cold.loc[m, "ndcg_at_10"]), 4)
              for m in cold.index},
           new_items=len(new_items), new_item_users=len(users),
           **{f"new_items_{m}_{c}": round(float(v), 4) for m, row in unseen.items()
              for c, v in row.items()},
           new_items_ndcg_ratio_hybrid_vs_cf=round(
               unseen["lightfm_hybrid"]["ndcg_at_10"] / unseen["lightfm"]["ndcg_at_10"], 2))


if __name__ == "__main__":
    sys.exit(main())
