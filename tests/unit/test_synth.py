"The synthetic world: deterministic, in the canonical schema, and its ground truth is recoverable."
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from retail_workbench.core import CANONICAL_TABLES, ConfigError
from retail_workbench.data.synth import ATTRACTIVENESS, catalog_as_of, make_world

SMALL = dict(n_users=600, n_items=80, n_days=240, n_stores=2)
DRIFT_DATE = pd.Timestamp("2023-06-01")
TIME_COLUMN = {"interactions": "ts", "search_impressions": "ts", "sales": "date",
               "catalog": "valid_from"}


@pytest.fixture(scope="module")
def world():
    return make_world(**SMALL, seed=11)


def test_same_seed_same_world_other_seed_other_world(world):
    again = make_world(**SMALL, seed=11)
    for name, table in world.tables.items():
        pd.testing.assert_frame_equal(table, again.tables[name])
    np.testing.assert_array_equal(world.truth.user_factors, again.truth.user_factors)
    other = make_world(**SMALL, seed=12)
    assert not other.interactions.equals(world.interactions)
    assert not other.sales.equals(world.sales)


def test_tables_follow_the_data_contract(world):
    from retail_workbench.data.schema import SCHEMAS
    from retail_workbench.data.verify import verify
    for name, columns in CANONICAL_TABLES.items():
        table = world.tables[name]
        assert list(table.columns[:len(columns)]) == list(columns) or set(columns) <= set(table)
        SCHEMAS[name].validate(table, lazy=True)
        result = verify(table, name, reference={"catalog": world.catalog})
        assert len(result.quarantine) == 0, (name, result.report.query("count > 0"))
    inter = world.interactions
    assert inter["ts"].dtype == "datetime64[ns]" and inter["ts"].is_monotonic_increasing
    assert inter["user_id"].dtype == np.int64 and inter["item_id"].dtype == np.int64
    assert set(inter["event"].unique()) == {"view", "click", "add_to_cart", "order"}
    assert (world.sales["date"] == world.sales["date"].dt.normalize()).all()
    assert world.calendar["holiday"].dtype == bool
    assert "image_url" in world.catalog


def test_truth_is_aligned_with_ids(world):
    truth = world.truth
    assert truth.user_factors.shape[0] == SMALL["n_users"]
    assert truth.item_factors.shape[0] == SMALL["n_items"]
    assert list(truth.segments.index) == list(range(SMALL["n_users"]))
    assert truth.segments.nunique() == 5
    assert (truth.elasticity < 0).all() and (truth.promo_lift > 1).mean() > 0.9
    assert set(truth.relevance["relevance"].unique()) <= {0, 1, 2, 3}
    assert np.all(np.diff(truth.position_bias) < 0) and truth.position_bias[0] == 1.0
    assert truth.drift is None


def test_position_bias_visible_in_clicks(world):
    shown = world.search_impressions.merge(world.truth.relevance, on=["query", "item_id"],
                                           how="left")
    shown["relevance"] = shown["relevance"].fillna(0).astype(int)
    ctr = shown.groupby("position")["clicked"].mean()
    assert ctr.loc[1] > 3 * ctr.loc[10]
    expected = ATTRACTIVENESS[shown["relevance"]]
    examination = (shown.groupby("position")["clicked"].sum()
                   / pd.Series(expected).groupby(shown["position"]).sum())
    np.testing.assert_allclose(examination.to_numpy(), world.truth.position_bias, atol=0.12)
    by_relevance = shown.groupby("relevance")["clicked"].mean()
    assert by_relevance.is_monotonic_increasing


def test_elasticity_recoverable_by_log_log_regression(world):
    sold = world.sales[world.sales["units"] > 0].sort_values(["item_id", "date"])
    day = sold["date"].dt.day_of_year.to_numpy()
    design = np.column_stack([
        np.ones(len(sold)), np.log(sold["price"]), sold["promo"].astype(float),
        np.cos(2 * np.pi * day / 365.25), np.sin(2 * np.pi * day / 365.25),
        sold["date"].isin(world.calendar.loc[world.calendar["holiday"], "date"]),
        *(sold["date"].dt.day_of_week.to_numpy() == d for d in range(1, 7)),
        sold["store_id"].to_numpy() == 1]).astype(float)
    target = np.log(sold["units"].to_numpy())
    errors = []
    for item, rows in sold.groupby("item_id").indices.items():
        beta = np.linalg.lstsq(design[rows], target[rows], rcond=None)[0]
        errors.append(beta[1] - world.truth.elasticity[item])
    errors = np.array(errors)
    assert abs(np.median(errors)) < 0.1
    assert np.median(np.abs(errors)) < 0.25


