"Demand forecaster and baselines: interface, drivers, fallbacks, parallel fits, hierarchy."
import numpy as np
import pandas as pd
import pytest

from retail_workbench.core import (DATE_COL, ITEM_COL, NotFittedError, PRICE_COL, PROMO_COL,
                                   SchemaError, STORE_COL, UNITS_COL, DataError)
from retail_workbench.forecast.demand import (FORECAST_COL, LOWER_COL, MODEL_COL, UPPER_COL,
                                       DemandForecaster, MovingAverage, SeasonalNaive,
                                       aggregate_forecasts, complete_series)
from retail_workbench.data.datasets import sales_from_lines


def simulated(n_days=300, items=(1,), elasticity=-2.0, promo_lift=1.5, seed=0, store=1):
    "Daily Poisson sales with a weekly cycle, a moving price and promotions; true parameters known."
    rng = np.random.default_rng(seed)
    frames = []
    for item in items:
        dates = pd.date_range("2022-01-03", periods=n_days)
        price = 5 * np.exp(rng.normal(0, 0.12, n_days))
        promo = rng.random(n_days) < 0.1
        weekly = 0.4 * np.sin(2 * np.pi * np.arange(n_days) / 7)
        mean = 30 * np.exp(weekly) * (price / 5) ** elasticity * promo_lift ** promo
        frames.append(pd.DataFrame({DATE_COL: dates, STORE_COL: store, ITEM_COL: item,
                                    UNITS_COL: rng.poisson(mean), PRICE_COL: price,
                                    PROMO_COL: promo}))
    return pd.concat(frames, ignore_index=True)


def test_seasonal_naive_and_moving_average_share_the_interface():
    sales = simulated(n_days=70)
    for model in (SeasonalNaive(), MovingAverage(window=14)):
        pred = model.fit(sales).predict(horizon=10)
        assert list(pred.columns) == [DATE_COL, STORE_COL, ITEM_COL, FORECAST_COL, LOWER_COL,
                                      UPPER_COL, MODEL_COL]
        assert len(pred) == 10 and pred[DATE_COL].min() == sales[DATE_COL].max() + pd.Timedelta(days=1)
        assert (pred[LOWER_COL] <= pred[FORECAST_COL]).all()
        assert (pred[FORECAST_COL] <= pred[UPPER_COL]).all()
    last_week = sales[UNITS_COL].to_numpy()[-7:]
    np.testing.assert_allclose(SeasonalNaive().fit(sales).predict(horizon=7)[FORECAST_COL],
                               last_week)
    ma = MovingAverage(window=14).fit(sales).predict(horizon=3)[FORECAST_COL]
    np.testing.assert_allclose(ma, sales[UNITS_COL].to_numpy()[-14:].mean())


def test_forecast_responds_to_planned_price_as_the_true_elasticity():
    sales = simulated(n_days=300, elasticity=-2.0)
    model = DemandForecaster(n_jobs=1, yearly_order=0).fit(sales)
    assert model.fit_report_[MODEL_COL].tolist() == ["arima"]
    dates = pd.date_range(sales[DATE_COL].max() + pd.Timedelta(days=1), periods=14)
    plan = pd.DataFrame({DATE_COL: dates, STORE_COL: 1, ITEM_COL: 1, PRICE_COL: 5.0,
                         PROMO_COL: False})
    at_5 = model.predict(future=plan)[FORECAST_COL].sum()
    at_6 = model.predict(future=plan.assign(price=6.0))[FORECAST_COL].sum()
    on_promo = model.predict(future=plan.assign(promo=True))[FORECAST_COL].sum()
    assert at_6 / at_5 == pytest.approx(1.2 ** -2.0, rel=0.1)
    assert on_promo / at_5 == pytest.approx(1.5, rel=0.15)


