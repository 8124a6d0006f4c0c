"Format loaders: real layouts into canonical tables, and one clear error per kind of bad input."
from pathlib import Path

import fsspec
import pandas as pd
import pytest

from retail_workbench.core import DataError, SchemaError, SourceNotFoundError, UnknownFormatError
from retail_workbench.data.loaders import LOADERS, get_loader, load
from retail_workbench.data.verify import verify

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RETAIL_CSV = FIXTURES / "online_retail" / "online_retail_sample.csv"
RETAIL_XLSX = FIXTURES / "online_retail" / "online_retail_sample.xlsx"


@pytest.fixture(scope="module")
def retail_raw():
    return pd.read_csv(RETAIL_CSV, dtype={"InvoiceNo": "str", "StockCode": "str"})


def test_registry_lists_the_formats():
    assert {"online_retail", "movielens", "m5", "retailrocket", "complete_journey",
            "generic"} <= set(LOADERS)
    assert get_loader("m5").main_table == "sales"


def test_online_retail_csv_xlsx_and_parquet_agree(tmp_path, retail_raw):
    from_csv = load(RETAIL_CSV, "online_retail")["interactions"]
    from_xlsx = load(RETAIL_XLSX, "online_retail")["interactions"]
    iso = retail_raw.assign(InvoiceDate=pd.to_datetime(retail_raw["InvoiceDate"],
                                                       format="%m/%d/%Y %H:%M")
                            .dt.strftime("%Y-%m-%d %H:%M:%S"))
    iso.to_parquet(tmp_path / "retail.parquet")
    from_parquet = load(tmp_path / "retail.parquet", "online_retail")["interactions"]
    pd.testing.assert_frame_equal(from_csv, from_xlsx)
    pd.testing.assert_frame_equal(from_csv, from_parquet)


def test_online_retail_flags_returns_and_non_products():
    interactions = load(RETAIL_CSV, "online_retail")["interactions"]
    assert len(interactions) == 3000
    returns = interactions[interactions["is_return"]]
    assert len(returns) == 26 and (returns["value"] < 0).all()
    assert returns["session_id"].str.startswith("C").all()
    fees = set(interactions.loc[interactions["is_non_product"], "item_id"])
    assert {"POST", "DOT", "M"} <= fees
    assert interactions["user_id"].dropna().iloc[0] == "17850"  # no trailing ".0"


def test_non_utf8_file_names_the_encoding_to_use(tmp_path, retail_raw):
    latin = tmp_path / "Online Retail.csv"
    retail_raw.assign(Description=retail_raw["Description"].astype("str") + " £").to_csv(
        latin, index=False, encoding="latin-1")
    with pytest.raises(DataError, match="is not utf-8 text.*encoding='latin-1'"):
        load(latin, "online_retail")
    ok = load(latin, "online_retail", encoding="latin-1")["interactions"]
    assert ok["title"].dropna().str.endswith("£").all()


def test_empty_and_header_only_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty.csv is empty"):
        load(empty, "online_retail")
    header = tmp_path / "header.csv"
    header.write_text("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,"
                      "Country\n")
    with pytest.raises(DataError, match="header.csv has no data rows"):
        load(header, "online_retail")


def test_misspelt_column_is_named_with_a_suggestion(tmp_path, retail_raw):
    path = tmp_path / "typo.csv"
    retail_raw.rename(columns={"CustomerID": "CustomerId", "Quantity": "Qty"}).to_csv(path,
                                                                                       index=False)
    with pytest.raises(SchemaError) as err:
        load(path, "online_retail")
    message = str(err.value)
    assert "typo.csv" in message
    assert "'CustomerID' (did you mean 'CustomerId'?)" in message
    assert "'Quantity'" in message


def test_garbage_dates_fail_whole_file_or_quarantine_single_rows(tmp_path, retail_raw):
    garbage = tmp_path / "garbage.csv"
    retail_raw.assign(InvoiceDate="not a date").to_csv(garbage, index=False)
    with pytest.raises(DataError, match="column 'InvoiceDate': 3000 of 3000 values are not dates"):
        load(garbage, "online_retail")
    some = tmp_path / "some.csv"
    dates = retail_raw["InvoiceDate"].where(retail_raw.index != 5, "31/31/2010")
    retail_raw.assign(InvoiceDate=dates).to_csv(some, index=False)
    interactions = load(some, "online_retail", customers=False)["interactions"]
    result = verify(interactions, "interactions")
    assert result.counts["ts_type"] == 1
    row = result.quarantine.set_index("_row").loc[5]
    assert row["ts"] == "31/31/2010" and "ts_type" in row["_rules"]


def test_missing_path_and_unknown_format():
    with pytest.raises(SourceNotFoundError, match="nowhere/retail.csv does not exist"):
        load("nowhere/retail.csv", "online_retail")
    with pytest.raises(UnknownFormatError, match="Did you mean 'movielens'"):
        load(RETAIL_CSV, "movielense")


