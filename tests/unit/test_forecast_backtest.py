"Forecast metrics, rolling origins and backtests."
import inspect

import numpy as np
import pandas as pd
import pytest

from retail_workbench.core import DATE_COL, ITEM_COL, STORE_COL, UNITS_COL, ConfigError
from retail_workbench.forecast.demand import MovingAverage, SeasonalNaive
from retail_workbench.forecast.backtest import (FORECAST_METRICS, backtest, mase_scale,
                                                rolling_origins, score_backtest,
                                                summarise_backtest)


def test_metrics_share_one_signature_and_known_values():
    signatures = {tuple(inspect.signature(metric.function).parameters)
                  for metric in FORECAST_METRICS.values()}
    assert signatures == {("actual", "forecast", "lower", "upper", "scale")}
    actual, forecast = np.array([10.0, 0, 5]), np.array([8.0, 1, 5])
    assert FORECAST_METRICS["mae"](actual, forecast) == pytest.approx(1.0)
    assert FORECAST_METRICS["rmse"](actual, forecast) == pytest.approx(np.sqrt(5 / 3))
    assert FORECAST_METRICS["mape"](actual, forecast) == pytest.approx(0.1)
    assert FORECAST_METRICS["smape"](actual, forecast) == pytest.approx((4 / 18 + 2) / 3)
    assert FORECAST_METRICS["wape"](actual, forecast) == pytest.approx(3 / 15)
    assert FORECAST_METRICS["mase"](actual, forecast, scale=2.0) == pytest.approx(0.5)
    assert FORECAST_METRICS["coverage"](actual, forecast, forecast - 1.5, forecast + 1.5) == \
        pytest.approx(2 / 3)
    assert mase_scale([1, 1, 3, 3], season=2) == pytest.approx(2.0)
    with pytest.raises(ConfigError):
        FORECAST_METRICS["coverage"](actual, forecast)


def test_rolling_origins_leave_the_horizon_after_the_last_cutoff():
    cutoffs = rolling_origins("2024-12-31", horizon=28, n_windows=3, step=7)
    assert cutoffs[-1] == pd.Timestamp("2024-12-03")
    assert np.diff(cutoffs).tolist() == [pd.Timedelta(days=7)] * 2
    with pytest.raises(ConfigError):
        rolling_origins("2024-12-31", horizon=0)


def test_backtest_scores_perfect_weekly_pattern():
    dates = pd.date_range("2024-01-01", periods=84)
    pattern = np.tile([1.0, 2, 3, 4, 5, 6, 7], 12)
    sales = pd.DataFrame({DATE_COL: dates, STORE_COL: 1, ITEM_COL: 1, UNITS_COL: pattern,
                          "price": 1.0})
    results = backtest({"seasonal_naive": SeasonalNaive(), "moving_average": MovingAverage()},
                       sales, horizon=14, n_windows=2, step=7)
    assert set(results["cutoff"]) == set(rolling_origins(dates[-1], 14, 2, 7))
    summary = summarise_backtest(results).set_index("model")
    assert summary.loc["seasonal_naive", "mae"] == 0
    assert summary.loc["moving_average", "mae"] > 1.0
    assert np.isnan(summary.loc["moving_average", "mase"])   # a perfect pattern: scale 0
    assert summary.loc["seasonal_naive", "coverage"] == 1.0
    scores = score_backtest(results)
    assert len(scores) == 2 and set(scores["model"]) == {"seasonal_naive", "moving_average"}
