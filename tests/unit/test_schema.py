"Canonical pandera schemas and `conform`."
import numpy as np
import pandas as pd
import pytest
from pandera.errors import SchemaError as PanderaSchemaError

from retail_workbench.core import CANONICAL_TABLES, SchemaError
from retail_workbench.data.schema import SCHEMAS, conform


def _interactions(**changes):
    df = pd.DataFrame({
        "user_id": [1, 2, 3], "item_id": [10, 11, 10],
        "ts": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]).astype("datetime64[ns]"),
        "event": ["view", "click", "order"], "session_id": [5, 5, 6], "value": [1.0, 1.0, 2.0]})
    return df.assign(**changes)


def test_one_schema_per_canonical_table():
    assert set(SCHEMAS) == set(CANONICAL_TABLES)
    for table, schema in SCHEMAS.items():
        assert list(schema.columns) == list(CANONICAL_TABLES[table])


def test_ids_accept_int64_and_strings_but_not_floats():
    SCHEMAS["interactions"].validate(_interactions())
    strings = _interactions(user_id=["a", "b", "c"], item_id=["x", "y", "x"])
    SCHEMAS["interactions"].validate(strings)
    with pytest.raises(PanderaSchemaError):
        SCHEMAS["interactions"].validate(_interactions(user_id=[1.5, 2.0, 3.0]))


def test_schema_rejects_unknown_event_and_bad_position():
    with pytest.raises(PanderaSchemaError):
        SCHEMAS["interactions"].validate(_interactions(event=["view", "buy", "order"]))


def test_conform_suggests_the_closest_name_for_a_misspelt_column():
    df = _interactions().rename(columns={"item_id": "itemid", "ts": "timestamp"})
    with pytest.raises(SchemaError) as err:
        conform(df, "interactions", source="clicks.csv")
    message = str(err.value)
    assert "clicks.csv" in message
    assert "'item_id' (did you mean 'itemid'?)" in message
    assert "'ts'" in message and "mapping" in message


def test_conform_names_the_column_with_wrong_types():
    df = _interactions(value=["1", "two", "3"])
    with pytest.raises(SchemaError, match=r"column 'value': 1 value\(s\) are not of type float"):
        conform(df, "interactions")


def test_conform_coerces_text_dates_float_ids_and_flags():
    raw = pd.DataFrame({"date": ["12/1/2010 8:26", "2010-12-02"], "store_id": [1.0, 2.0],
                        "item_id": ["A", "B"], "units": ["3", "4"], "price": ["1.5", "2"],
                        "promo": ["yes", "0"], "extra": [1, 2]})
    sales = conform(raw, "sales")
    SCHEMAS["sales"].validate(sales)
    assert sales["date"].tolist() == [pd.Timestamp("2010-12-01"), pd.Timestamp("2010-12-02")]
    assert sales["store_id"].dtype == np.dtype("int64")
    assert sales["promo"].tolist() == [True, False]
    assert list(sales.columns)[-1] == "extra"


def test_conform_coerce_mode_marks_bad_values_missing():
    df = _interactions(ts=["2024-01-01", "garbage", "2024-01-03"])
    out = conform(df, "interactions", errors="coerce")
    assert out["ts"].isna().tolist() == [False, True, False]


def test_unknown_table_is_an_error():
    with pytest.raises(SchemaError, match="unknown table 'orders'"):
        conform(_interactions(), "orders")