def test_movielens_100k_and_latest():
    ml = load(FIXTURES / "movielens" / "ml-100k", "movielens")
    assert len(ml["interactions"]) == 12 and set(ml["interactions"]["event"]) == {"rating"}
    assert ml["interactions"]["ts"].iloc[0] == pd.Timestamp(881250949, unit="s")
    assert len(ml["customers"]) == 5 and ml["customers"]["region"].iloc[0] == "85711"
    assert ml["catalog"]["title"].iloc[2] == "Café Noir (1996)"
    latest = load(FIXTURES / "movielens" / "ml-latest-small", "movielens")
    assert latest["interactions"]["value"].tolist()[:3] == [4.0, 4.5, 3.5]
    assert latest["catalog"]["category"].tolist() == ["Drama", "Comedy", "Animation", "Action"]
    assert latest["catalog"]["title"].iloc[1] == "Orchard, The (1995)"


def test_m5_wide_to_long_with_prices():
    sales = load(FIXTURES / "m5", "m5")["sales"]
    assert len(sales) == 42
    row = sales[(sales["store_id"] == "CA_1") & (sales["item_id"] == "FOODS_3_090")].iloc[0]
    assert row["date"] == "2011-01-29" and row["units"] == 12 and row["price"] == 1.25
    assert sales["snap"].sum() == 6 * 4  # Feb 1-4 are SNAP days in CA and TX
    result = verify(sales, "sales", now="2024-01-01")
    assert result.rows_quarantined == 7 and result.counts["price_required"] == 7


def test_retailrocket_events_and_fsspec_uri():
    fs = fsspec.filesystem("memory")
    with fs.open("/rwb-test/events.csv", "wb") as out:
        out.write((FIXTURES / "retailrocket" / "events.csv").read_bytes())
    interactions = load("memory://rwb-test/events.csv", "retailrocket")["interactions"]
    assert interactions["event"].value_counts().to_dict() == {"view": 7, "add_to_cart": 3,
                                                            "order": 2}
    orders = interactions[interactions["event"] == "order"]
    assert orders["session_id"].tolist() == [4000, 4000]
    with pytest.raises(SourceNotFoundError, match="memory://rwb-test/nothing.csv"):
        load("memory://rwb-test/nothing.csv", "retailrocket")


def test_generic_mapping_and_defaults():
    tables = load(FIXTURES / "movielens" / "ml-latest-small" / "ratings.csv", "generic",
                  mapping={"userId": "user_id", "movieId": "item_id", "timestamp": "ts",
                           "rating": "value"}, defaults={"event": "rating", "session_id": None},
                  time_unit="s")
    result = verify(tables["interactions"], "interactions")
    assert result.rows_clean == 8
    with pytest.raises(SchemaError, match="'userID' \\(did you mean 'userId'\\?\\)"):
        load(FIXTURES / "movielens" / "ml-latest-small" / "ratings.csv", "generic",
             mapping={"userID": "user_id"})


def test_complete_journey_from_shared_data(shared_data):
    tables = load(shared_data, "complete_journey")
    assert len(tables["interactions"]) == 75_000
    assert len(tables["catalog"]) == 92_331 and len(tables["customers"]) == 801
    result = verify(tables["interactions"], "interactions",
                    reference={"catalog": tables["catalog"]})
    assert result.rows_in == result.rows_clean + result.rows_quarantined
    # a real finding: 222 lines buy 5 products that the products file does not list
    assert result.counts["item_in_catalog"] == 222


def test_wrong_types_in_single_cells_are_quarantined_with_the_raw_value(tmp_path, retail_raw):
    path = tmp_path / "types.csv"
    bad = retail_raw.astype({"Quantity": "object", "UnitPrice": "object"})
    bad.loc[0, "Quantity"] = "six"
    bad.loc[1, "UnitPrice"] = "£3.39"
    bad.to_csv(path, index=False)
    result = verify(load(path, "online_retail")["interactions"], "interactions")
    assert result.counts["value_type"] == 1 and result.counts["price_type"] == 1
    quarantine = result.quarantine.set_index("_row")
    assert quarantine.loc[0, "value"] == "six" and "value_type" in quarantine.loc[0, "_rules"]
    assert quarantine.loc[1, "price"] == "£3.39" and "price_type" in quarantine.loc[1, "_rules"]
    assert result.clean["price"].dtype == "float64"


class _Job:
    def __init__(self, df):
        self.df = df

    def to_dataframe(self):
        return self.df


class _Client:
    "Stands in for google.cloud.bigquery.Client: records the query, returns a frame."
    def __init__(self, df):
        self.df, self.queries = df, []

    def query(self, sql):
        self.queries.append(sql)
        return _Job(self.df)


def test_bigquery_source_with_a_client_and_without_the_package():
    ratings = pd.read_csv(FIXTURES / "movielens" / "ml-latest-small" / "ratings.csv")
    client = _Client(ratings)
    tables = load("SELECT * FROM ml.ratings", "bigquery", client=client,
                  mapping={"userId": "user_id", "movieId": "item_id", "timestamp": "ts",
                           "rating": "value"}, defaults={"event": "rating", "session_id": None},
                  time_unit="s")
    assert client.queries == ["SELECT * FROM ml.ratings"]
    assert verify(tables["interactions"], "interactions").rows_clean == 8
    with pytest.raises(DataError, match="returned no rows"):
        load("SELECT 1", "bigquery", client=_Client(ratings.iloc[:0]))
    try:
        import google.cloud.bigquery  # noqa: F401
    except ImportError:
        with pytest.raises(DataError, match="needs the google-cloud-bigquery package"):
            load("SELECT 1", "bigquery")
