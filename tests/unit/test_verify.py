"Row-level verification: rules, quarantine, report, and rows in = clean + quarantined."
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retail_workbench.core import ConfigError, SchemaError
from retail_workbench.data.schema import SCHEMAS
from retail_workbench.data.verify import RULES, Rule, verify

NOW = pd.Timestamp("2024-06-01")


def _interactions():
    return pd.DataFrame({
        "user_id": ["u1", None, "u2", "u2", "u3", "u4"],
        "item_id": ["A", "B", "A", "A", "C", "A"],
        "ts": ["2024-03-01", "2024-03-01", "2024-03-02", "2024-03-02", "2024-03-03", "2030-01-01"],
        "event": ["order", "order", "view", "view", "order", "order"],
        "session_id": ["s1", "s2", "s3", "s3", "C4", "s5"],
        "value": [2.0, 1.0, 1.0, 1.0, -1.0, 1.0],
        "is_return": [False, False, False, False, True, False],
    })


def test_rows_in_equal_clean_plus_quarantined_and_reasons_are_recorded():
    result = verify(_interactions(), "interactions", now=NOW)
    assert result.rows_in == 6 == result.rows_clean + result.rows_quarantined
    assert result.rows_clean == 3  # u1, the first u2 view, and the return (a warning)
    assert sorted(result.quarantine["_row"]) == [1, 3, 5]
    reasons = dict(zip(result.quarantine["_row"], result.quarantine["_rules"]))
    assert reasons == {1: "user_id_required", 3: "duplicate_row", 5: "ts_not_future"}
    assert result.counts["cancellation"] == 1
    SCHEMAS["interactions"].validate(result.clean)


def test_report_has_rule_count_and_examples():
    report = verify(_interactions(), "interactions", now=NOW).report.set_index("rule")
    assert report.loc["user_id_required", "count"] == 1
    assert report.loc["user_id_required", "examples"][0]["row"] == 1
    assert report.loc["item_in_catalog", "status"].startswith("skipped")
    assert report.loc["non_product_code", "status"] == "skipped: no column is_non_product"


def test_catalog_item_needs_title_category_price_and_image():
    catalog = pd.DataFrame({
        "item_id": [1, 2, 3, 4, 5], "title": ["a", "", "c", "d", "e"],
        "category": ["x", "x", None, "x", "x"], "brand": None,
        "price": [1.0, 1.0, 1.0, np.nan, 2.0], "valid_from": "2024-01-01",
        "image_url": ["i1", "i2", "i3", "i4", None]})
    result = verify(catalog, "catalog")
    assert result.clean["item_id"].tolist() == [1]
    counts = result.counts
    assert (counts["title_required"], counts["category_required"], counts["price_required"],
            counts["image_url_required"]) == (1, 1, 1, 1)


def test_referential_integrity_against_the_catalog():
    catalog = pd.DataFrame({"item_id": ["A", "C"]})
    result = verify(_interactions(), "interactions", reference={"catalog": catalog}, now=NOW)
    assert result.counts["item_in_catalog"] == 1
    assert "item_in_catalog" in result.quarantine.set_index("_row").loc[1, "_rules"]


def test_users_add_their_own_rules_as_data():
    big = Rule("big_basket", "expr", ("value",), {"expr": "value < 2"}, description="value >= 2")
    stale = Rule("stale", "freshness", ("ts",), {"max_age": "90D"}, severity="warn")
    result = verify(_interactions(), "interactions", rules=RULES["interactions"] + [big, stale],
                    now=NOW)
    assert result.counts["big_basket"] == 1
    assert result.counts["stale"] == 4  # older than 2024-03-03
    assert result.rows_clean == 2


def test_uniqueness_rule_on_keys():
    customers = pd.DataFrame({"user_id": [1, 1, 2], "first_seen": "2024-01-01",
                              "region": ["a", "b", "c"]})
    result = verify(customers, "customers")
    assert result.counts["duplicate_customer"] == 1
    assert result.quarantine["_row"].tolist() == [1]


