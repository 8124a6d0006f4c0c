"Model artifacts are data: forecaster round trips, recorded hashes, and no pickle runs on any default path."
import os
import pickle
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest

from retail_workbench.core import (DATE_COL, ITEM_COL, PRICE_COL, PROMO_COL, STORE_COL,
                                   UNITS_COL, ArtifactError)
from retail_workbench.forecast.artifacts import (FITTED_ATTRIBUTES, load_forecaster,
                                                 save_forecaster)
from retail_workbench.forecast.demand import (FORECAST_COL, LOWER_COL, UPPER_COL,
                                              DemandForecaster)

RWB = str(Path(sys.executable).parent / "rwb")
VALUES = [FORECAST_COL, LOWER_COL, UPPER_COL]


def assert_same_forecasts(model, loaded, **kwargs):
    before, after = model.predict(**kwargs), loaded.predict(**kwargs)
    pd.testing.assert_frame_equal(before.drop(columns=VALUES), after.drop(columns=VALUES))
    assert np.allclose(before[VALUES].to_numpy(), after[VALUES].to_numpy(), rtol=0, atol=1e-6)
    return before


def round_trip(model, folder):
    hashes = save_forecaster(model, folder)
    assert not [p for p in Path(folder).rglob("*") if p.suffix in (".pkl", ".pickle")]
    return load_forecaster(folder, hashes)


def test_forecaster_round_trip_on_the_synthetic_world(tmp_path):
    from retail_workbench.data.synth import make_calendar, make_world
    world = make_world(n_users=50, n_items=24, n_days=330, seed=3, n_stores=2, n_sales_items=4)
    sales, calendar = world.sales, make_calendar("2023-01-01", 400)  # holidays and events ahead
    top = sales.groupby([STORE_COL, ITEM_COL])[UNITS_COL].sum().nlargest(3).index
    sales = sales.set_index([STORE_COL, ITEM_COL]).loc[top].reset_index()
    late = sales[sales[ITEM_COL] == top[0][1]].tail(30)       # a new series: too short for ARIMA
    sales = pd.concat([sales, late.assign(**{ITEM_COL: -1})], ignore_index=True)
    model = DemandForecaster(n_jobs=1, yearly_order=0, maxiter=15).fit(sales, calendar)
    assert set(model.fit_report_["model"]) == {"arima", "seasonal_naive"}
    assert any(state.get("events") for state in model.series_.values())
    loaded = round_trip(model, tmp_path / "world")
    assert loaded.get_params() == model.get_params()
    pd.testing.assert_frame_equal(loaded.fit_report_, model.fit_report_, check_dtype=False)
    assert_same_forecasts(model, loaded, horizon=28)
    future = model.predict(horizon=14)[[DATE_COL, STORE_COL, ITEM_COL]]
    plan = future.assign(**{PRICE_COL: 3.0, PROMO_COL: True})
    assert_same_forecasts(model, loaded, future=plan)


def test_weekly_forecaster_with_exogenous_drivers_round_trips(tmp_path):
    "Frequency, gap policy, exogenous drivers and interval widening survive the round trip."
    from retail_workbench.data.synth import make_world
    from retail_workbench.forecast.demand import aggregate_sales
    world = make_world(n_users=50, n_items=24, n_days=730, seed=5, n_stores=1, n_sales_items=3)
    weekly = aggregate_sales(world.sales, "W-MON")
    weekly["display"] = (np.arange(len(weekly)) % 5 == 0).astype(float)
    model = DemandForecaster(n_jobs=1, maxiter=15, exog=["display"]).fit(weekly)
    assert model.freq_.alias == "W-MON" and model.exog_ == ("display",)
    loaded = round_trip(model, tmp_path / "weekly")
    assert loaded.freq_ == model.freq_ and loaded.gaps_ == model.gaps_
    assert loaded.exog_ == model.exog_
    forecasts = assert_same_forecasts(model, loaded, horizon=6)
    dates = pd.DatetimeIndex(sorted(forecasts[DATE_COL].unique()))
    assert len(dates) == 6 and (dates.diff()[1:] == pd.Timedelta(weeks=1)).all()


