"Daily, weekly and monthly sales tables: frequency inferred, seasons, gaps, exogenous drivers."
import numpy as np
import pandas as pd
import pytest

from retail_workbench.core import (DATE_COL, ITEM_COL, PRICE_COL, PROMO_COL, STORE_COL,
                                   UNITS_COL, ConfigError, DataError, SchemaError)
from retail_workbench.forecast.backtest import backtest, summarise_backtest
from retail_workbench.forecast.demand import (DemandForecaster, SeasonalNaive, aggregate_sales,
                                              complete_series, infer_frequency)

YEAR = {"D": 365.25, "W-WED": 365.25 / 7, "MS": 12.0, "ME": 12.0}
START = {"D": "2022-01-03", "W-WED": "2020-01-01", "MS": "2018-01-01", "ME": "2018-01-31"}


def simulated(alias, n_periods, n_series=3, seed=0, level=40.0, temperature_effect=0.0):
    "Poisson sales with a yearly (and, daily, a weekly) cycle, price and promotions; truth known."
    rng = np.random.default_rng(seed)
    dates = pd.date_range(START[alias], periods=n_periods, freq=alias)
    t = np.arange(n_periods)
    temperature = rng.normal(0, 1, n_periods)
    frames = []
    for item in range(n_series):
        price = 5 * np.exp(rng.normal(0, 0.1, n_periods))
        promo = rng.random(n_periods) < 0.1
        cycle = 0.5 * np.cos(2 * np.pi * t / YEAR[alias] - item)
        if alias == "D":
            cycle = cycle + 0.3 * np.sin(2 * np.pi * t / 7)
        mean = (level * np.exp(cycle + temperature_effect * temperature) * (price / 5) ** -1.5
                * 1.4 ** promo)
        frames.append(pd.DataFrame({DATE_COL: dates, STORE_COL: 1, ITEM_COL: item,
                                    UNITS_COL: rng.poisson(mean), PRICE_COL: price,
                                    PROMO_COL: promo, "temperature": temperature}))
    return pd.concat(frames, ignore_index=True)


CASES = [  # alias, periods of history, horizon, season, level
    ("D", 400, 14, 7, 40.0),
    ("W-WED", 160, 8, 52, 60.0),
    ("MS", 72, 6, 12, 300.0),
    ("ME", 72, 6, 12, 300.0),
]


@pytest.mark.parametrize("alias,n_periods,horizon,season,level", CASES)
def test_each_frequency_is_inferred_and_beats_seasonal_naive(alias, n_periods, horizon, season,
                                                             level):
    sales = simulated(alias, n_periods, level=level)
    freq = infer_frequency(sales[DATE_COL])
    assert (freq.alias, freq.season) == (alias, season)
    models = {"arima": DemandForecaster(n_jobs=1, maxiter=15), "seasonal_naive": SeasonalNaive()}
    results = backtest(models, sales, horizon=horizon, n_windows=2, step=horizon)
    assert set(results["season"]) == {season}                # MASE at the table's season
    assert set(results["step"]) == set(range(1, horizon + 1))  # the horizon counts periods
    arima = results[results["model"] == "arima"]
    assert (arima["fitted_as"] == "arima").all()              # no fallback caused by frequency
    summary = summarise_backtest(results).set_index("model")
    assert summary.loc["arima", "mase"] < summary.loc["seasonal_naive", "mase"], summary
    assert 0.7 <= summary.loc["arima", "coverage"] <= 1.0, summary


def test_a_weekly_forecast_steps_in_weeks_and_flags_holiday_weeks():
    sales = simulated("W-WED", 120, n_series=1)
    holiday_day = pd.Timestamp("2021-12-25")              # a Saturday, in the week of Wed 22nd
    calendar = pd.DataFrame({DATE_COL: pd.date_range("2019-12-01", "2023-01-31")})
    calendar["holiday"] = calendar[DATE_COL] == holiday_day
    model = DemandForecaster(n_jobs=1).fit(sales, calendar)
    assert model.freq_.alias == "W-WED" and model.gaps_ == "missing"
    state = next(iter(model.series_.values()))
    assert "holiday" in state["columns"] and "week_sin1" not in state["columns"]
    pred = model.predict(horizon=3)
    assert pred[DATE_COL].diff().dropna().dt.days.tolist() == [7, 7]
    assert pred[DATE_COL].iloc[0] == sales[DATE_COL].max() + pd.Timedelta(days=7)


