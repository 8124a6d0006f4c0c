"Elasticity estimation (ground truth), shrinkage, diagnostics, optimiser, markdowns, what-if."
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retail_workbench.core import (DATE_COL, ITEM_COL, PRICE_COL, PROMO_COL, STORE_COL,
                                   UNITS_COL, ConfigError, SchemaError)
from retail_workbench.forecast.pricing import (compare_scenarios, estimate_elasticities, ladder_prices,
                                      markdown_plan, optimise_prices, shrink_estimates)

TRUE = {1: -0.6, 2: -1.2, 3: -1.8, 4: -2.5}


def panel(n_days=365, flat_item=None, seed=0):
    "Two stores, four items with known elasticities, weekly cycle, promotions, gamma noise."
    rng = np.random.default_rng(seed)
    frames = []
    for store in (1, 2):
        for item, elasticity in TRUE.items():
            dates = pd.date_range("2023-01-01", periods=n_days)
            steps = np.cumsum(rng.normal(0, 0.1, n_days) * (rng.random(n_days) < 0.02))
            promo = rng.random(n_days) < 0.08
            price = 4.0 * np.exp(steps) * np.where(promo, 0.8, 1.0)
            if item == flat_item:
                price = np.full(n_days, 4.0)
            mean = (20 * np.exp(0.3 * np.cos(2 * np.pi * np.arange(n_days) / 7))
                    * (price / 4.0) ** elasticity * np.where(promo, 1.3, 1.0) * store)
            units = rng.poisson(mean * rng.gamma(20, 1 / 20, n_days))
            frames.append(pd.DataFrame({DATE_COL: dates, STORE_COL: store, ITEM_COL: item,
                                        UNITS_COL: units, PRICE_COL: price, PROMO_COL: promo}))
    return pd.concat(frames, ignore_index=True)


def test_elasticities_recover_truth_with_honest_intervals():
    table = estimate_elasticities(panel()).set_index(ITEM_COL)
    true = pd.Series(TRUE)
    errors = table["elasticity"] - true
    assert errors.abs().max() < 0.3
    inside = (table["ci_low"] <= true) & (true <= table["ci_high"])
    assert inside.sum() >= 3
    assert table["trustworthy"].all()


def test_flat_price_is_flagged_and_shrunk_to_the_group():
    table = estimate_elasticities(panel(flat_item=4)).set_index(ITEM_COL)
    assert not table.loc[4, "trustworthy"]
    assert "too little price variation" in table.loc[4, "diagnosis"]
    others = table.drop(index=4)
    assert others["shrunk"].min() - 0.01 <= table.loc[4, "shrunk"] <= others["shrunk"].max() + 0.01


def test_wrong_sign_is_diagnosed():
    sales = panel()
    sales.loc[sales[ITEM_COL] == 1, UNITS_COL] = np.round(
        10 * sales.loc[sales[ITEM_COL] == 1, PRICE_COL]).astype(int)   # demand rises with price
    table = estimate_elasticities(sales).set_index(ITEM_COL)
    assert "wrong sign" in table.loc[1, "diagnosis"]


def test_item_store_level_and_errors():
    table = estimate_elasticities(panel(n_days=200), level="item_store")
    assert len(table) == 8 and set(table[STORE_COL]) == {1, 2}
    with pytest.raises(ConfigError, match="level="):
        estimate_elasticities(panel(n_days=30), level="brand")
    with pytest.raises(SchemaError, match="'price'"):
        estimate_elasticities(panel(n_days=30).drop(columns=[PRICE_COL]))


def test_shrinkage_weights_follow_precision():
    out = shrink_estimates(pd.Series([-1.0, -2.0, -1.5, 0.5]), pd.Series([0.1, 0.1, 0.1, 3.0]),
                           pd.Series(["g"] * 4))
    assert out["weight"].iloc[3] < 0.05 < out["weight"].iloc[0]
    assert out["shrunk"].iloc[3] == pytest.approx(-1.5, abs=0.1)


