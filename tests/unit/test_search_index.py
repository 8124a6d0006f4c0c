"Search engine: the tantivy index (typos, filters, category expansion, refresh, save/load), retrieval + ranker, and the retrieval/end-to-end metrics by hand."
import numpy as np
import pandas as pd
import pytest

from retail_workbench.core import ConfigError, DataError
from retail_workbench.data.synth import make_world
from retail_workbench.search.index import (
    ProductIndex, ProductSearch, known_item_queries, misspell, retrieval_recall, search_ndcg,
    titles_catalog,
)
from retail_workbench.search.rank import SearchRanker, split_log

CATALOG = pd.DataFrame({
    "item_id": ["A1", "A2", "B1", "B2", "C1", "C2"],
    "title": ["Organic green tea", "Black tea bags", "Espresso coffee beans", "Decaf coffee",
              "Ceramic tea mug", "Travel mug"],
    "category": ["Tea", "Tea", "Coffee", "Coffee", "Kitchen", "Kitchen"],
    "brand": ["Leafy", "Leafy", "Roast", "Roast", "Potter", "Potter"],
    "price": [4.0, 2.5, 9.0, 7.0, 12.0, 15.0],
})


@pytest.fixture(scope="module")
def index():
    return ProductIndex().fit(CATALOG)


def test_text_match_ranks_the_item_with_the_words_first(index):
    hits = index.search("green tea", k=6)
    assert hits.item_id.iloc[0] == "A1"
    assert set(hits.loc[hits.source == "text", "item_id"]) == {"A1", "A2", "C1"}   # the ones saying "tea"
    assert hits["rank"].tolist() == list(range(1, len(hits) + 1))
    assert hits.score.is_monotonic_decreasing


def test_stemming_and_typo_correction(index):
    assert index.search("mugs", k=2).item_id.tolist()[0] in {"C1", "C2"}      # stemmed
    assert index.correct("Espreso cofee") == "espresso coffee"                  # dropped letters
    assert index.correct("coffe teh") == "coffee teh"                           # short words are left alone
    assert index.search("espresos", k=1).item_id.tolist() == ["B1"]             # swapped letters
    strict = ProductIndex(correct_typos=False).fit(CATALOG)
    assert strict.search("espreso", k=1).empty


def test_category_expansion_brings_the_aisle_of_the_best_match(index):
    hits = index.search("espresso", k=4)
    assert hits.item_id.tolist()[:2] == ["B1", "B2"]                              # B2 only through its category
    assert hits.set_index("item_id").loc["B2", "source"] == "category"
    plain = ProductIndex(expand=0).fit(CATALOG).search("espresso", k=4)
    assert plain.item_id.tolist() == ["B1"]


def test_filters(index):
    assert set(index.search("tea", k=10, brand="LEAFY").item_id) == {"A1", "A2"}
    assert set(index.search("tea", k=10, max_price=3.0).item_id) == {"A2"}
    assert set(index.search("mug", k=10, category="kitchen", min_price=13).item_id) == {"C2"}


def test_bad_input(index):
    with pytest.raises(ConfigError, match="ask for 1 to 10,000"):
        index.search("tea", k=0)
    with pytest.raises(ConfigError, match="unknown field"):
        ProductIndex(boosts={"colour": 2.0}).fit(CATALOG)
    with pytest.raises(DataError, match="no active items"):
        ProductIndex().fit(CATALOG.assign(active=False))
    assert index.search("?!", k=5).empty


def test_refresh_applies_only_what_changed(index, tmp_path):
    live = ProductIndex().fit(CATALOG, path=tmp_path / "live")
    newer = pd.concat([CATALOG.drop(index=[5]).assign(title=lambda d: d.title.where(d.item_id != "A2", "Black tea leaves")),
                       pd.DataFrame({"item_id": ["D1"], "title": ["Matcha whisk"], "category": ["Tea"],
                                     "brand": ["Leafy"], "price": [6.0]})])
    assert live.refresh(newer) == {"added": 1, "updated": 1, "removed": 1, "items": 6}
    assert live.search("travel", k=5).empty                  # removed
    assert live.search("leaves", k=1).item_id.tolist() == ["A2"]
    assert live.search("matcha", k=1).item_id.tolist() == ["D1"]
    assert live.refresh(newer)["updated"] == 0