def test_segments_differ_and_are_separable(world):
    inter = world.interactions
    orders = inter[inter["event"] == "order"]
    price = world.catalog.groupby("item_id")["price"].first()
    amount = orders["value"] * price.reindex(orders["item_id"]).to_numpy()
    rfm = pd.DataFrame(index=world.customers["user_id"])
    rfm["recency"] = (inter["ts"].max() - inter.groupby("user_id")["ts"].max()).dt.days
    rfm["frequency"] = orders.groupby("user_id")["session_id"].nunique()
    rfm["monetary"] = amount.groupby(orders["user_id"]).sum()
    rfm["views"] = (inter["event"] == "view").groupby(inter["user_id"]).sum()
    rfm = rfm.fillna(0)
    segments = world.truth.segments.reindex(rfm.index)
    medians = rfm.groupby(segments).median()
    assert medians["monetary"].idxmax() == "loyal high spenders"
    assert medians["recency"].idxmax() == "lapsed"
    assert medians["frequency"].idxmax() == "loyal high spenders"
    labels = KMeans(5, n_init=5, random_state=0).fit_predict(
        StandardScaler().fit_transform(np.log1p(rfm)))
    assert adjusted_rand_score(segments, labels) > 0.3


def test_catalogue_changes_over_time(world):
    first = catalog_as_of(world.catalog, "2023-01-01")
    last = catalog_as_of(world.catalog, world.calendar["date"].max())
    assert first["item_id"].is_unique and last["item_id"].is_unique
    assert set(last["item_id"]) - set(first["item_id"])      # launched during the period
    assert set(first["item_id"]) - set(last["item_id"])      # discontinued
    assert world.catalog.groupby("item_id").size().max() > 1  # price versions
    launched = set(last["item_id"]) - set(first["item_id"])
    early = world.interactions[world.interactions["ts"] < "2023-01-02"]
    assert not set(early["item_id"]) & launched


@pytest.mark.parametrize("kind", ["preference", "price", "demand"])
def test_drift_changes_only_what_follows_its_date(world, kind):
    shifted = make_world(**SMALL, seed=11, drift=dict(date=DRIFT_DATE, kind=kind))
    assert shifted.truth.drift["kind"] == kind
    assert shifted.truth.drift["date"] == DRIFT_DATE
    changed = {}
    for name, column in TIME_COLUMN.items():
        base, other = world.tables[name], shifted.tables[name]
        pd.testing.assert_frame_equal(base[base[column] < DRIFT_DATE].reset_index(drop=True),
                                      other[other[column] < DRIFT_DATE].reset_index(drop=True))
        changed[name] = not base[base[column] >= DRIFT_DATE].reset_index(drop=True).equals(
            other[other[column] >= DRIFT_DATE].reset_index(drop=True))
    after = world.sales["date"] >= DRIFT_DATE
    if kind == "preference":
        assert changed["interactions"] and not changed["sales"]
        category = world.catalog.groupby("item_id")["category"].first()
        trend = shifted.truth.drift["trend_category"]
        views = shifted.interactions[shifted.interactions["event"] == "view"]
        in_trend = category.reindex(views["item_id"]).to_numpy() == trend
        late = (views["ts"] >= DRIFT_DATE).to_numpy()
        assert in_trend[late].mean() > 1.5 * in_trend[~late].mean()
    elif kind == "price":
        ratio = shifted.sales["price"] / world.sales["price"]
        assert ratio[after].mean() == pytest.approx(1.25, abs=0.02)
        assert shifted.sales.loc[after, "units"].sum() < world.sales.loc[after, "units"].sum()
        assert not changed["interactions"]
    else:
        ratio = shifted.sales.loc[after, "units"].sum() / world.sales.loc[after, "units"].sum()
        assert ratio == pytest.approx(0.6, abs=0.05)
        assert not changed["interactions"] and not changed["catalog"]


