"""Weekly and monthly demand forecasting: accuracy against seasonal naive and interval coverage.

Data (rolling-origin backtests, horizon and step in periods of each table):
- synthetic weekly: the synthetic world (3 years, 8 item-store series) summed into weeks starting
  on Monday (`aggregate_sales(sales, "W-MON")`); 3 cutoffs, 8 weeks ahead;
- synthetic monthly: the synthetic world (6 years, 8 series) summed into calendar months (`MS`);
  3 cutoffs, 6 months ahead;
- Online Retail weekly: the 10 products with the most selling days (UCI Online Retail, Dec 2010 to
  Dec 2011), summed into weeks; 3 cutoffs, 4 weeks ahead;
- Online Retail monthly: the same products summed into months (the part month December 2011 left
  out); 2 cutoffs, 2 months ahead: 9 to 11 months of history, shorter than a season;
- Complete Journey weekly: the 10 busiest product categories of the dunnhumby transactions sample,
  dated by its own `week` column (week 1 = the week starting Monday 2016-12-26); 3 cutoffs, 4 weeks;
  once more with two exogenous drivers from the promotions sample, the category's share of
  product-store pairs on in-store display and in the mailer that week (known future: planned).
Models: `DemandForecaster`, and the baselines seasonal naive (season 52 weeks or 12 months; the
naive last value when the history is shorter than a season and one) and a 4-period moving average.
MASE scales use the same season (lag 1 on histories shorter than a season). The reference is
seasonal naive measured in the same run; the ratio is arima MASE / seasonal-naive MASE.
Real datasets are skipped when ../shared/data is absent. RWB_BENCH_CASES picks cases by name.
"""
import os
import time

import pandas as pd
from _common import record

os.environ.setdefault("RWB_PROGRESS", "0")

from retail_workbench.data.datasets import example_sales, sales_from_lines, shared_data_dir  # noqa: E402
from retail_workbench.data.synth import make_world  # noqa: E402
from retail_workbench.forecast.backtest import backtest, summarise_backtest  # noqa: E402
from retail_workbench.forecast.demand import (DemandForecaster, MovingAverage,  # noqa: E402
                                              SeasonalNaive, aggregate_sales, infer_frequency)


def synthetic(alias: str, years: int):
    world = make_world(n_users=100, n_items=24, n_days=years * 365, n_stores=1, seed=3,
                       n_sales_items=8)
    return aggregate_sales(world.sales, alias), world.calendar


def online_retail(alias: str):
    data = example_sales("online_retail", n_series=10)
    sales = data["sales"]
    if alias == "MS":
        sales = sales[sales["date"] < "2011-12-01"]
    return aggregate_sales(sales, alias), data["calendar"]


def complete_journey_display():
    "The Complete Journey weekly table with each category's share of products on display / in the mailer."
    sales, calendar = complete_journey()
    folder = shared_data_dir("")
    promotions = pd.read_parquet(folder / "completejourney_promotions_sample.parquet")
    products = pd.read_parquet(folder / "completejourney_products.parquet")
    promotions = promotions.merge(products[["product_id", "product_category"]], on="product_id")
    promotions = promotions.assign(
        date=pd.Timestamp("2016-12-26") + pd.to_timedelta(7 * (promotions["week"] - 1), unit="D"),
        display=promotions["display_location"].astype(str) != "0",
        mailer=promotions["mailer_location"].astype(str) != "0")
    shares = (promotions.groupby(["product_category", "date"])[["display", "mailer"]].mean()
              .reset_index().rename(columns={"product_category": "item_id"}))
    sales = sales.merge(shares, on=["item_id", "date"], how="left")
    sales[["display", "mailer"]] = sales[["display", "mailer"]].fillna(0.0)
    return sales, calendar


def complete_journey():
    folder = shared_data_dir("")
    lines = pd.read_parquet(folder / "completejourney_transactions_sample.parquet")
    products = pd.read_parquet(folder / "completejourney_products.parquet")
    lines = lines.merge(products[["product_id", "product_category"]], on="product_id")
    lines = lines.dropna(subset=["product_category"])
    lines = lines.assign(week_start=pd.Timestamp("2016-12-26")
                         + pd.to_timedelta(7 * (lines["week"] - 1), unit="D"),
                         unit_price=lines["sales_value"] / lines["quantity"],
                         discounted=lines["retail_disc"] > 0)
    sales = sales_from_lines(lines, "week_start", "product_category", "quantity", "unit_price",
                             promo="discounted")
    busiest = sales.groupby("item_id")["date"].nunique().nlargest(10).index
    return sales[sales["item_id"].isin(busiest)], None


CASES = {
    "synthetic weekly": (lambda: synthetic("W-MON", 3), 8, 3),
    "synthetic monthly": (lambda: synthetic("MS", 6), 6, 3),
    "Online Retail weekly": (lambda: online_retail("W-MON"), 4, 3),
    "Online Retail monthly": (lambda: online_retail("MS"), 2, 2),
    "Complete Journey weekly": (complete_journey, 4, 3),
    "Online Retail monthly, min_history=6": (lambda: online_retail("MS"), 2, 2),
    "Complete Journey weekly, exog display+mailer": (complete_journey_display, 4, 3),
}
ONLY = os.environ.get("RWB_BENCH_CASES", "")  # run only the cases whose name contains this


def main():
    have_real = (shared_data_dir("") / "online_retail.parquet").exists()
    rows = []
    for name, (make, horizon, windows) in CASES.items():
        if ONLY and ONLY not in name:
            continue
        if not name.startswith("synthetic") and not have_real:
            print(f"{name}: skipped (no shared data)")
            continue
        started = time.perf_counter()
        sales, calendar = make()
        freq = infer_frequency(sales["date"])
        options = {"min_history": 6} if "min_history=6" in name else {}
        if "exog" in name:
            options = {"exog": ("display", "mailer")}
        models = {"arima": DemandForecaster(n_jobs=1, **options), "seasonal_naive": SeasonalNaive(),
                  "moving_average": MovingAverage(window=4)}
        results = backtest(models, sales, calendar, horizon=horizon, n_windows=windows,
                           step=horizon)
        summary = summarise_backtest(results).set_index("model")
        fitted_as = results[results["model"] == "arima"]["fitted_as"]
        final = DemandForecaster(n_jobs=1, **options).fit(sales, calendar)
        reasons = sorted(set(final.fit_report_["reason"]) - {""})
        row = {"data": name, "freq": freq.alias, "season": freq.season,
               "periods": sales["date"].nunique(), "series": int(summary.loc["arima", "n_series"]),
               "arima_mase": summary.loc["arima", "mase"],
               "naive_mase": summary.loc["seasonal_naive", "mase"],
               "ma_mase": summary.loc["moving_average", "mase"],
               "ratio": summary.loc["arima", "mase"] / summary.loc["seasonal_naive", "mase"],
               "beats_naive": summary.loc["arima", "beats_seasonal_naive"],
               "arima_coverage": summary.loc["arima", "coverage"],
               "backtest_fallback_share": float((fitted_as != "arima").mean()),
               "final_fallbacks": int((final.fit_report_["model"] != "arima").sum()),
               "mase_season": sorted(set(results["season"])),
               "seconds": time.perf_counter() - started}
        rows.append(row)
        print(name, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()},
              reasons[:2], flush=True)
        record("bench_forecast_frequency", **{k: v for k, v in row.items() if k != "mase_season"})
    print(pd.DataFrame(rows).drop(columns=["seconds"]).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
