"""Customer lifecycle models: BG/NBD and Gamma-Gamma held to the published CDNOW values, the
customer-state HMM recovering a known chain, churn against the recency baseline, and the `rwb clv`
/ `rwb churn` commands."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retail_workbench.cli.app import main
from retail_workbench.customers.clv import BetaGeoModel, GammaGammaModel, fit_clv
from retail_workbench.customers.states import (CustomerStateModel, PoissonStateHMM,
                                               activity_panel, fit_churn, state_recovery)
from retail_workbench.data.synth import make_state_world

CDNOW = Path(__file__).resolve().parents[1] / "fixtures" / "cdnow"


@pytest.fixture(scope="module")
def cdnow_summary():
    return pd.read_csv(CDNOW / "cdnow_customers_summary.csv", index_col="ID")


def test_bgnbd_matches_published_cdnow_fit(cdnow_summary):
    model = BetaGeoModel().fit(cdnow_summary)
    published = {"r": 0.243, "alpha": 4.413, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert model.params_[name] == pytest.approx(value, abs=2e-3), name
    assert model.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)


def test_gamma_gamma_matches_published_cdnow_fit():
    spend = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    spend = spend.rename(columns={"x": "frequency", "zbar": "monetary_value"})
    model = GammaGammaModel().fit(spend)
    for name, value in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert model.params_[name] == pytest.approx(value, rel=0.01), name


def test_batched_hmm_matches_hmmlearn():
    from hmmlearn.hmm import PoissonHMM
    rng = np.random.default_rng(0)
    hmm = PoissonStateHMM([0.5, 0.3, 0.2], [[0.8, 0.15, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]],
                          [[0.05, 0.1], [0.7, 1.5], [2.0, 5.0]])
    lengths = rng.integers(2, 12, 20)
    sequences = [rng.poisson([0.8, 2.0], (n, 2)) for n in lengths]
    grid, seen = np.zeros((20, 12, 2)), np.zeros((20, 12), dtype=bool)
    for i, seq in enumerate(sequences):
        grid[i, 12 - len(seq):], seen[i, 12 - len(seq):] = seq, True
    reference = PoissonHMM(3, init_params="")
    reference.startprob_, reference.transmat_, reference.lambdas_ = (
        hmm.startprob_, hmm.transmat_, hmm.lambdas_)
    assert hmm.loglik(grid, seen).sum() == pytest.approx(
        reference.score(np.vstack(sequences), lengths), rel=1e-10)
    assert hmm.viterbi(grid, seen)[seen].tolist() == reference.decode(
        np.vstack(sequences), lengths)[1].tolist()
    last = np.cumsum(lengths) - 1
    np.testing.assert_allclose(hmm.filtered(grid, seen),
                               reference.predict_proba(np.vstack(sequences), lengths)[last])


def test_hmm_recovers_known_states():
    world = make_state_world(n_customers=500, n_weeks=40, seed=3)
    panel = activity_panel(world.order_lines, end=world.truth.states["week"].max(),
                           visits=world.visits)
    model = CustomerStateModel(state_range=(2, 4), random_state=0).fit(panel)
    recovery = state_recovery(model.decode(panel), world.truth.states, model.model_.transmat_,
                              world.truth.transitions)
    print(f"states {model.n_states_}, ARI {recovery['ari']:.3f}, "
          f"transition MAE {recovery['transmat_mae']:.3f}")
    assert model.n_states_ == 3
    assert recovery["ari"] > 0.75
    assert recovery["transmat_mae"] < 0.06
    assert model.state_names_[0] == "dormant" and model.state_names_[-1] == "active high spender"


def test_churn_risk_beats_recency_on_the_state_world():
    world = make_state_world(n_customers=500, n_weeks=40, seed=4)
    _, metrics, scores = fit_churn(world.order_lines, horizon=6, visits=world.visits,
                                   n_states=3)
    print({k: round(v, 3) for k, v in metrics.items() if isinstance(v, float)})
    assert metrics["churn_roc_auc"] > metrics["recency_roc_auc"]
    assert metrics["churn_roc_auc"] > 0.75
    assert scores["churn_risk"].between(0, 1).all()


def _json(args, capsys):
    code = main(args + ["--json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else captured.err)


def test_rwb_clv_summary_and_transactions(capsys):
    code, result = _json(["clv", str(CDNOW / "cdnow_customers_summary.csv")], capsys)
    assert code == 0 and result["params"]["a"] == pytest.approx(0.793, abs=2e-3)
    assert "p" not in result["params"]   # no values, no spend model
    code, result = _json(["clv", str(CDNOW / "cdnow_sample.csv"), "--calibration-end",
                          "1997-09-30", "--value-col", "dollar_value"], capsys)
    assert code == 0 and set(result["params"]) == {"r", "alpha", "a", "b", "p", "q", "gamma"}
    assert result["holdout_actual_total"] > 0 and result["holdout"][0]["calibration_frequency"] == "0"


def test_rwb_clv_and_churn_bad_input_is_one_line(tmp_path, capsys):
    code, err = _json(["clv", str(CDNOW / "cdnow_sample.csv")], capsys)
    assert code == 1 and "--calibration-end" in err and err.count("\n") == 1
    pd.DataFrame({"sku": [1], "units": [2]}).to_csv(tmp_path / "other.csv", index=False)
    code, err = _json(["churn", str(tmp_path / "other.csv")], capsys)
    assert code == 1 and "is not one the churn model reads" in err and err.count("\n") == 1
