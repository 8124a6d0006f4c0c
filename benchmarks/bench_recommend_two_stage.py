"""Two-stage recommendation on real data: Online Retail (UCI), customers with ids, a later-window
split (train before 2011-10-01, test after). Stage 1 is LightFM, item-kNN and 30-day popularity
(100 candidates each per user); stage 2 a LightGBM purchase classifier trained on the last 30 days
of the training period (features as of 2011-09-01). The two-stage model against each generator
alone on NDCG@10 of the test users seen in training (the issue's must-show), the recall of the
candidate stage, the ONNX re-ranker's parity with the booster, and one-user top-10 latency next to
LightFM's (Python and ONNX). Skipped when ../shared/data is absent."""
import sys
import time

import numpy as np
import pandas as pd

from _common import online_retail_recommender_tables, record, timed
from retail_workbench.recsys.recommend import (ItemKNNRecommender, LightFMRecommender,
                                               PopularityRecommender)
from retail_workbench.recsys.split import chronological_split
from retail_workbench.recsys.two_stage import TwoStageRecommender, evaluate_two_stage

CUT, K = "2011-10-01", 10
LIGHTFM = dict(no_components=32, epochs=20, learning_rate=0.05, loss="warp", random_state=0)


def last_word_category(catalog: pd.DataFrame) -> pd.DataFrame:
    "Online Retail has no category: the last word of the description (BAG, MUG, HOLDER...) stands in."
    words = catalog["title"].fillna("").astype(str).str.upper().str.findall(r"[A-Z]{3,}")
    return catalog.assign(category=words.str[-1])


def main():
    tables = online_retail_recommender_tables()
    if tables is None:
        return
    interactions = tables["interactions"]
    catalog = last_word_category(tables["catalog"])
    train, test = chronological_split(interactions, cut=CUT)
    generators = [("lightfm", LightFMRecommender(**LIGHTFM)), ("item_knn", ItemKNNRecommender()),
                  ("popular_30d", PopularityRecommender(window_days=30))]
    model = TwoStageRecommender(generators, n_candidates=100, label_days=30,
                                max_train_users=int(sys.argv[1]) if len(sys.argv) > 1 else 3000,
                                random_state=0)
    started = time.perf_counter()
    model.fit(train, catalog)
    fit_s = time.perf_counter() - started
    table = evaluate_two_stage(model, train, test, k=K)
    print(table.round(4).to_string())
    best = table.drop(index="two_stage")["ndcg_at_10"].idxmax()
    importance = pd.Series(model.model_.booster_.feature_importance("gain"),
                           index=model.feature_names_).sort_values(ascending=False)
    print((importance / importance.sum()).round(3).head(12).to_string())
    extra = {}
    try:
        extra = onnx_and_latency(model, train)
    except ImportError as err:
        print(f"ONNX part skipped: {err}")
    record("bench_recommend_two_stage", cut=CUT, train_rows=len(train), test_rows=len(test),
           fit_seconds=round(fit_s, 1), train_candidates=model.train_rows_,
           train_positives=model.train_positives_, train_users=model.train_users_,
           candidate_recall=round(model.candidate_recall_, 4),
           **{f"{m}_ndcg_at_10": round(float(table.loc[m, "ndcg_at_10"]), 4) for m in table.index},
           **{f"{m}_recall_at_10": round(float(table.loc[m, "recall_at_10"]), 4)
              for m in table.index},
           best_generator=best,
           ndcg_ratio_two_stage_vs_best_generator=round(float(
               table.loc["two_stage", "ndcg_at_10"] / table.loc[best, "ndcg_at_10"]), 3),
           top_features=str(list(importance.index[:6])), **extra)


def onnx_and_latency(model, train) -> dict:
    from retail_workbench.ops.onnx import OnnxRecommender
    from retail_workbench.ops.two_stage import OnnxReRanker, reranker_parity
    scorer = OnnxReRanker.from_model(model)
    users = pd.unique(train.user_id)[:200]
    parity = reranker_parity(model, scorer, users)
    print("parity", parity)
    user = users[:1]
    lightfm = dict(model.generators_)["lightfm"]
    lightfm_onnx = OnnxRecommender.from_recommender(lightfm)
    seconds = {
        "lightfm_python": timed(lightfm.recommend, user, k=10, repeat=30)[0],
        "lightfm_onnx": timed(lightfm_onnx.recommend_batch, list(user), 10, repeat=30)[0],
        "two_stage_python": timed(model.recommend, user, k=10, repeat=30)[0],
        "two_stage_onnx_reranker": timed(model.recommend, user, k=10, scorer=scorer,
                                         repeat=30)[0],
    }
    X = model.candidates(user)[model.feature_names_].to_numpy(np.float32)
    seconds["reranker_booster_only"] = timed(model.model_.predict_proba, X, repeat=30)[0]
    seconds["reranker_onnx_only"] = timed(scorer.score, X, repeat=30)[0]
    ms = {f"latency_ms_{name}": round(1000 * s, 2) for name, s in seconds.items()}
    return {"onnx_max_abs_diff": parity["max_abs_diff"], "onnx_same_top10": parity["same_items"],
            "candidates_one_user": len(X), **ms,
            "latency_ratio_two_stage_vs_lightfm_python": round(
                seconds["two_stage_python"] / seconds["lightfm_python"], 1)}


if __name__ == "__main__":
    main()
