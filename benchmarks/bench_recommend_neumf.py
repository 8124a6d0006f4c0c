"""NeuMF on real data, under the paper's protocol and ours: Online Retail (UCI) and the Complete
Journey sample (../shared/data). Leave-one-out on distinct user-item pairs (each user's latest new
item held out); HR@10 / NDCG@10 of the held-out item among 100 sampled unseen items (He et al.
2017) next to full-catalogue hit rate / NDCG@10 / recall@10. Models: NeuMF, its GMF-only and
MLP-only ablations, NeuMF from pre-trained branches, LightFM (WARP), item-kNN, popularity.
Baseline of the ratios: LightFM in the same run. Also NeuMF's fit time per epoch, ONNX parity on
every test user, and one-user top-10 latency of the NeuMF and LightFM ONNX graphs.
BENCH_NEUMF_PRETRAIN=1 adds NeuMF from pre-trained GMF and MLP. Skipped when ../shared/data is absent. `python benchmarks/bench_recommend_neumf.py online_retail`
runs one dataset."""
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import record
from retail_workbench.data.datasets import resolve_source
from retail_workbench.ops.neumf import neumf_parity, neumf_to_onnx
from retail_workbench.ops.onnx import OnnxScorer, recommender_to_onnx
from retail_workbench.recsys.neumf import NeuMFRecommender, compare_protocols, leave_one_out
from retail_workbench.recsys.recommend import (ItemKNNRecommender, LightFMRecommender,
                                               PopularityRecommender, recommender_tables)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = {"online_retail": (DATA / "online_retail.parquet", "online_retail"),
           "complete_journey": (DATA, "complete_journey")}
NEUMF = dict(factors=16, negatives=4, epochs=20, batch_size=1024, learning_rate=0.002,
             patience=3, random_state=0)
LIGHTFM = dict(no_components=32, epochs=20, learning_rate=0.05, loss="warp", random_state=0)


def models() -> dict:
    chosen = {"neumf": NeuMFRecommender(**NEUMF),
              "gmf": NeuMFRecommender("gmf", **NEUMF),
              "mlp": NeuMFRecommender("mlp", **NEUMF),
              "lightfm": LightFMRecommender(**LIGHTFM),
              "item_knn": ItemKNNRecommender(),
              "popularity": PopularityRecommender()}
    if os.environ.get("BENCH_NEUMF_PRETRAIN") == "1":   # three fits in one: off by default
        chosen["neumf_pretrained"] = NeuMFRecommender(**{**NEUMF, "epochs": 10}, pretrain=True)
    return chosen


def one_user_latency(scorer: OnnxScorer, history: np.ndarray, users: np.ndarray,
                     n_features: int) -> float:
    "Median milliseconds of one top-10 call of a top-k graph for one user."
    times = []
    for user in users:
        feeds = {"user_index": np.array([user], np.int64),
                 "user_features": np.zeros((1, n_features), np.float32),
                 "history": history[user:user + 1], "k": np.array([10], np.int64)}
        started = time.perf_counter()
        scorer.run(feeds)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def run(name: str):
    path, loader = SOURCES[name]
    tables = recommender_tables(resolve_source(str(path), tables=("interactions",),
                                               optional=("catalog", "customers"),
                                               format=loader).tables)
    interactions = tables["interactions"]
    fitted, rows = {}, []
    for model_name, model in models().items():    # one at a time, to show progress
        rows.append(compare_protocols({model_name: model}, interactions, n_negatives=100, k=10,
                                      fitted=fitted))
        print(rows[-1].round(4).to_string(header=len(rows) == 1), flush=True)
    table = pd.concat(rows)
    for model_name, model in fitted.items():
        history = pd.DataFrame(getattr(model, "history_", []))
        table.loc[model_name, "epochs_run"] = len(history) if len(history) else np.nan
        table.loc[model_name, "seconds_per_epoch"] = (round(history["seconds"].mean(), 2)
                                                      if len(history) else np.nan)
    train, test = leave_one_out(interactions)
    print(f"\n{name}: {len(train)} train pairs, {len(test)} held-out users, "
          f"{train.item_id.nunique()} items")
    print(table.round(4).to_string())
    for column in ("sampled_ndcg_at_10", "full_ndcg_at_10"):
        print(f"  best on {column}: {table[column].astype(float).idxmax()}")

    neumf, lightfm = fitted["neumf"], fitted["lightfm"]
    users = test.user_id[test.user_id.isin(neumf.user_index_)].unique()
    parity = neumf_parity(neumf, users, k=10)
    print("  ONNX parity:", parity)
    rng = np.random.default_rng(0)
    sample = rng.choice(len(neumf.user_index_), size=min(200, len(neumf.user_index_)),
                        replace=False)
    neumf_ms = one_user_latency(OnnxScorer(neumf_to_onnx(neumf)),
                                neumf.seen_.toarray().astype(np.float32), sample, 1)
    lightfm_graph = recommender_to_onnx(lightfm)
    n_features = [i for i in lightfm_graph.graph.input if i.name == "user_features"][0]
    n_features = n_features.type.tensor_type.shape.dim[1].dim_value
    lightfm_ms = one_user_latency(OnnxScorer(lightfm_graph),
                                  lightfm.seen_.toarray().astype(np.float32),
                                  sample[sample < len(lightfm.user_index_)], n_features)
    print(f"  one-user top-10 ONNX latency: neumf {neumf_ms:.3f} ms, lightfm {lightfm_ms:.3f} ms")

    def ratio(model_name, column):
        return round(float(table.loc[model_name, column] / table.loc["lightfm", column]), 3)

    record("bench_recommend_neumf", data=name, train_pairs=len(train), test_users=len(test),
           items=int(train.item_id.nunique()), neumf=str(NEUMF), lightfm=str(LIGHTFM),
           **{f"{m}_{c}": round(float(table.loc[m, c]), 4) for m in table.index
              for c in ("sampled_hr_at_10", "sampled_ndcg_at_10", "full_hit_rate_at_10",
                        "full_ndcg_at_10", "fit_seconds", "seconds_per_epoch")
              if pd.notna(table.loc[m, c])},
           **{f"sampled_ndcg_ratio_{m}_vs_lightfm": ratio(m, "sampled_ndcg_at_10")
              for m in table.index if m != "lightfm"},
           **{f"full_ndcg_ratio_{m}_vs_lightfm": ratio(m, "full_ndcg_at_10")
              for m in table.index if m != "lightfm"},
           best_sampled=table["sampled_ndcg_at_10"].astype(float).idxmax(),
           best_full=table["full_ndcg_at_10"].astype(float).idxmax(),
           onnx_topk_max_abs_diff=parity["topk_max_abs_diff"],
           onnx_topk_same_items=parity["topk_same_items"],
           onnx_pair_max_abs_diff=parity["pair_max_abs_diff"], onnx_parity_users=parity["users"],
           latency_ms_neumf=round(neumf_ms, 3), latency_ms_lightfm=round(lightfm_ms, 3),
           latency_ratio_neumf_vs_lightfm=round(neumf_ms / lightfm_ms, 2))


def main(names):
    if not DATA.exists():
        print(f"skipped: {DATA} not present")
        return
    for name in names or list(SOURCES):
        run(name)


if __name__ == "__main__":
    main(sys.argv[1:])
