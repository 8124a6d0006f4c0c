"""Market basket analysis on real data. (1) FP-growth time and peak memory on all of Online Retail
(UCI, 541,909 lines -> cleaned baskets) against mlxtend 0.25's `fpgrowth` and `apriori` on the
same baskets (one-hot bool frame), same min_support and max_len, with the itemset counts checked
equal. (2) The strongest rules by lift on Online Retail (items) and Complete Journey (products and
product categories). (3) The basket recommender against popularity and LightFM on the split of
bench_recommend_online_retail (chronological, train before 2011-10-01), NDCG@10 and recall@10.
Skipped when ../shared/data is absent; the mlxtend rows are skipped when it is not installed."""
import gc
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from _common import PeakMemory, record, timed
from retail_workbench.data.datasets import resolve_source
from retail_workbench.recsys.basket import (BasketRecommender, basket_lines, basket_rules,
                                            fpgrowth_itemsets, readable_rules)
from retail_workbench.recsys.recommend import (LightFMRecommender, PopularityRecommender,
                                               evaluate_models, recommender_tables)
from retail_workbench.recsys.split import chronological_split

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RETAIL = SHARED / "online_retail.parquet"
MIN_SUPPORT, MAX_LEN, K = 0.01, 3, 10
LIGHTFM = dict(no_components=32, epochs=20, learning_rate=0.05, loss="warp", random_state=0)


def _measure(fn, *args, **kwargs):
    gc.collect()
    with PeakMemory() as memory:
        seconds, result = timed(fn, *args, **kwargs)
    return seconds, memory.peak_mib, result


def _mlxtend_rows(baskets, ours):
    try:
        from mlxtend.frequent_patterns import apriori, fpgrowth
    except ImportError:
        print("mlxtend not installed: no baseline rows")
        return {}
    lines = baskets.lines
    rows, row_names = pd.factorize(lines["basket_id"])
    cols, col_names = pd.factorize(lines["item_id"])
    onehot = np.zeros((len(row_names), len(col_names)), dtype=bool)
    onehot[rows, cols] = True
    frame = pd.DataFrame(onehot, columns=col_names)
    found = {}
    for name, fn in (("mlxtend_fpgrowth", fpgrowth), ("mlxtend_apriori", apriori)):
        seconds, mib, result = _measure(fn, frame, min_support=MIN_SUPPORT, max_len=MAX_LEN)
        assert len(result) == len(ours), (name, len(result), len(ours))
        found[name] = (seconds, mib)
    return found


def speed(raw):
    seconds_clean, _, baskets = _measure(basket_lines, raw)
    seconds, mib, itemsets = _measure(fpgrowth_itemsets, baskets, MIN_SUPPORT, max_len=MAX_LEN)
    baseline = _mlxtend_rows(baskets, itemsets)
    values = {"baskets": baskets.n_baskets, "items": baskets.report["items"],
              "min_support": MIN_SUPPORT, "max_len": MAX_LEN, "itemsets": len(itemsets),
              "clean_s": round(seconds_clean, 2), "fpgrowth_s": round(seconds, 2),
              "fpgrowth_peak_mib": round(mib, 1)}
    for name, (other_s, other_mib) in baseline.items():
        values[f"{name}_s"] = round(other_s, 2)
        values[f"{name}_peak_mib"] = round(other_mib, 1)
        values[f"speedup_vs_{name}"] = round(other_s / seconds, 2)
        values[f"memory_ratio_vs_{name}"] = float(f"{mib / max(other_mib, 0.1):.3g}")
    record("basket_fpgrowth", **values)
    print("cleaning report:", baskets.report)


def top_rules(raw):
    rules, report = basket_rules(raw, min_support=MIN_SUPPORT, min_confidence=0.3, min_lift=2,
                                 top_n=3)
    titles = raw.drop_duplicates("StockCode").set_index("StockCode")["Description"]
    print(f"Online Retail: {report['rules']} rules kept of {report['itemsets']} itemsets")
    columns = ["antecedent", "consequent", "support", "confidence", "lift"]
    print(readable_rules(rules, titles)[columns].head(10).round(3).to_string())
    lines = pd.read_parquet(SHARED / "completejourney_transactions_sample.parquet")
    products = pd.read_parquet(SHARED / "completejourney_products.parquet")
    products["product_id"] = products["product_id"].astype("int64").astype(str)
    names = products.set_index("product_id")["product_type"]
    # a 75,000-line sample of 1.47M: most baskets hold one or two of its lines, so supports are low
    levels = {"products": (None, 0.0001), "categories":
              (products.set_index("product_id")["product_category"].dropna(), 0.0005)}
    for level, (categories, support) in levels.items():
        cj_rules, cj_report = basket_rules(lines, min_support=support, min_confidence=0.01,
                                           min_lift=1.5, top_n=3, item_categories=categories)
        print(f"Complete Journey {level}: {cj_report['baskets']:,} baskets, "
              f"{cj_report['rules']} rules (min_support {support})")
        shown = readable_rules(cj_rules, names if categories is None else None)
        print(shown[columns].head(10).round(4).to_string())
        record(f"basket_rules_complete_journey_{level}", baskets=cj_report["baskets"],
               rules=cj_report["rules"], top_lift=float(cj_rules["lift"].max())
               if len(cj_rules) else None)
    record("basket_rules_online_retail", rules=len(rules), top_lift=float(rules["lift"].max()))


def recommenders():
    tables = recommender_tables(resolve_source(str(RETAIL), tables=("interactions",),
                                               format="online_retail").tables)
    train, test = chronological_split(tables["interactions"], cut="2011-10-01")
    models = {"basket": BasketRecommender().fit(train),
              "basket_last_order": BasketRecommender(recent_orders=1).fit(train),
              "popularity": PopularityRecommender().fit(train),
              "lightfm": LightFMRecommender(**LIGHTFM).fit(train)}
    table = evaluate_models(models, train, test, k=K, metrics=["ndcg_at_k", "recall_at_k"])
    print(table.round(4).to_string())
    record("basket_recommender_online_retail",
           **{f"{m}_{c}": round(float(v), 4) for m, row in table.iterrows() for c, v in row.items()})


def main():
    if not RETAIL.exists():
        print(f"skipped: {RETAIL} not present")
        return
    raw = pd.read_parquet(RETAIL)
    parts = sys.argv[1:] or ["speed", "rules", "recommenders"]
    if "speed" in parts:
        speed(raw)
    if "rules" in parts:
        top_rules(raw)
    if "recommenders" in parts:
        recommenders()


if __name__ == "__main__":
    sys.exit(main())
