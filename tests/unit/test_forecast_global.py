"Global LightGBM forecaster and the backtest ensemble: accuracy on known effects, intervals, contract."
import numpy as np
import pandas as pd
import pytest

from retail_workbench.core import (DATE_COL, ITEM_COL, PRICE_COL, PROMO_COL, STORE_COL, UNITS_COL,
                                   ConfigError, DataError, NotFittedError, UnknownIdError)
from retail_workbench.forecast.backtest import mase_scale, wape
from retail_workbench.forecast.demand import (FORECAST_COL, LOWER_COL, MODEL_COL, UPPER_COL,
                                              DemandForecaster, SeasonalNaive, aggregate_sales)
from retail_workbench.forecast.gbm import EnsembleForecaster, GlobalForecaster

LIFT = 2.5       # true promotion lift of the weekly world
HORIZON = 8      # weeks held out


def promo_world(n_items=40, n_weeks=120, seed=1):
    "Weekly Poisson sales: item levels, a yearly season, promotions (price -20%) that lift x2.5."
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2022-01-03", periods=n_weeks, freq="W-MON")
    level = np.exp(rng.normal(np.log(25), 0.7, n_items))[:, None]
    phase = rng.uniform(0, 52, (n_items, 1))
    season = 0.3 * np.cos(2 * np.pi * (np.arange(n_weeks)[None, :] - phase) / 52)
    promo = rng.random((n_items, n_weeks)) < 1 / 6
    price = 8.0 * np.exp(rng.normal(0, 0.03, (n_items, n_weeks))) * np.where(promo, 0.8, 1.0)
    units = rng.poisson(level * np.exp(season) * np.where(promo, LIFT, 1.0))
    return pd.DataFrame({DATE_COL: np.tile(dates, n_items), STORE_COL: 0,
                         ITEM_COL: np.repeat(np.arange(n_items), n_weeks), UNITS_COL: units.ravel(),
                         PRICE_COL: price.ravel().round(2), PROMO_COL: promo.ravel()})


@pytest.fixture(scope="module")
def split():
    sales = promo_world()
    cutoff = sales[DATE_COL].max() - pd.Timedelta(weeks=HORIZON)
    return sales[sales[DATE_COL] <= cutoff], sales[sales[DATE_COL] > cutoff]


@pytest.fixture(scope="module")
def fitted(split):
    train, _ = split
    return GlobalForecaster(n_estimators=120, random_state=0).fit(train)


def seasonal_naive_weeks(train, test):
    "The same week one year earlier."
    last_year = train.assign(**{DATE_COL: train[DATE_COL] + pd.Timedelta(weeks=52)})
    return test[[DATE_COL, ITEM_COL]].merge(last_year[[DATE_COL, ITEM_COL, UNITS_COL]],
                                            on=[DATE_COL, ITEM_COL], how="left")[UNITS_COL]


def test_beats_seasonal_naive_on_a_promotion_driven_weekly_world(split, fitted):
    train, test = split
    pred = fitted.predict(future=test.drop(columns=[UNITS_COL]))
    scored = pred.merge(test, on=[DATE_COL, STORE_COL, ITEM_COL])
    assert len(scored) == len(test)
    naive = seasonal_naive_weeks(train, test).to_numpy()
    assert wape(scored[UNITS_COL], scored[FORECAST_COL]) < 0.7 * wape(test[UNITS_COL], naive)
    mase = []
    for item, group in scored.groupby(ITEM_COL):
        scale = mase_scale(train.loc[train[ITEM_COL] == item, UNITS_COL], 52)
        mase.append(np.abs(group[UNITS_COL] - group[FORECAST_COL]).mean() / scale)
    assert np.mean(mase) < 0.8


def test_recovers_the_promotion_lift(split, fitted):
    _, test = split
    plan = test.drop(columns=[UNITS_COL])
    on = fitted.predict(future=plan.assign(promo=True, price=6.4))[FORECAST_COL].sum()
    off = fitted.predict(future=plan.assign(promo=False, price=8.0))[FORECAST_COL].sum()
    assert 1.8 < on / off < 3.3