ITEMS = pd.DataFrame({ITEM_COL: ["a", "b", "c"], PRICE_COL: [10.0, 10.0, 3.0],
                      "units": [100.0, 100.0, 50.0], "elasticity": [-0.5, -3.0, -1.5],
                      "cost": [5.0, 5.0, 2.5]})


def test_optimiser_respects_every_constraint():
    plan = optimise_prices(ITEMS, "margin", bounds=(0.5, 1.5), max_change=0.1, min_margin=0.2,
                           ladder=(0.49, 0.99))
    change = plan["new_price"] / plan["current_price"] - 1
    assert (change.abs() <= 0.1 + 1e-9).all()
    margin = (plan["new_price"] - ITEMS["cost"]) / plan["new_price"]
    assert (margin[plan["note"] != "no allowed price point: kept current price"] >= 0.2).all()
    cents = np.round(plan["new_price"] * 100) % 100
    assert set(cents[plan["note"] == "limited by max_change"]) <= {49, 99}
    assert plan.loc[0, "new_price"] > 10 and plan.loc[1, "new_price"] < 10
    assert (plan["revenue_after"] - ITEMS["cost"] * plan["units_after"]
            >= plan["margin_before"] - 1e-9).all()   # never worse than today under the model
    # item c: cost 2.5 at 3.0 is a 17% margin; the floor 3.125 is above the +10% cap: kept
    assert plan.loc[2, "note"].startswith("no allowed price point")


def test_margin_optimum_matches_the_formula():
    plan = optimise_prices(ITEMS.iloc[[1]], "margin", bounds=(0.5, 1.0), max_change=0.5)
    assert plan["new_price"].iloc[0] == pytest.approx(5.0 * 3.0 / 2.0, abs=0.01)
    assert ladder_prices(0.9, 1.2, 0.1).tolist() == [0.9, 1.0, 1.1, 1.2]


def test_optimised_prices_beat_current_under_the_true_demand():
    estimated = ITEMS.assign(elasticity=[-0.7, -2.6, -1.3])   # estimates with errors
    plan = optimise_prices(estimated, max_change=0.15)
    view = compare_scenarios(ITEMS, {"current": 1.0, "optimised": plan},
                             elasticity=ITEMS.set_index(ITEM_COL)["elasticity"])
    revenue = view.set_index("scenario")["revenue"]
    assert revenue["optimised"] > revenue["current"]


def test_markdown_plan_clears_stock_with_monotone_discounts():
    plan = markdown_plan(stock=400, price=10.0, daily_units=5, elasticity=-2.5,
                         start="2024-01-01", end="2024-02-11", period_days=7)
    assert plan.attrs["cleared"] and plan["discount"].is_monotonic_increasing
    assert plan["units"].sum() == pytest.approx(400, rel=0.02)
    easy = markdown_plan(stock=50, price=10.0, daily_units=5, elasticity=-2.5,
                         start="2024-01-01", end="2024-02-11")
    assert easy["discount"].max() == 0.0      # sells out at full price: no markdown
    with pytest.raises(ConfigError, match="markdown plans"):
        markdown_plan(100, 10.0, 1, -2.0, "2024-01-01", "2024-12-31", period_days=1)


# --- panels: store fixed effects, promotion controls, cross-price terms, clustered errors ---
from retail_workbench.core import CATEGORY_COL
from retail_workbench.forecast.pricing import (compare_specifications, complete_journey_panel,
                                               estimate_panel_elasticities, synthetic_price_panel)


def test_panel_recovers_own_and_cross_elasticities_with_honest_intervals():
    own_hit, cross_hit, own_err, cross_err = [], [], [], []
    for seed in range(16):   # 16 worlds x 12 brands: 192 own and 192 cross values
        panel, truth = synthetic_price_panel(n_stores=15, n_categories=4, n_periods=52,
                                             seed=200 + seed)
        est = estimate_panel_elasticities(panel, compare=False).set_index(ITEM_COL)
        true = truth.reindex(est.index)
        own_err += list(est["elasticity"] - true["own_elasticity"])
        cross_err += list(est["cross_elasticity"] - true["cross_elasticity"])
        own_hit += list(est["ci_low"].le(true["own_elasticity"])
                        & est["ci_high"].ge(true["own_elasticity"]))
        cross_hit += list(est["cross_ci_low"].le(true["cross_elasticity"])
                          & est["cross_ci_high"].ge(true["cross_elasticity"]))
    assert np.mean(np.abs(own_err)) < 0.15 and np.mean(np.abs(cross_err)) < 0.15
    assert 0.90 <= np.mean(own_hit) <= 0.97
    assert 0.90 <= np.mean(cross_hit) <= 0.97