def test_rule_and_table_errors_are_raised_not_quarantined():
    with pytest.raises(ConfigError, match="unknown kind 'magic'"):
        verify(_interactions(), "interactions", rules=[Rule("m", "magic")])
    with pytest.raises(SchemaError, match="rule 'needs_price' needs column"):
        verify(_interactions(), "interactions",
               rules=[Rule("needs_price", "required", ("price",))])
    with pytest.raises(SchemaError, match="missing column 'ts'"):
        verify(_interactions().drop(columns="ts"), "interactions")


_cells = st.one_of(st.none(), st.sampled_from(["u1", "u2", "3", "", "  "]), st.integers(0, 5))
_times = st.one_of(st.none(), st.sampled_from(["2024-01-01", "12/1/2010 8:26", "garbage",
                                               "2999-01-01", "2024-02-30"]))
_events = st.one_of(st.none(), st.sampled_from(["view", "click", "order", "rating", "buy"]))
_values = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32),
                    st.sampled_from(["x", "1.5"]))


@st.composite
def _frames(draw):
    n = draw(st.integers(0, 25))
    rows = [{"user_id": draw(_cells), "item_id": draw(_cells), "ts": draw(_times),
             "event": draw(_events), "session_id": draw(_cells), "value": draw(_values)}
            for _ in range(n)]
    if rows and draw(st.booleans()):
        rows += rows[: draw(st.integers(1, len(rows)))]  # exact duplicates
    columns = ["user_id", "item_id", "ts", "event", "session_id", "value"]
    return pd.DataFrame(rows, columns=columns, dtype=object)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_frames())
def test_property_no_row_is_lost_or_duplicated(df):
    result = verify(df, "interactions", now=NOW)
    assert result.rows_in == len(df) == result.rows_clean + result.rows_quarantined
    assert result.quarantine["_row"].is_unique
    assert (result.quarantine["_rules"].str.len() > 0).all()
    if result.rows_clean:
        SCHEMAS["interactions"].validate(result.clean)


def test_the_synthetic_world_passes_every_default_rule():
    synth = pytest.importorskip("retail_workbench.data.synth")
    world = synth.make_world(n_users=100, n_items=40, n_days=30, seed=3)
    reference = {}
    for table in ("catalog", "customers", "interactions", "search_impressions", "sales"):
        result = verify(world.tables[table], table, reference=reference)
        if table == "catalog":
            reference["catalog"] = result.clean
        assert result.rows_quarantined == 0, (table, result.summary()["rules"])
        SCHEMAS[table].validate(world.tables[table])


_POOLS = {
    "id": st.one_of(st.none(), st.sampled_from(["a", "b", " ", "7"]), st.integers(-2, 3),
                    st.floats(allow_nan=True, width=16)),
    "datetime": _times, "date": _times,
    "str": st.one_of(st.none(), st.sampled_from(["x", "", "view", "order"]), st.integers(0, 2)),
    "float": _values, "number": _values,
    "int": st.one_of(st.none(), st.integers(-1, 4), st.sampled_from([1.5, "2", "top"])),
    "bool": st.one_of(st.none(), st.booleans(), st.sampled_from([0, 1, "yes", "maybe"])),
}


@st.composite
def _tables(draw):
    from retail_workbench.core import CANONICAL_TABLES
    from retail_workbench.data.schema import COLUMN_KINDS
    table = draw(st.sampled_from(sorted(CANONICAL_TABLES)))
    columns = CANONICAL_TABLES[table]
    n = draw(st.integers(1, 12))
    rows = [[draw(_POOLS[COLUMN_KINDS[c]]) for c in columns] for _ in range(n)]
    return table, pd.DataFrame(rows, columns=list(columns), dtype=object)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tables())
def test_property_every_table_partitions_and_clean_rows_fit_the_schema(drawn):
    table, df = drawn
    result = verify(df, table, now=NOW)
    assert result.rows_in == len(df) == result.rows_clean + result.rows_quarantined
    if result.rows_clean:
        SCHEMAS[table].validate(result.clean)