def test_conformal_band_covers_in_a_loose_band(split, fitted):
    _, test = split
    pred = fitted.predict(future=test.drop(columns=[UNITS_COL])).merge(
        test, on=[DATE_COL, STORE_COL, ITEM_COL])
    inside = ((pred[UNITS_COL] >= pred[LOWER_COL]) & (pred[UNITS_COL] <= pred[UPPER_COL])).mean()
    assert 0.75 < inside < 0.99
    assert (pred[LOWER_COL] <= pred[FORECAST_COL]).all()
    assert (pred[FORECAST_COL] <= pred[UPPER_COL]).all()
    width = (pred[UPPER_COL] - pred[LOWER_COL]).groupby(pred[DATE_COL]).mean().to_numpy()
    assert width[-1] >= width[0]   # never narrower further ahead


def test_contract_shapes_errors_and_seed(split, fitted):
    train, test = split
    pred = fitted.predict(horizon=3)
    assert list(pred.columns) == [DATE_COL, STORE_COL, ITEM_COL, FORECAST_COL, LOWER_COL,
                                  UPPER_COL, MODEL_COL]
    assert len(pred) == 40 * 3 and set(pred[MODEL_COL]) == {"gbm"}
    assert pred[DATE_COL].min() == train[DATE_COL].max() + pd.Timedelta(weeks=1)
    assert (fitted.freq_.name, fitted.freq_.alias, fitted.gaps_) == ("weekly", "W-MON", "missing")
    with pytest.raises(UnknownIdError, match="not seen in training"):
        fitted.predict(future=test.assign(item_id=999))
    with pytest.raises(DataError, match="after the end of training"):
        fitted.predict(future=train.tail(2))
    with pytest.raises(NotFittedError, match="not fitted"):
        GlobalForecaster().predict(horizon=2)
    with pytest.raises(ConfigError, match="is not supported"):
        GlobalForecaster(freq="h").fit(train)
    few = train[train[ITEM_COL] < 10]
    first, second = (GlobalForecaster(n_estimators=30, random_state=7).fit(few).predict(horizon=3)
                     for _ in range(2))
    np.testing.assert_allclose(first[FORECAST_COL], second[FORECAST_COL])


def test_daily_and_monthly_frequencies():
    rng = np.random.default_rng(0)
    dates = pd.date_range("2023-01-01", periods=400)
    weekday = 1 + 0.5 * (dates.day_of_week >= 5)
    sales = pd.concat([pd.DataFrame({DATE_COL: dates, STORE_COL: 1, ITEM_COL: item,
                                     UNITS_COL: rng.poisson(10 * weekday * (item + 1))})
                       for item in range(6)], ignore_index=True)
    daily = GlobalForecaster(n_estimators=60, random_state=0).fit(sales)
    assert (daily.freq_.name, daily.gaps_) == ("daily", "zero")
    pred = daily.predict(horizon=14)
    weekend = pred[DATE_COL].dt.day_of_week >= 5
    assert pred[weekend][FORECAST_COL].mean() > 1.2 * pred[~weekend][FORECAST_COL].mean()
    monthly = GlobalForecaster(freq="MS", n_estimators=30, random_state=0).fit(sales)
    assert monthly.freq_.alias == "MS"
    assert (monthly.predict(horizon=2)[DATE_COL].dt.day == 1).all()
    assert aggregate_sales(sales, "MS")[UNITS_COL].sum() == sales[UNITS_COL].sum()
    with pytest.raises(ConfigError, match="cannot be forecast at the finer"):
        GlobalForecaster(freq="D").fit(aggregate_sales(sales, "W-MON"))