def test_simpler_specifications_are_biased_on_the_synthetic_panel():
    panel, truth = synthetic_price_panel(seed=7)
    specs = compare_specifications(panel)
    error = specs["elasticity"] - truth["own_elasticity"].reindex(specs[ITEM_COL]).to_numpy()
    mean_error = error.groupby(specs["spec"]).mean()
    assert mean_error["fe"] < -0.2                     # promotions' lift read as price response
    assert abs(mean_error["fe_promo_cross"]) < 0.1
    full = specs[specs["spec"] == "fe_promo_cross"]
    assert full["trustworthy"].all()


def test_panel_diagnostics_flag_thin_and_contradicting_estimates():
    panel, _ = synthetic_price_panel(n_stores=12, n_periods=60, seed=3)
    few = panel[(panel[ITEM_COL] != "b0") | (panel[STORE_COL] < 4)]
    table = estimate_panel_elasticities(few, max_spec_gap=0.05).set_index(ITEM_COL)
    assert "few stores" in table.loc["b0", "diagnosis"]
    assert table["diagnosis"].str.contains("disagrees with the simpler specification").any()
    single = estimate_panel_elasticities(panel[panel[STORE_COL] == 0], cluster="none")
    assert single["cross_elasticity"].notna().all() and single["n_clusters"].eq(1).all()
    with pytest.raises(ConfigError, match="cluster="):
        estimate_panel_elasticities(panel, cluster="week")
    with pytest.raises(SchemaError, match="'units'"):
        estimate_panel_elasticities(panel.drop(columns=[UNITS_COL]))


def test_daily_estimator_refuses_a_weekly_table():
    panel, _ = synthetic_price_panel(n_stores=2, n_periods=20, seed=0)
    with pytest.raises(ConfigError, match="estimate_panel_elasticities"):
        estimate_elasticities(panel)


def test_auto_ladder_follows_the_price_scale():
    cents = ladder_prices(0.036, 0.044, "auto", reference=0.04)
    assert len(cents) > 50 and cents.min() >= 0.036 and cents.max() <= 0.044
    big = ladder_prices(360, 440, "auto", reference=400)
    assert set(np.round(big * 100) % 1000) == {999}   # ... 9.99 endings
    assert len(ladder_prices(0.036, 0.044, None)) == 1  # a cent ladder: only 0.04


def test_binding_constraint_is_named():
    items = pd.DataFrame({ITEM_COL: ["a", "b"], PRICE_COL: [0.04, 0.05], "units": [100.0, 100.0],
                          "elasticity": [-3.0, -3.0]})
    by_cent = optimise_prices(items, max_change=0.1)
    assert by_cent["binding"].tolist() == ["ladder", "ladder"]
    by_scale = optimise_prices(items, max_change=0.1, ladder="auto")
    assert by_scale["binding"].tolist() == ["max_change", "max_change"]
    assert by_scale["new_price"].tolist() == [0.036, 0.045]
    capped = optimise_prices(items, max_change=0.5, bounds=(0.8, 1.2), ladder="none")
    assert capped["binding"].tolist() == ["bounds", "bounds"]


def test_joint_pricing_beats_item_by_item_under_cross_effects():
    rivals = pd.DataFrame({ITEM_COL: ["a", "b", "c"], PRICE_COL: [5.0, 4.0, 6.0],
                           "units": [100.0, 80.0, 60.0], "elasticity": [-2.5, -2.0, -3.0],
                           "cost": [2.5, 1.5, 3.5], CATEGORY_COL: "k",
                           "cross_elasticity": [1.8, 1.5, 2.2]})
    alone = optimise_prices(rivals.drop(columns="cross_elasticity"), "margin", max_change=0.3,
                            ladder="none")
    jointly = optimise_prices(rivals, "margin", max_change=0.3, ladder="none")
    view = compare_scenarios(rivals, {"current": 1.0, "alone": alone, "jointly": jointly})
    margin = view.set_index("scenario")["margin"]
    assert margin["jointly"] > margin["current"] and margin["jointly"] > margin["alone"]
    assert (alone["new_price"] < alone["current_price"]).all()   # each cut on its own
    assert (jointly["new_price"] > alone["new_price"]).all()


FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "completejourney"


def test_complete_journey_panel_from_the_fixture():
    transactions = pd.read_csv(FIXTURE / "transactions.csv")
    products = pd.read_csv(FIXTURE / "products.csv")
    promotions = pd.read_csv(FIXTURE / "promotions.csv", dtype={"display_location": str,
                                                                "mailer_location": str})
    panel = complete_journey_panel(transactions, products, promotions, n_stores=10,
                                   n_categories=2)
    assert panel[CATEGORY_COL].nunique() == 2
    assert set(panel[ITEM_COL].str.split(" | ").str[-1]) == {"National", "Private"}
    assert (panel[PRICE_COL] > 0).all() and panel[PROMO_COL].between(0, 1).all()
    table = estimate_panel_elasticities(panel)
    assert len(table) == 4 and table["diagnosis"].str.len().gt(0).any()
    with pytest.raises(SchemaError, match="'week'"):
        complete_journey_panel(transactions.drop(columns="week"), products)


def test_price_below_the_margin_floor_is_raised_to_it():
    item = pd.DataFrame({ITEM_COL: ["a"], PRICE_COL: [3.0], "units": [50.0],
                         "elasticity": [-1.5], "cost": [2.7]})
    plan = optimise_prices(item, min_margin=0.2, max_change=0.3, ladder="none")
    assert plan["new_price"].iloc[0] == pytest.approx(2.7 / 0.8, rel=1e-3)
    assert plan["binding"].iloc[0] == "min_margin"


def test_period_effects_and_the_bootstrap_agree_with_the_default():
    panel, truth = synthetic_price_panel(n_stores=15, n_periods=52, seed=11)
    default = estimate_panel_elasticities(panel).set_index(ITEM_COL)
    periods = estimate_panel_elasticities(panel, time_effects=True).set_index(ITEM_COL)
    boot = estimate_panel_elasticities(panel, cluster="bootstrap", n_boot=99).set_index(ITEM_COL)
    true = truth["own_elasticity"].reindex(default.index)
    assert (periods["elasticity"] - true).abs().mean() < 0.15
    assert np.allclose(boot["elasticity"], default["elasticity"])     # same point estimates
    ratio = boot["se"] / default["se"]
    assert ratio.between(0.6, 1.6).all()


def test_panel_fit_matches_a_plain_ols_with_store_dummies_and_clustered_errors():
    "The users' reference: log-log OLS with store fixed effects and promotion controls."
    import statsmodels.api as sm
    panel, _ = synthetic_price_panel(n_stores=12, n_periods=40, seed=5)
    ours = estimate_panel_elasticities(panel, cross=False).set_index(ITEM_COL)
    brand = panel[panel[ITEM_COL] == "b2"]
    X = pd.get_dummies(brand[STORE_COL], prefix="s", dtype=float)
    X["log_price"] = np.log(brand[PRICE_COL])
    X[["promo", "display"]] = brand[["promo", "display"]].astype(float)
    fit = sm.OLS(np.log(brand[UNITS_COL]), X).fit(cov_type="cluster",
                                                   cov_kwds={"groups": brand[STORE_COL]})
    assert ours.loc["b2", "elasticity"] == pytest.approx(fit.params["log_price"], abs=1e-8)
    # statsmodels counts the 12 store dummies in its small-sample factor; we do not (they are
    # nested in the clusters), so our error is a little smaller
    n, k_full, k_ours = len(brand), X.shape[1], 3
    factor = np.sqrt((n - k_full) / (n - k_ours))
    assert ours.loc["b2", "se"] == pytest.approx(fit.bse["log_price"] * factor, rel=1e-6)