def test_save_and_load_without_reindexing(index, tmp_path):
    saved = index.save(tmp_path / "idx")
    assert sorted(p.name for p in saved.iterdir()) == ["items.parquet", "segments", "settings.json"]
    reopened = ProductIndex.load(saved)
    pd.testing.assert_frame_equal(reopened.search("tea mug", 6), index.search("tea mug", 6))
    index.save(saved)                                         # replacing an existing index works
    with pytest.raises(DataError, match="no search index"):
        ProductIndex.load(tmp_path / "nothing")


def test_metrics_by_hand():
    truth = pd.DataFrame({"query": ["q"] * 3 + ["r"], "item_id": [1, 2, 3, 9], "relevance": [3, 1, 0, 2]})
    results = pd.DataFrame({"query": ["q", "q", "q", "r"], "item_id": [2, 7, 1, 8], "rank": [1, 2, 3, 1]})
    # q: relevant {1, 2}, both within 3, one within 1 (item 2); r: item 9 never returned
    assert retrieval_recall(truth, results, n=3) == pytest.approx((1.0 + 0.0) / 2)
    assert retrieval_recall(truth, results, n=1) == pytest.approx((0.5 + 0.0) / 2)
    dcg_q = (2 ** 1 - 1) / np.log2(2) + 0 + (2 ** 3 - 1) / np.log2(4)
    idcg_q = (2 ** 3 - 1) / np.log2(2) + (2 ** 1 - 1) / np.log2(3)
    assert search_ndcg(truth, results, k=3) == pytest.approx((dcg_q / idcg_q + 0.0) / 2)
    with pytest.raises(DataError, match="rank"):
        search_ndcg(truth, results.drop(columns="rank"))


def test_known_item_queries_and_misspell():
    rng = np.random.default_rng(0)
    typo = misspell("chocolate biscuits", rng)
    assert typo != "chocolate biscuits" and len(typo.split()) == 2
    asked = known_item_queries(CATALOG, n=4, words=2, seed=0)
    assert len(asked) == 4 and (asked.relevance == 1).all()
    for query, item in zip(asked["query"], asked["item_id"]):
        title = CATALOG.set_index("item_id").loc[item, "title"].lower()
        assert all(w in title for w in query.split())
    with pytest.raises(DataError, match="no catalogue title"):
        known_item_queries(CATALOG, words=5)


def test_titles_catalog_from_order_lines():
    lines = pd.DataFrame({"item_id": ["x", "x", "y"], "title": ["OLD NAME", "NEW NAME", None],
                          "price": [1.0, 3.0, 2.0]})
    catalog = titles_catalog(lines)
    assert catalog.set_index("item_id").loc["x", "title"] == "NEW NAME"
    assert catalog.set_index("item_id").loc["x", "price"] == 2.0
    assert "y" not in set(catalog.item_id)


def test_end_to_end_search_reranks_and_keeps_new_items():
    world = make_world(n_users=600, n_items=120, n_days=120, seed=3)
    train, _ = split_log(world.search_impressions, 0.2)
    ranker = SearchRanker(n_estimators=30, random_state=0).fit(train, world.catalog)
    items = ProductIndex().fit(world.catalog).items_.reset_index()
    query = world.search_impressions["query"].iloc[0]
    newcomer = pd.DataFrame({"item_id": [10_000], "title": [query + " deluxe"], "category": [items.category.iloc[0]],
                             "brand": ["New"], "price": [1.0]})
    engine = ProductSearch(ProductIndex().fit(pd.concat([items, newcomer])), ranker, n_candidates=50)
    top = engine.search(query, k=50)
    assert 10_000 in set(top.item_id)                                   # retrieved though the ranker never saw it
    ranked = top[top.item_id != 10_000]
    assert ranked.score.is_monotonic_decreasing
    assert top.set_index("item_id").loc[10_000, "rank"] > ranked["rank"].max()
    pairs = pd.DataFrame({"query": query, "item_id": ranked.item_id})
    np.testing.assert_allclose(ranked.score, ranker.score(pairs))
    bm25 = ProductSearch(engine.index).search(query, k=10)
    assert (bm25["rank"] == bm25.retrieval_rank).all()