def test_missing_weeks_are_not_zero_sales(split):
    "A week without a row is not a training target under gaps='missing', a zero under 'zero'."
    train, _ = split
    few = train[train[ITEM_COL] < 8]
    holes = few[~((few[ITEM_COL] == 0) & (few[DATE_COL].dt.month == 6))]   # item 0: no June rows
    missing = GlobalForecaster(n_estimators=40, random_state=0).fit(holes)
    zero = GlobalForecaster(n_estimators=40, random_state=0, gaps="zero").fit(holes)
    assert (missing.gaps_, zero.gaps_) == ("missing", "zero")
    june = (missing.panel_["grid"].month == 6)
    assert np.isnan(missing.panel_["units"][0, june]).all()
    assert (zero.panel_["units"][0, june] == 0).all()
    level = lambda model: model.predict(horizon=4)[FORECAST_COL].iloc[:4].mean()
    assert level(zero) < level(missing)   # zero weeks pull item 0's history down


def test_ensemble_chooses_by_backtest(split):
    train, test = split
    few = train[train[ITEM_COL] < 20]
    candidates = {"gbm": GlobalForecaster(n_estimators=50, random_state=0),
                  "naive": SeasonalNaive()}
    ensemble = EnsembleForecaster(candidates, n_windows=1).fit(few)
    assert (ensemble.freq_.alias, ensemble.gaps_) == ("W-MON", "missing")
    share = ensemble.selection_["choice"].value_counts(normalize=True)
    assert share.get("naive", 0.0) < 0.25
    pred = ensemble.predict(horizon=HORIZON)
    assert len(pred) == 20 * HORIZON
    assert set(pred[MODEL_COL]) <= {"gbm", "naive", "average"}
    with pytest.raises(ConfigError, match="'series' or 'global'"):
        EnsembleForecaster(candidates, select="each").fit(few)


def test_ensemble_default_candidates_take_its_frequency(split):
    "Without candidates: DemandForecaster and GlobalForecaster at the ensemble's freq and gaps."
    train, _ = split
    daily = train[train[ITEM_COL] < 3]
    daily = daily.loc[daily.index.repeat(7)].copy()
    daily[DATE_COL] += pd.to_timedelta(daily.groupby(level=0).cumcount(), unit="D")
    daily[UNITS_COL] /= 7
    ensemble = EnsembleForecaster(freq="W-MON", gaps="zero", n_windows=1, horizon=4).fit(daily)
    arima, gbm = ensemble.models_["arima"], ensemble.models_["gbm"]
    assert isinstance(arima, DemandForecaster) and isinstance(gbm, GlobalForecaster)
    assert arima.freq_ == gbm.freq_ == ensemble.freq_ and ensemble.freq_.alias == "W-MON"
    assert arima.gaps_ == gbm.gaps_ == "zero"
    pred = ensemble.predict(horizon=2)
    assert len(pred) == 3 * 2 and (pred[DATE_COL].dt.day_name() == "Monday").all()


def test_cli_forecast_with_the_global_model(split, tmp_path):
    from retail_workbench.cli.forecast import forecast
    train, _ = split
    train[train[ITEM_COL] < 5].to_parquet(tmp_path / "sales.parquet")
    out = tmp_path / "forecast.parquet"
    forecast(sales=str(tmp_path / "sales.parquet"), horizon=4, model="gbm", calendar="",
             future="", backtest_windows=0, alpha=0.1, n_jobs=1, freq="", gaps="", exog="",
             out=str(out), quiet=True, engine="")
    written = pd.read_parquet(out)
    assert len(written) == 5 * 4 and set(written[MODEL_COL]) == {"gbm"}
    forecast(sales=str(tmp_path / "sales.parquet"), horizon=4, model="auto", calendar="",
             future="", backtest_windows=0, alpha=0.1, n_jobs=1, freq="", gaps="zero", exog="",
             out=str(out), quiet=True, engine="")
    chosen = pd.read_parquet(out)
    assert len(chosen) == 5 * 4 and set(chosen[MODEL_COL]) <= {"arima", "gbm", "average"}
    with pytest.raises(ConfigError, match="gbm, auto"):
        forecast(sales=str(tmp_path / "sales.parquet"), horizon=4, model="prophet", calendar="",
                 future="", backtest_windows=0, alpha=0.1, n_jobs=1, freq="", gaps="", exog="",
             out=str(out), quiet=True, engine="")