def test_forecaster_round_trip_on_real_daily_sales(tmp_path, shared_data):
    from retail_workbench.data.datasets import sales_from_lines
    raw = pd.read_parquet(shared_data / "online_retail.parquet")
    raw["StockCode"] = raw["StockCode"].astype(str)
    busiest = raw["StockCode"].value_counts().index[:3]
    lines = raw[raw["StockCode"].isin(busiest)]
    sales = sales_from_lines(lines, "InvoiceDate", "StockCode", "Quantity", "UnitPrice")
    model = DemandForecaster(n_jobs=1, maxiter=15).fit(sales)   # a year: yearly terms too
    assert (model.fit_report_["model"] == "arima").all()
    loaded = round_trip(model, tmp_path / "retail")
    predicted = assert_same_forecasts(model, loaded, horizon=21)
    assert len(predicted) == 3 * 21


def test_unknown_fitted_state_fails_loudly(tmp_path):
    from retail_workbench.forecast.demand import SeasonalNaive
    sales = pd.DataFrame({DATE_COL: pd.date_range("2024-01-01", periods=14), STORE_COL: 1,
                          ITEM_COL: 1, UNITS_COL: np.arange(14.0)})
    model = SeasonalNaive().fit(sales)
    model.gap_policy_ = "zero"
    with pytest.raises(ArtifactError, match="fitted attribute 'gap_policy_'"):
        save_forecaster(model, tmp_path / "a")
    del model.gap_policy_
    next(iter(model.series_.values()))["step"] = pd.Timedelta(days=7)
    with pytest.raises(ArtifactError, match="state 'step'"):
        save_forecaster(model, tmp_path / "b")
    assert "gap_policy_" not in FITTED_ATTRIBUTES


# --- no pickle runs on the default paths --------------------------------------------------


