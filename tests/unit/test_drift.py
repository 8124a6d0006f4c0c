"""Drift: methods agree with scipy, effect sizes keep big samples quiet, seasonality does not
alarm, injected drift in the synthetic world is caught on the first full window after it."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from retail_workbench.core import DataError, SchemaError
from retail_workbench.monitor.drift import (DEFAULT_THRESHOLDS, calibrate_levels, column_drift,
                                    data_drift, detection_summary, drift_timeline, flag_alerts,
                                    match_weekdays,
                                    performance_drift, prediction_drift, psi_method,
                                    seasonal_reference)


def test_small_sample_methods_match_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 400), rng.normal(0.4, 1, 300)
    res = column_drift(pd.Series(a, name="x"), pd.Series(b, name="x"))
    ref = stats.ks_2samp(a, b)
    assert res["method"] == "ks"
    assert res["effect"] == pytest.approx(ref.statistic, abs=1e-12)
    assert res["p_value"] == pytest.approx(ref.pvalue, abs=1e-12)
    ca, cb = rng.choice(list("xyz"), 500), rng.choice(list("xyz"), 400, p=[0.6, 0.2, 0.2])
    res = column_drift(pd.Series(ca), pd.Series(cb))
    table = pd.crosstab(np.r_[np.zeros(500), np.ones(400)], np.r_[ca, cb]).to_numpy()
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    assert res["method"] == "chisquare" and res["drifted"]
    assert res["p_value"] == pytest.approx(p, abs=1e-12)
    assert res["effect"] == pytest.approx(np.sqrt(chi2 / 900), abs=1e-12)


def test_large_samples_do_not_alarm_on_trivial_shifts():
    rng = np.random.default_rng(1)
    n = 300_000
    ref = pd.DataFrame({"price": rng.lognormal(3, 0.5, n), "brand": rng.choice(list("abcdef"), n)})
    cur = pd.DataFrame({"price": rng.lognormal(3.01, 0.5, n),
                        "brand": rng.choice(list("abcdef"), n,
                                            p=[0.17, 0.17, 0.16, 0.17, 0.16, 0.17])})
    assert stats.ks_2samp(ref.price, cur.price).pvalue < 1e-6   # a p-value alone would alarm
    report = data_drift(ref, cur)
    assert report.drifted_columns == [] and not report.dataset_drift
    cur["price"] = cur["price"] * 1.3
    assert data_drift(ref, cur).drifted_columns == ["price"]


def test_sampling_gives_the_same_verdicts_and_close_effects():
    rng = np.random.default_rng(2)
    n = 200_000
    ref = pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.exponential(1, n),
                        "c": rng.integers(0, 9, n)})
    cur = pd.DataFrame({"a": rng.normal(0.2, 1, n), "b": rng.exponential(1, n),
                        "c": rng.integers(0, 9, n)})
    full = data_drift(ref, cur, max_rows=None).columns.set_index("column")
    sampled = data_drift(ref, cur, max_rows=20_000).columns.set_index("column")
    assert (full.drifted == sampled.drifted[full.index]).all()
    assert np.allclose(full.effect, sampled.effect[full.index], atol=0.02)


def test_psi_and_thresholds_and_ranking():
    rng = np.random.default_rng(3)
    ref = rng.normal(0, 1, 10_000)
    assert psi_method(ref, rng.normal(0, 1, 10_000))[0] < 0.02
    assert psi_method(ref, rng.normal(1, 1, 10_000))[0] > 0.25
    ref_df = pd.DataFrame({"x": ref, "y": ref, "z": ref})
    cur_df = pd.DataFrame({"x": ref + 0.5, "y": ref + 2.0, "z": ref})
    report = data_drift(ref_df, cur_df, methods={"x": "psi"})
    assert report.columns.column.tolist() == ["y", "x", "z"]
    assert report.columns.set_index("column").loc["x", "threshold"] == DEFAULT_THRESHOLDS["psi"]
    assert report.dataset_drift and report.drift_share == pytest.approx(2 / 3)


def test_errors_name_the_column():
    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    with pytest.raises(SchemaError, match="qty"):
        data_drift(df, df, columns=["qty"])
    with pytest.raises(DataError, match="'b' is categorical"):
        data_drift(df, df, methods={"b": "wasserstein"})
    with pytest.raises(DataError, match="reference"):
        seasonal_reference(pd.DataFrame({"ts": pd.to_datetime(["2024-01-01"])}),
                           "2024-06-01", "2024-06-08", "last_year")


def _weekly_seasonal(days=140, per_day=50, seed=0):
    rng = np.random.default_rng(seed)
    ts = np.repeat(pd.date_range("2024-01-01", periods=days, freq="D"), per_day)
    weekend = ts.day_of_week >= 5
    return pd.DataFrame({"ts": ts, "basket": rng.gamma(2, np.where(weekend, 30, 10))})


def test_weekday_mix_matters_and_matching_fixes_it():
    df = _weekly_seasonal()
    current = df[(df.ts >= "2024-03-02") & (df.ts < "2024-03-04")]          # a weekend
    reference = df[(df.ts >= "2024-02-01") & (df.ts < "2024-03-01")]
    assert column_drift(reference.basket, current.basket)["drifted"]
    matched = match_weekdays(reference, current)
    assert set(matched.ts.dt.day_of_week) == {5, 6}
    assert not column_drift(matched.basket, current.basket)["drifted"]


def test_performance_drift_flags_degraded_windows_only_after_change():
    df = _weekly_seasonal(days=84)
    df["prediction"] = df.basket + np.random.default_rng(0).normal(0, 5, len(df))
    late = df.ts >= "2024-03-04"
    df.loc[late, "prediction"] = df.loc[late, "prediction"] * 1.5
    perf = performance_drift(df, "basket", "prediction", "2024-02-05", metric="mae")
    assert not perf[perf.window_start < "2024-03-04"].degraded.any()
    assert perf[perf.window_start >= "2024-03-04"].degraded.all()
    assert prediction_drift(df.prediction[~late], df.prediction[late])["drifted"]


def _world_timeline(seed, kind, drift_date="2024-07-01"):
    from retail_workbench.data.synth import make_world
    world = make_world(n_users=300, n_items=100, n_days=730, seed=seed, n_stores=2,
                       drift=None if kind is None else dict(date=drift_date, kind=kind))
    sales = world.sales.rename(columns={"date": "ts"})
    holidays = world.calendar.date[world.calendar.holiday]
    return drift_timeline(sales, "7D", start="2023-02-06", policy="trailing",
                          columns=["units", "price", "promo"], event_dates=holidays)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_world_drift_caught_on_first_full_window_and_no_false_alarms(seed):
    """Windows start on Mondays from 2023-02-06; the drift date 2024-07-01 is a Monday. Alarm levels
    are calibrated per column on 2023 (normal by construction) and monitoring runs on 2024: no
    alert before the drift, an alert on the first full window after it. Plain column warnings
    (score >= 1) may fire on item-level seasonality in a few percent of windows."""
    quiet = _world_timeline(seed, None)
    assert quiet.drifted.groupby(quiet.window_start).any().mean() <= 0.15
    for kind in (None, "price", "demand"):
        timeline = quiet if kind is None else _world_timeline(seed, kind)
        levels = calibrate_levels(timeline[timeline.window_end <= pd.Timestamp("2024-01-01")])
        monitored = flag_alerts(timeline[timeline.window_start >= pd.Timestamp("2024-01-01")],
                                levels)
        summary = detection_summary(monitored, "2024-07-01", flag_col="alert")
        assert summary["n_windows_before"] == 26
        assert summary["false_alarms"] == 0, (kind, summary)           # seasonality alone
        assert summary["first_full_window"] == "2024-07-01"
        assert summary["detected_first_full_window"] == (kind is not None), (kind, summary)


def _tables(tmp_path, shift):
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"price": rng.normal(10, 2, 4000),
                        "units": rng.poisson(4, 4000).astype(float)})
    cur = pd.DataFrame({"price": rng.normal(10 + shift, 2, 4000),
                        "units": rng.poisson(4, 4000).astype(float)})
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    return ["drift", "--reference", str(tmp_path / "ref.parquet"),
            "--current", str(tmp_path / "cur.csv")]


def test_cli_exit_codes_follow_fail_on(tmp_path):
    from retail_workbench.cli.app import main
    from retail_workbench.cli.monitor import ALERT_EXIT_CODE
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {metric: drift_score.price, threshold: 1.0, severity: warning}\n"
                     "  - {metric: drift_score.price, threshold: 5.0, severity: critical}\n")
    moderate = _tables(tmp_path, 0.5) + ["--config", str(rules)]    # score ~2.5: warning only
    assert main(moderate + ["--fail-on", "warning"]) == ALERT_EXIT_CODE
    assert main(moderate + ["--fail-on", "critical"]) == 0
    assert main(moderate) == 0
    assert main(_tables(tmp_path, 0.0) + ["--config", str(rules), "--fail-on", "warning"]) == 0
    assert main(moderate + ["--fail-on", "urgent"]) == 1
    from retail_workbench.monitor.alerts import read_alerts
    assert set(read_alerts().severity) == {"warning"}


def test_alerts_recorded_on_mlflow_run_and_webhook():
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    import mlflow
    from mlflow.tracking import MlflowClient

    from retail_workbench.monitor.alerts import Alert, record_alerts
    from retail_workbench.ops.tracking import configure_mlflow
    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    configure_mlflow()
    with mlflow.start_run() as run:
        pass
    alerts = [Alert("price", "drift_score.price", 3.0, 2.0, "critical"),
              Alert("units", "drift_score.units", 1.2, 1.0, "warning")]
    record_alerts(alerts, {"model": "m1"}, mlflow_run_id=run.info.run_id,
                  webhook_url=f"http://127.0.0.1:{server.server_port}/")
    server.shutdown()
    server.server_close()
    stored = MlflowClient().get_run(run.info.run_id)
    assert stored.data.tags["drift_alert"] == "critical"
    assert stored.data.metrics["alerts_critical"] == 1
    assert stored.data.metrics["alerts_warning"] == 1
    assert received[0]["worst"] == "critical" and received[0]["model"] == "m1"
    # an unreachable webhook is logged, not raised
    record_alerts(alerts, webhook_url="http://127.0.0.1:9/", timeout=0.5)
