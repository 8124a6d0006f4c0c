"""Product search: retrieval recall and end-to-end NDCG, typo tolerance on real catalogues, and index
build time for 100,000 items.

- Synthetic world (true relevance): retrieval recall@100 of text match alone and with category
  expansion; end-to-end NDCG@10 of BM25 search alone (the baseline) and of BM25 candidates
  re-ranked by the learnt ranker, on clean and misspelt held-out queries.
- Real catalogues without a search log (Online Retail titles, Complete Journey products, from
  ../shared/data when present): known-item queries (two title words, clean or with one typo),
  recall@10/@100 with and without typo correction.
- 100,000 items (Complete Journey's 92,331 products, topped up with renamed copies): tantivy index
  build time against the bm25s feature index over the same titles (the baseline), and one-query
  top-100 latency of each.
"""
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import record, timed  # noqa: E402

from retail_workbench.core import ITEM_COL, QUERY_COL  # noqa: E402
from retail_workbench.data.synth import make_world  # noqa: E402
from retail_workbench.search.index import (  # noqa: E402
    ProductIndex, ProductSearch, known_item_queries, misspell, retrieval_recall, search_ndcg,
    titles_catalog,
)
from retail_workbench.search.rank import BM25Index, SearchRanker, split_log  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def synthetic():
    world = make_world(n_users=5000, n_items=1500, n_days=365, seed=0)
    train, test = split_log(world.search_impressions, 0.2)
    ranker = SearchRanker(random_state=0).fit(train, world.catalog)
    queries = pd.Series(test[QUERY_COL].unique()).sample(400, random_state=0).to_numpy()
    truth = world.truth.relevance[world.truth.relevance[QUERY_COL].isin(queries)]
    index, text_only = ProductIndex().fit(world.catalog), ProductIndex(expand=0).fit(world.catalog)
    rng = np.random.default_rng(0)
    typos = {q: misspell(q, rng, min_length=4) for q in queries}
    typo_truth = truth.assign(**{QUERY_COL: truth[QUERY_COL].map(typos)})
    bm25, ltr = ProductSearch(index), ProductSearch(index, ranker, n_candidates=100)
    values = {"items": int(len(index.items_)), "queries": len(queries)}
    for name, idx in (("text_only", text_only), ("text_category", index)):
        found = idx.search_many(queries, 100)
        for n in (10, 100):
            values[f"recall_at_{n}_{name}"] = round(retrieval_recall(truth, found, n), 4)
    started = time.perf_counter()
    values["ndcg_at_10_bm25_only"] = round(search_ndcg(truth, bm25.search_many(queries, 10)), 4)
    bm25_s = time.perf_counter() - started
    started = time.perf_counter()
    values["ndcg_at_10_bm25_ranker"] = round(search_ndcg(truth, ltr.search_many(queries, 10)), 4)
    ltr_s = time.perf_counter() - started
    misspelt = typo_truth[QUERY_COL].unique()
    values["ndcg_at_10_misspelt_bm25_ranker"] = round(search_ndcg(typo_truth, ltr.search_many(misspelt, 10)), 4)
    strict = ProductSearch(ProductIndex(correct_typos=False).fit(world.catalog), ranker)
    values["ndcg_at_10_misspelt_no_correction"] = round(search_ndcg(typo_truth, strict.search_many(misspelt, 10)), 4)
    values["ratio_ndcg_ranker_vs_bm25_only"] = round(values["ndcg_at_10_bm25_ranker"] / values["ndcg_at_10_bm25_only"], 3)
    values["ms_per_query_bm25_only"] = round(1000 * bm25_s / len(queries), 2)
    values["ms_per_query_bm25_ranker"] = round(1000 * ltr_s / len(queries), 2)
    record("bench_search_index_synthetic", **values)


def complete_journey_catalog() -> pd.DataFrame:
    products = pd.read_parquet(SHARED / "completejourney_products.parquet")
    title = products["product_type"].astype("string").str.strip()
    title = title.where(products["package_size"].isna(), title + " " + products["package_size"].astype("string"))
    return pd.DataFrame({ITEM_COL: products["product_id"].astype("int64"), "title": title,
                         "category": products["product_category"], "brand": products["brand"],
                         "price": 1.0}).dropna(subset=["title"])


def online_retail_catalog() -> pd.DataFrame:
    from retail_workbench.data.loaders import load_online_retail
    lines = load_online_retail(SHARED / "online_retail.parquet", customers=False)["interactions"]
    return titles_catalog(lines[~lines["is_non_product"]])


def real_catalogues():
    for name, catalog in (("online_retail", online_retail_catalog()),
                          ("complete_journey", complete_journey_catalog())):
        values = {"items": int(catalog[ITEM_COL].nunique())}
        fixed, strict = ProductIndex().fit(catalog), ProductIndex(correct_typos=False).fit(catalog)
        for label, share in (("clean", 0.0), ("misspelt", 1.0)):
            asked = known_item_queries(catalog, n=1000, typo_share=share, seed=1)
            for engine, idx in (("corrected", fixed), ("no_correction", strict)):
                found = idx.search_many(asked[QUERY_COL], 100)
                for n in (10, 100):
                    values[f"recall_at_{n}_{label}_{engine}"] = round(retrieval_recall(asked, found, n), 4)
        record(f"bench_search_index_{name}", **values)


def build_100k():
    catalog = complete_journey_catalog()
    extra = catalog.head(100_000 - len(catalog)).assign(**{ITEM_COL: lambda d: d[ITEM_COL] + 10**9})
    catalog = pd.concat([catalog, extra], ignore_index=True)
    tantivy_s, index = timed(lambda: ProductIndex().fit(catalog))
    bm25s_s, features = timed(lambda: BM25Index().fit(catalog[ITEM_COL], catalog["title"].fillna("")))
    queries = known_item_queries(catalog, n=200, seed=2)[QUERY_COL].tolist()

    def per_query_ms(fn):
        started = time.perf_counter()
        for q in queries:
            fn(q)
        return 1000 * (time.perf_counter() - started) / len(queries)

    tantivy_ms = per_query_ms(lambda q: index.search(q, 100))
    bm25s_ms = per_query_ms(lambda q: np.argpartition(-features.scores(q), 100)[:100])
    record("bench_search_index_build_100k", items=len(catalog),
           tantivy_build_s=round(tantivy_s, 2), bm25s_feature_index_build_s=round(bm25s_s, 2),
           ratio_build_tantivy_vs_bm25s=round(tantivy_s / bm25s_s, 2),
           tantivy_top100_ms=round(tantivy_ms, 2), bm25s_full_scores_top100_ms=round(bm25s_ms, 2),
           ratio_query_tantivy_vs_bm25s=round(tantivy_ms / bm25s_ms, 2))


def main():
    synthetic()
    if not SHARED.exists():
        print(f"{SHARED} not found: the real-catalogue parts are skipped")
        return
    real_catalogues()
    build_100k()


if __name__ == "__main__":
    main()