def test_bad_parameters_give_clear_errors():
    with pytest.raises(ConfigError, match="n_items >= 24"):
        make_world(n_items=3)
    with pytest.raises(ConfigError, match="outside"):
        make_world(n_days=30, drift=dict(date="2024-01-01", kind="price"))
    with pytest.raises(ConfigError, match="not known"):
        make_world(drift=dict(date="2023-03-01", kind="weather"))
    with pytest.raises(ConfigError, match="'date' and 'kind'"):
        make_world(drift={"kind": "price"})


def test_activity_scales_interactions_and_sales_panel_can_be_limited():
    quiet = make_world(n_users=300, n_items=40, n_days=60, seed=1, activity=0.5)
    busy = make_world(n_users=300, n_items=40, n_days=60, seed=1, activity=2.0,
                      n_sales_items=10)
    assert 3 < len(busy.interactions) / len(quiet.interactions) < 5
    assert busy.sales["item_id"].nunique() == 10


def test_rwb_generate_writes_parquet_truth_and_snapshots(tmp_path):
    import json
    from retail_workbench.cli.app import main
    from retail_workbench.data.store import SnapshotStore
    out = tmp_path / "world"
    code = main(["generate", "--users", "120", "--items", "30", "--days", "45", "--seed", "4",
                 "--drift-date", "2023-02-01", "--drift-kind", "demand", "--out", str(out),
                 "--store", "--store-dir", str(tmp_path / "store")])
    assert code == 0
    expected = make_world(n_users=120, n_items=30, n_days=45, seed=4,
                          drift=dict(date="2023-02-01", kind="demand"))
    for name, table in expected.tables.items():
        pd.testing.assert_frame_equal(pd.read_parquet(out / f"{name}.parquet"), table,
                                      check_dtype=False)
    truth = json.loads((out / "truth" / "truth.json").read_text())
    assert truth["drift"]["kind"] == "demand" and truth["drift"]["date"] == "2023-02-01"
    items = pd.read_parquet(out / "truth" / "items.parquet")
    np.testing.assert_allclose(items["elasticity"], expected.truth.elasticity)
    listing = SnapshotStore(tmp_path / "store").list()
    assert set(listing["table"]) == set(expected.tables)
    assert main(["generate", "--users", "10"]) == 1                 # neither --out nor --store
    assert main(["generate", "--drift-kind", "price", "--out", str(out)]) == 1


def test_expected_units_is_the_mean_of_sales_and_follows_elasticity(world):
    from retail_workbench.data.synth import expected_units
    sales = world.sales
    mean = expected_units(world, sales["item_id"], sales["store_id"], sales["date"],
                          sales["price"], sales["promo"])
    assert sales["units"].sum() / mean.sum() == pytest.approx(1.0, abs=0.02)
    promo_days = sales["promo"].to_numpy()
    promo_ratio = sales["units"][promo_days].sum() / mean[promo_days].sum()
    assert promo_ratio == pytest.approx(1.0, abs=0.05)
    item = 3
    reference = world.truth.reference_price[item]
    base, cheaper, promoted = expected_units(world, item, 0, "2024-06-03",
                                             [reference, 0.8 * reference, reference],
                                             [False, False, True])
    assert cheaper / base == pytest.approx(0.8 ** world.truth.elasticity[item])
    assert promoted / base == pytest.approx(world.truth.promo_lift[item])
    with pytest.raises(ConfigError, match="item ids"):
        expected_units(world, 10_000, 0, "2024-01-01", 1.0)


def test_seasonality_repeats_every_year_so_it_is_not_drift():
    world = make_world(n_users=50, n_items=40, n_days=728, n_stores=1, seed=0, start="2023-01-02")
    weekly = (world.sales.set_index("date").groupby("item_id")["units"].resample("W").sum()
              .unstack(0).dropna(axis=1))
    first_year, second_year = weekly.iloc[:52].to_numpy(), weekly.iloc[52:104].to_numpy()
    same_weeks = [np.corrcoef(first_year[:, j], second_year[:, j])[0, 1]
                  for j in range(first_year.shape[1])]
    half_year_apart = [np.corrcoef(first_year[:, j], np.roll(second_year[:, j], 26))[0, 1]
                       for j in range(first_year.shape[1])]
    assert np.median(same_weeks) > 0.1
    assert np.median(same_weeks) > np.median(half_year_apart) + 0.3
    events = world.calendar.set_index("date")["event"]
    assert events["2023-12-25"] == events["2024-12-25"] == "christmas"
    assert events["2023-11-24"] == events["2024-11-29"] == "black_friday"
