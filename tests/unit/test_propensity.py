"Propensity: features, splits, metrics, cost threshold, calibration and ONNX parity."
import numpy as np
import pandas as pd
import pytest

from retail_workbench.core import ConfigError, DataError, SchemaError
from retail_workbench.data.datasets import load_sessions
from retail_workbench.customers.propensity import (
    TARGET_COL, choose_threshold, evaluate_propensity, expected_cost,
    fit_and_score, gain_table, make_propensity_pipeline,
    session_frame, split_by_month, split_random,
)
from retail_workbench.ops.onnx import OnnxPropensityScorer, propensity_parity, propensity_to_onnx


@pytest.fixture(scope="module")
def sessions():
    return load_sessions()


def test_session_frame_types_and_errors(sessions):
    X = session_frame(sessions)
    assert X["ExitRates"].dtype == np.float32
    assert X["Month"].map(type).eq(str).all()
    with pytest.raises(SchemaError, match="'PageValues'"):
        session_frame(sessions.drop(columns="PageValues"))
    bad = sessions.assign(PageValues=sessions["PageValues"].astype(object))
    bad.loc[bad.index[:2], "PageValues"] = "n/a"
    with pytest.raises(DataError, match="'PageValues' has 2 missing or non-numeric"):
        session_frame(bad)


def test_splits(sessions):
    train, test = split_by_month(sessions, ("Nov",))
    assert set(test["Month"]) == {"Nov"} and "Nov" not in set(train["Month"])
    with pytest.raises(DataError, match="'Jan'"):
        split_by_month(sessions, ("Jan",))
    train, test = split_random(sessions, test_size=0.2, random_state=1)
    assert len(test) == pytest.approx(0.2 * len(sessions), abs=1)


def test_metrics_and_threshold():
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.6, 0.7, 0.9])
    scores = evaluate_propensity(y, p)
    assert scores["roc_auc"] == pytest.approx(1.0)
    assert evaluate_propensity(y, p[::-1], ("roc_auc",))["roc_auc"] == pytest.approx(0.0)
    assert expected_cost(y, p, 0.5, 10, 1) == pytest.approx(1 / 5)
    choice = choose_threshold(y, p, 10, 1)
    assert choice["cost"] == 0.0 and 0.6 < choice["threshold"] <= 0.7
    assert choice["bayes_threshold"] == pytest.approx(1 / 11)
    with pytest.raises(ConfigError):
        choose_threshold(y, p, -1, 1)
    with pytest.raises(DataError, match=r"\(5,\) values but proba \(4,\)"):
        evaluate_propensity(y, p[:4])


def test_gain_table_perfect_model():
    y = np.r_[np.ones(10), np.zeros(90)]
    table = gain_table(y, np.linspace(1, 0, 100))
    assert table["lift"].iloc[0] == pytest.approx(10)
    assert table["cumulative_gain"].iloc[0] == pytest.approx(1.0)


@pytest.mark.slow
def test_gbm_beats_logistic_is_calibrated_and_onnx_matches(sessions, tmp_path):
    train, test = split_random(sessions, random_state=0)
    gbm, proba, gbm_scores = fit_and_score(
        make_propensity_pipeline("gbm", n_estimators=60, random_state=0), train, test)
    _, _, logistic_scores = fit_and_score(make_propensity_pipeline("logistic"), train, test)
    assert gbm_scores["roc_auc"] > 0.9
    assert gbm_scores["roc_auc"] > logistic_scores["roc_auc"]
    # calibrated: mean prediction close to the observed buying rate
    assert proba.mean() == pytest.approx(test[TARGET_COL].mean(), abs=0.03)
    X = session_frame(test)
    propensity_to_onnx(gbm, X, tmp_path / "m.onnx")
    parity = propensity_parity(gbm, OnnxPropensityScorer(tmp_path / "m.onnx"), X)
    assert parity["max_abs_diff"] < 1e-5
    with pytest.raises(ConfigError):
        make_propensity_pipeline("gbm", calibration="platt")
