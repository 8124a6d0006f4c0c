"EDA: profile numbers, time coverage, plots and the dashboard's reactions to its controls."
import numpy as np
import pandas as pd
import pytest

from retail_workbench.core import DataError, SchemaError
from retail_workbench.data.eda import (EdaDashboard, distribution_data, eda_dashboard,
                                  plot_distribution, plot_profile, plot_time_coverage, profile,
                                  time_coverage)
from retail_workbench.data.synth import make_world


@pytest.fixture(scope="module")
def world():
    return make_world(n_users=300, n_items=40, n_days=90, seed=2, n_stores=2)


def test_profile_counts_missing_distinct_outliers_and_ranges():
    rng = np.random.default_rng(0)
    values = rng.normal(10.0, 1.0, 1000)
    values[:5] = 100.0                     # five far outliers
    values[5:15] = np.nan                  # ten missing
    df = pd.DataFrame({"price": values, "brand": ["a", "b"] * 499 + [None, None],
                       "item_id": np.arange(1000) % 50,
                       "ts": pd.date_range("2023-01-01", periods=1000, freq="h")})
    prof = profile(df).set_index("column")
    assert prof.loc["price", "missing"] == 10
    assert prof.loc["price", "missing_share"] == pytest.approx(0.01)
    assert prof.loc["price", "outliers"] >= 5 and prof.loc["price", "outliers"] < 30
    assert prof.loc["price", "max"] == 100.0
    assert prof.loc["price", "p50"] == pytest.approx(10.0, abs=0.2)
    assert prof.loc["brand", "distinct"] == 2 and prof.loc["brand", "missing"] == 2
    assert prof.loc["item_id", "kind"] == "id" and np.isnan(prof.loc["item_id", "mean"])
    assert prof.loc["item_id", "distinct"] == 50
    assert prof.loc["ts", "min"] == pd.Timestamp("2023-01-01")
    assert prof.loc["ts", "kind"] == "datetime"


def test_profile_sampling_keeps_exact_counts_and_scales_outliers():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": np.r_[rng.normal(0, 1, 20_000), np.full(200, 50.0)]})
    full = profile(df, sample=None).iloc[0]
    sampled = profile(df, sample=5_000).iloc[0]
    assert sampled["distinct"] == full["distinct"] and sampled["max"] == full["max"]
    assert sampled["outliers"] == pytest.approx(full["outliers"], rel=0.3)


def test_profile_rejects_non_frames():
    with pytest.raises(SchemaError, match="expects a pandas DataFrame"):
        profile({"a": [1]})


def test_time_coverage_finds_holes(world):
    sales = world.sales[~world.sales["date"].between("2023-02-10", "2023-02-12")]
    coverage = time_coverage(sales)
    assert len(coverage) == 90
    empty = coverage.loc[coverage["rows"] == 0, "period"]
    assert list(empty.dt.strftime("%m-%d")) == ["02-10", "02-11", "02-12"]
    weekly = time_coverage(world.interactions, freq="W")
    assert weekly["rows"].sum() == len(world.interactions)
    with pytest.raises(SchemaError, match="not a datetime"):
        time_coverage(world.sales, "units")


def test_plots_draw_the_data(world):
    prof = profile(world.sales)
    fig = plot_profile(prof)
    assert len(fig.data) == 3 and list(fig.data[0].y) == list(prof["column"])
    fig = plot_distribution(world.interactions, "event")
    counts = world.interactions["event"].value_counts()
    assert dict(zip(fig.data[0].x, fig.data[0].y)) == counts.to_dict()
    assert sum(plot_distribution(world.sales, "units").data[0].y) == len(world.sales)
    with pytest.raises(SchemaError, match="not in the table"):
        plot_distribution(world.sales, "unitz")
    assert len(plot_time_coverage(world.sales).data[0].x) == 90
    assert distribution_data(pd.Series([True, False, True]))["count"].tolist() == [2, 1]


def test_dashboard_controls_filter_and_redraw(world):
    dash = eda_dashboard(world.tables, segments=world.truth.segments)
    assert isinstance(dash, EdaDashboard)
    for control, css in [(dash.table_picker, "rwb-eda-table"),
                         (dash.column_picker, "rwb-eda-column"),
                         (dash.start_picker, "rwb-eda-start"), (dash.end_picker, "rwb-eda-end"),
                         (dash.segment_picker, "rwb-eda-segment"),
                         (dash.distribution, "rwb-eda-distribution"),
                         (dash.coverage, "rwb-eda-coverage")]:
        assert css in control._dom_classes
    assert "rwb-eda" in dash._dom_classes
    dash.table_picker.value = "sales"
    assert dash.column_picker.options[0] == "date" and dash.segment_picker.disabled
    assert dash.column_picker.value == "units"
    dash.column_picker.value = "promo"
    assert sum(dash.distribution.data[0].y) == len(world.sales)
    updates = dash.updates
    dash.start_picker.value = pd.Timestamp("2023-02-01").date()
    assert dash.updates == updates + 1
    expected = int((world.sales["date"] >= "2023-02-01").sum())
    assert sum(dash.distribution.data[0].y) == expected
    assert f"{expected:,} of" in dash.summary.value
    dash.table_picker.value = "interactions"
    assert not dash.segment_picker.disabled and "lapsed" in dash.segment_picker.options
    dash.segment_picker.value = "lapsed"
    lapsed = world.truth.segments[world.truth.segments == "lapsed"].index
    assert len(dash.filtered()) == int(world.interactions["user_id"].isin(lapsed).sum())
    dash.coverage.layout.xaxis.range = ["2023-01-10", "2023-01-20"]
    assert str(dash.start_picker.value) == "2023-01-10"
    assert dash.filtered()["ts"].max() < pd.Timestamp("2023-01-21")


def test_dashboard_handles_tables_without_time_and_bad_input():
    dash = eda_dashboard({"items": pd.DataFrame({"item_id": [1, 2, 2], "title": list("abc")})})
    assert dash.start_picker.disabled and sum(dash.distribution.data[0].y) == 3
    with pytest.raises(DataError, match="non-empty dict"):
        eda_dashboard({})
    with pytest.raises(SchemaError, match="not pandas DataFrames"):
        eda_dashboard({"x": [1, 2]})