def test_beats_seasonal_naive_and_intervals_cover():
    sales = simulated(n_days=330, seed=1)
    train, test = sales.iloc[:302], sales.iloc[302:]
    future = test.drop(columns=[UNITS_COL])
    arima = DemandForecaster(n_jobs=1).fit(train).predict(future=future)
    naive = SeasonalNaive().fit(train).predict(future=future)
    truth = test[UNITS_COL].to_numpy()
    mae_arima = np.abs(arima[FORECAST_COL].to_numpy() - truth).mean()
    mae_naive = np.abs(naive[FORECAST_COL].to_numpy() - truth).mean()
    assert mae_arima < 0.8 * mae_naive
    inside = (truth >= arima[LOWER_COL]) & (truth <= arima[UPPER_COL])
    assert 0.7 <= inside.mean() <= 1.0


def test_failing_series_falls_back_with_reason_and_batch_goes_on():
    good = simulated(n_days=120, items=(1,))
    silent = good.assign(item_id=2, units=0)
    short = simulated(n_days=30, items=(3,)).assign(date=lambda d: d[DATE_COL] + pd.Timedelta(days=90))
    model = DemandForecaster(n_jobs=1).fit(pd.concat([good, silent, short]))
    report = model.fit_report_.set_index(ITEM_COL)
    assert report.loc[1, MODEL_COL] == "arima"
    assert report.loc[2, MODEL_COL] == "seasonal_naive" and "no sales" in report.loc[2, "reason"]
    assert report.loc[3, MODEL_COL] == "seasonal_naive" and "min_history" in report.loc[3, "reason"]
    pred = model.predict(horizon=5)
    assert len(pred) == 15 and pred[FORECAST_COL].notna().all()


@pytest.mark.slow
def test_parallel_fit_matches_serial():
    sales = simulated(n_days=70, items=tuple(range(1, 17)))   # 16: enough to use workers
    serial = DemandForecaster(n_jobs=1).fit(sales).predict(horizon=7)
    parallel = DemandForecaster(n_jobs=2).fit(sales).predict(horizon=7)
    pd.testing.assert_frame_equal(serial, parallel)


def test_string_ids_and_hierarchy_sums():
    sales = pd.concat([simulated(n_days=60, items=(1,), store=1),
                       simulated(n_days=60, items=(2,), store=1, seed=2),
                       simulated(n_days=60, items=(1,), store=2, seed=3)])
    sales[STORE_COL] = "s" + sales[STORE_COL].astype(str)
    sales[ITEM_COL] = "sku-" + sales[ITEM_COL].astype(str)
    pred = SeasonalNaive().fit(sales).predict(horizon=7)
    by_store = aggregate_forecasts(pred, "store")
    total = aggregate_forecasts(pred, "total")
    assert set(by_store[STORE_COL]) == {"s1", "s2"}
    assert total[FORECAST_COL].sum() == pytest.approx(pred[FORECAST_COL].sum())
    catalog = pd.DataFrame({ITEM_COL: ["sku-1", "sku-2"], "category": ["a", "b"]})
    by_category = aggregate_forecasts(pred, "category", catalog)
    assert by_category.groupby("category")[FORECAST_COL].sum().sum() == pytest.approx(
        pred[FORECAST_COL].sum())


def test_gaps_are_zero_sales_and_bad_input_is_named():
    sales = simulated(n_days=10).drop(index=[3, 4])
    panel = complete_series(sales)
    assert len(panel) == 10 and panel[UNITS_COL].iloc[3] == 0
    with pytest.raises(SchemaError, match="column 'units'"):
        SeasonalNaive().fit(sales.drop(columns=[UNITS_COL]))
    with pytest.raises(DataError, match="negative"):
        SeasonalNaive().fit(sales.assign(units=-1))
    with pytest.raises(NotFittedError):
        DemandForecaster().predict(horizon=3)


def test_sales_from_lines_drops_returns_and_weights_price():
    lines = pd.DataFrame({"ts": ["2024-01-01 10:00", "2024-01-01 12:00", "2024-01-01 13:00"],
                          "sku": ["a", "a", "a"], "qty": [2, 2, -5], "p": [1.0, 2.0, 1.0]})
    daily = sales_from_lines(lines, "ts", "sku", "qty", "p")
    assert daily[UNITS_COL].tolist() == [4.0]
    assert daily[PRICE_COL].iloc[0] == pytest.approx(1.5)