class _Payload:
    "A crafted pickle: loading it writes the marker file."
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('ran')",))


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    "One workspace made by `rwb demo --quick`, shared by the tests below (restore what you change)."
    folder = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "RWB_HOME": str(folder / "workspace"), "RWB_PROGRESS": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([RWB, "demo", "--quick"], capture_output=True, text=True, cwd=folder,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / "workspace"


@pytest.fixture
def demo(demo_home, monkeypatch, tmp_path):
    monkeypatch.setenv("RWB_HOME", str(demo_home))
    monkeypatch.delenv("RWB_TRUST_PICKLES", raising=False)
    marker = tmp_path / "pickle-ran"
    env = {**os.environ, "RWB_HOME": str(demo_home), "RWB_PROGRESS": "0"}
    return demo_home, marker, pickle.dumps(_Payload(marker)), env


def model_dir(name: str, version: str) -> Path:
    "Where the registry keeps the files of a version (a folder in the workspace)."
    from retail_workbench.ops.registry import registry_client
    client = registry_client()
    model_id = client.get_model_version(name, version).source.split("/")[-1]
    return Path(urlparse(client.get_logged_model(model_id).artifact_location).path)


@contextmanager
def planted(folder: Path, payload: bytes, files):
    "Replace (or add) `files` of a model folder with the crafted pickle, then put them back."
    saved = {f: (folder / f).read_bytes() if (folder / f).exists() else None for f in files}
    try:
        for f in files:
            (folder / f).write_bytes(payload)
        yield
    finally:
        for f, content in saved.items():
            if content is None:
                (folder / f).unlink()
            else:
                (folder / f).write_bytes(content)


def test_the_gate_never_unpickles_a_tampered_forecaster(demo):
    from retail_workbench.ops.families import get_family
    from retail_workbench.ops.registry import alias_version
    home, marker, payload, _ = demo
    champion = alias_version("forecaster", "champion")
    folder = model_dir("forecaster", champion)
    assert (folder / "forecaster" / "forecaster.json").is_file()
    assert not list(folder.rglob("*.pkl"))
    spec = get_family("forecaster")
    truth = pd.DataFrame(columns=[DATE_COL, STORE_COL, ITEM_COL, UNITS_COL])
    for files in (["forecaster/arrays.npz"], ["python_model.pkl"], ["forecaster/forecaster.json"]):
        with planted(folder, payload, files):
            with pytest.raises(ArtifactError, match=files[0]):
                spec.evaluate_uri(f"models:/forecaster/{champion}", None, truth, {})
    assert not marker.exists()


def test_an_old_pickled_version_is_refused_unless_trusted(demo):
    from sklearn.dummy import DummyRegressor
    from retail_workbench.ops.registry import load_version_model, register_version
    from retail_workbench.ops.tracking import training_run
    home, marker, payload, _ = demo
    with training_run("legacy") as run:  # as versions were stored before: a pickle, no hashes
        run.log_model(DummyRegressor().fit([[0.0], [1.0]], [1.0, 1.0]), allow_pickle=True)
    version = register_version(run.model_uri, "legacy", artifact_hashes={})
    folder = model_dir("legacy", version)
    pickles = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.pkl"))
    assert pickles, "the legacy model has no pickle to plant in"
    with planted(folder, payload, pickles):
        with pytest.raises(ArtifactError, match="is a pickle.*RWB_TRUST_PICKLES=1"):
            load_version_model(f"legacy/{version}")
        assert not marker.exists()
        with pytest.raises(Exception):
            load_version_model(f"legacy/{version}", trusted=True)   # opting in runs it...
        assert marker.exists()                                       # ...so the payload is real


def test_pipeline_run_never_unpickles_a_tampered_champion(demo):
    from retail_workbench.ops.registry import alias_version, list_versions
    home, marker, payload, env = demo
    champion = alias_version("forecaster", "champion")
    folder = model_dir("forecaster", champion)
    before = len(list_versions("forecaster"))
    spec = home.parent / "forecaster_only.yaml"  # the project's forecaster step alone: faster
    spec.write_text("name: forecaster-only\nsteps:\n  - name: forecaster\n"
                    "    template: ct_train_register\n    parameters: {family: forecaster}\n"
                    "    quick: {quick: true}\n")
    with planted(folder, payload, ["forecaster/arrays.npz", "python_model.pkl"]):
        done = subprocess.run([RWB, "pipeline", "run", str(spec), "--quick", "--shared-kernel"],
                              capture_output=True, text=True, cwd=home.parent, env=env)
    assert not marker.exists()
    assert done.returncode != 0
    assert "step 'forecaster' failed (ArtifactError" in done.stderr, done.stderr
    assert "artifact file forecaster/arrays.npz does not match" in done.stderr, done.stderr
    assert len(list_versions("forecaster")) == before + 1        # trained, registered, not gated
    assert alias_version("forecaster", "champion") == champion


@pytest.mark.parametrize("name, files", [
    ("forecaster", ["forecaster/arrays.npz", "python_model.pkl"]),
    ("recommender", ["model.onnx"]),
])
def test_score_and_serve_never_unpickle(demo, capsys, name, files):
    from retail_workbench.cli.app import main   # the `rwb` entry point, in this process
    from retail_workbench.ops.registry import alias_version
    home, marker, payload, env = demo
    folder = model_dir(name, alias_version(name, "champion"))
    users = home.parent / "users.csv"
    pd.DataFrame({"user_id": [0, 1]}).to_csv(users, index=False)
    with planted(folder, payload, files):
        for argv in (["score", "--model", f"{name}@champion", "--input", str(users),
                      "--output", str(home.parent / "out.csv")],
                     ["serve", "--model", name, "--port", "0"]):
            assert main(argv) == 1, argv
            assert f"artifact file {files[0]} does not match" in capsys.readouterr().err
    assert not marker.exists()
