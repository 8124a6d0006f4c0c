"""Every template in templates/ runs under papermill with its small parameters
(tests/templates/params/<template>.yaml), writes its metrics JSON beside the executed notebook, and
reports the headline numbers `EXPECTED` holds for those parameters."""
import json
from pathlib import Path

import papermill
import pytest
import yaml
from pytest import approx

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PARAMS = Path(__file__).parent / "params"
NAMES = sorted(p.stem for p in TEMPLATES.glob("*.ipynb"))
SMALL = {p.stem: yaml.safe_load(p.read_text()) or {} for p in PARAMS.glob("*.yaml")}

# Headline metrics of each template on its small parameters. The runs are seeded and repeat
# exactly, so the tolerances only absorb library and platform differences; each one is tight
# enough that the template's baseline (or a broken model) falls outside it. Counts, decisions and
# dates are exact. A change to a model or to the synthetic world that moves these numbers is a
# change to review: update the value here in the same commit, saying why.
EXPECTED = {
    "ab_test_analysis": {          # 20,000 users, simulated lift on revenue
        "srm_mismatch": False,
        "revenue_lift": approx(0.2135, rel=0.05),
        "revenue_significant": False,
    },
    "ct_export": {                 # a fresh workspace has no champion to export
        "n_exported": 0,
        "skipped": ["recommender: no champion"],
    },
    "ct_ingest": {
        "interactions_rows": 23830,
        "catalog_rows": 194,
        "sales_rows": 360,
    },
    "ct_train_register": {         # first version: promoted without a champion to beat
        "ndcg_at_10": approx(0.1663, rel=0.05),
        "promoted": True,
        "version": 1,
    },
    "ct_validate": {
        "interactions_clean": 23830,
        "interactions_quarantined": 0,
        "catalog_quarantined": 0,
    },
    "drift_report": {              # the injected drift starts on drift_date, 2023-06-05
        "detection_first_full_window": "2023-06-05",
        "detection_false_alarms": 0,
        "n_drifted": 3,  # units, price and the item mix (item_id, compared as a category)
    },
    "optimise_prices": {           # the synthetic world knows the true elasticities
        "elasticity_mae_shrunk": approx(0.1274, rel=0.1),     # unshrunk: 0.154
        "elasticity_corr_shrunk": approx(0.924, rel=0.03),
        "revenue_uplift_true": approx(0.0461, rel=0.1),
    },
    "segment_customers": {         # the synthetic world knows the true segments
        "n_clusters": 4,
        "ari_vs_truth": approx(0.463, rel=0.05),
        "silhouette": approx(0.3994, rel=0.05),
    },
    "train_basket": {              # two days of Online Retail invoices, with their dirt
        "baskets": 129,
        "giant_baskets_dropped": 2,
        "lines_cancelled_or_returned": 27,
        "rules": 725,
        "top_lift": approx(32.25, rel=0.01),
    },
    "train_churn": {               # state world with 3 known states; recency baseline AUC 0.777
        "n_states": 3,
        "churn_roc_auc": approx(0.828, rel=0.03),
        "recovery_ari": approx(0.815, rel=0.05),
        "recovery_n_states": 3,
    },
    "train_clv": {                 # first 150 CDNOW customers; 196 actual holdout purchases
        "n_customers": 150,
        "param_r": approx(0.3594, rel=0.02),
        "param_alpha": approx(5.842, rel=0.02),
        "holdout_expected_total": approx(191.9, rel=0.03),
    },
    "train_forecaster": {
        "arima_mase": approx(0.5618, rel=0.05),               # seasonal naive: 1.0
        "arima_coverage": approx(0.8452, rel=0.05),
        "arima_beats_seasonal_naive_share": 1.0,
    },
    "train_propensity": {          # month split; the logistic baseline has PR-AUC 0.586
        "n_sessions": 3699,
        "roc_auc": approx(0.7964, rel=0.02),
        "pr_auc_month_gbm": approx(0.635, rel=0.05),
    },
    "train_recommender": {         # popularity baseline: ndcg@10 0.1396
        "n_test": 2486,
        "lightfm_ndcg_at_10": approx(0.1498, rel=0.05),
        "lightfm_precision_at_10": approx(0.09926, rel=0.05),
    },
    "train_two_stage": {           # 23 sales to learn from: loses to item-kNN here (0.1877);
        "train_positives": 23,     # it wins on Online Retail (benchmarks/bench_recommend_two_stage)
        "two_stage_ndcg_at_10": approx(0.1168, rel=0.05),
        "item_knn_ndcg_at_10": approx(0.1877, rel=0.05),
    },
    "train_search_ranker": {       # text match: ndcg@10 0.910; without debiasing: tau 0.534
        "graded_ndcg_at_10_ltr": approx(0.9525, rel=0.01),
        "kendall_tau_ltr": approx(0.5553, rel=0.02),
        "recall_at_100": approx(0.949, rel=0.02),           # retrieval by the search index
        "search_ndcg_at_10_bm25_ltr": approx(0.8031, rel=0.02),   # BM25 search alone: 0.791
    },
}


def test_every_template_has_small_parameters():
    assert sorted(SMALL) == NAMES


def test_every_template_has_expected_metrics():
    assert sorted(EXPECTED) == NAMES


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_template_runs_small(name, workspace_home, tmp_path):
    output = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(str(TEMPLATES / f"{name}.ipynb"), str(output),
                               parameters={**SMALL[name], "run_dir": str(tmp_path)}, kernel_name="retail-workbench",
                               cwd=str(tmp_path), progress_bar=False)
    metrics = json.loads((tmp_path / f"{name}.metrics.json").read_text())
    expected = EXPECTED[name]
    assert {key: metrics.get(key) for key in expected} == expected