def test_missing_weeks_are_interpolated_for_fitting_and_never_scored():
    sales = simulated("W-WED", 150, n_series=2)
    weeks = np.sort(sales[DATE_COL].unique())
    dropped = weeks[[40, 41, 145, 147]]                    # two in training, two in the test
    holey = sales[~sales[DATE_COL].isin(dropped)]
    fitted = DemandForecaster(n_jobs=1, gaps="missing").fit(holey)
    assert fitted.fit_report_["n_missing"].tolist() == [4, 4]
    assert (fitted.fit_report_["model"] == "arima").all()
    results = backtest({"naive": SeasonalNaive()}, holey, horizon=8, n_windows=1, step=8)
    assert not results[DATE_COL].isin(dropped).any()
    assert len(results) == 2 * (8 - 2)
    zeros = backtest({"naive": SeasonalNaive()}, holey, horizon=8, n_windows=1, step=8,
                     gaps="zero")
    assert len(zeros) == 2 * 8 and (zeros.loc[zeros[DATE_COL].isin(dropped), UNITS_COL] == 0).all()
    panel = complete_series(holey, gaps="missing")
    assert panel[UNITS_COL].isna().sum() == 2 * 4
    with pytest.raises(ConfigError, match="gaps='none' is not allowed"):
        complete_series(holey, gaps="none")


def test_exogenous_columns_from_the_sales_table_or_the_calendar():
    sales = simulated("W-WED", 150, n_series=2, temperature_effect=0.5)
    train = sales[sales[DATE_COL] <= sales[DATE_COL].unique()[-9]]
    test = sales[sales[DATE_COL] > train[DATE_COL].max()]
    truth = test[UNITS_COL].to_numpy()

    def mae(model, future, calendar=None):
        fitted = model.fit(train, calendar)
        pred = fitted.predict(future=future, calendar=calendar)
        return np.abs(pred["forecast"].to_numpy() - truth).mean()

    future = test.drop(columns=[UNITS_COL])
    without = mae(DemandForecaster(n_jobs=1), future)
    with_exog = mae(DemandForecaster(n_jobs=1, exog=["temperature"]), future)
    assert with_exog < 0.8 * without, (with_exog, without)
    days = pd.date_range("2019-12-25", "2023-06-30")           # the same driver as a daily calendar
    weekly = sales.drop_duplicates(DATE_COL).set_index(DATE_COL)["temperature"]
    calendar = pd.DataFrame({DATE_COL: days,
                             "heat": weekly.reindex(days, method="ffill").to_numpy()})
    from_calendar = mae(DemandForecaster(n_jobs=1, exog=["heat"]),
                        future.drop(columns=["temperature"]), calendar)
    assert from_calendar < 0.8 * without, (from_calendar, without)
    with pytest.raises(SchemaError, match="exogenous column 'snap'"):
        DemandForecaster(n_jobs=1, exog=["snap"]).fit(train)


def test_the_sales_tables_event_reaches_the_forecaster():
    sales = simulated("D", 200, n_series=1)
    sales["event"] = np.where(sales[DATE_COL].dt.day == 15, "payday", "")
    sales.loc[sales["event"] == "payday", UNITS_COL] *= 3
    state = next(iter(DemandForecaster(n_jobs=1).fit(sales).series_.values()))
    assert "event_payday" in state["columns"]
    beta = dict(zip(state["columns"], state["beta"]))
    assert beta["event_payday"] > 0.5                      # log(3) = 1.1


def test_irregular_or_mismatched_dates_are_clear_errors():
    irregular = simulated("D", 30, n_series=1).iloc[::3]
    irregular = irregular.assign(date=irregular[DATE_COL] + pd.to_timedelta(
        np.arange(len(irregular)) % 2, unit="D"))
    with pytest.raises(DataError, match="dates are irregular"):
        DemandForecaster(n_jobs=1).fit(irregular)
    weekly = simulated("W-WED", 40, n_series=1)
    with pytest.raises(DataError, match="not weekly dates of 'W-SUN'"):
        SeasonalNaive(freq="W-SUN").fit(weekly)
    with pytest.raises(ConfigError, match="freq='H' is not supported"):
        SeasonalNaive(freq="H").fit(weekly)
    daily = simulated("D", 30, n_series=1)
    monthly = aggregate_sales(daily, "MS")
    assert infer_frequency(monthly[DATE_COL]).alias == "MS"
    assert monthly[UNITS_COL].sum() == daily[UNITS_COL].sum()
