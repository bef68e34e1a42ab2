"""Query results into pandas, repeated text as categories, and cleaning done on the categories."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylab.core.errors import DataError, ParameterError, SchemaError
from journeylab.io.casting import cast_text, infer_property, relabel
from journeylab.io.frames import FETCH_ROWS, drop_unused_categories, fetch_frame
from journeylab.io.loaders import load_events
from journeylab.io.sources import ROW, open_relation, read_rows


@pytest.fixture()
def con():
    with duckdb.connect() as con:
        con.execute("SET arrow_large_buffer_size = true")
        yield con


def test_repeated_text_becomes_sorted_categories_across_batches(con):
    # three batches whose own dictionaries differ: the categories are their union, sorted
    n = 2 * FETCH_ROWS + 1000
    rel = con.sql(
        f"""SELECT i, CASE WHEN i < {FETCH_ROWS} THEN 'zeta' WHEN i % 4 = 0 THEN NULL
                    ELSE ['beta', 'Alpha', 'é'][i % 4] END AS name,
                   'id-' || i AS note
            FROM range({n}) t(i) ORDER BY i"""
    )
    frame = fetch_frame(rel, categories=["name", "note"])
    expected = rel.df()
    assert list(frame.columns) == ["i", "name", "note"]
    assert frame["i"].dtype == np.int64
    assert isinstance(frame["name"].dtype, pd.CategoricalDtype)
    assert frame["name"].cat.categories.tolist() == ["Alpha", "beta", "zeta", "é"]
    assert isinstance(frame["note"].dtype, pd.StringDtype)  # every value different: text
    for column in ("name", "note"):
        got = frame[column].astype("object").where(frame[column].notna(), None)
        want = expected[column].astype("object").where(expected[column].notna(), None)
        assert got.tolist() == want.tolist(), column


def test_fetch_frame_keeps_types_and_repeated_names(con):
    rel = con.sql(
        "SELECT 1::BIGINT AS a, NULL::INTEGER AS b, 2.50::DECIMAL(5, 2) AS c, 'x' AS a, "
        "TIMESTAMPTZ '2026-01-01 00:00:00+00' AS t"
    )
    frame = fetch_frame(rel, categories=["a"])
    assert list(frame.columns) == ["a", "b", "c", "a", "t"]
    assert frame.dtypes.iloc[0] == np.int64 and str(frame.dtypes.iloc[1]) == "Int32"
    assert frame.dtypes.iloc[2] == np.float64 and frame.iloc[0, 2] == 2.5
    empty = fetch_frame(con.sql("SELECT 'x' AS name, 1 AS n WHERE false"), categories=["name"])
    assert list(empty.columns) == ["name", "n"] and empty.empty


def test_cleaning_on_categories_counts_the_rows_it_changes():
    raw = pd.Series([" E\u200bmail ", "email", "Email", None, "SEO", "Email"], dtype="str")
    coded = raw.astype("category")
    for series in (raw, coded):
        cleaned, changed = cast_text(series)
        assert cleaned.astype("object").tolist()[:3] == ["Email", "email", "Email"]
        assert changed.tolist() == [True, False, False, False, False, False]
        mapped, mapping, differs = relabel(cleaned)
        assert mapped.astype("object").tolist() == [
            "Email",
            "Email",
            "Email",
            np.nan,
            "SEO",
            "Email",
        ]
        assert mapping.to_dict("records") == [{"raw": "email", "channel": "Email", "rows": 1}]
        assert differs.tolist() == [False, True, False, False, False, False]
    cleaned, _ = cast_text(coded)
    assert isinstance(cleaned.dtype, pd.CategoricalDtype)
    assert cleaned.cat.categories.tolist() == ["Email", "SEO", "email"]


def test_numbers_written_as_repeated_text_are_still_read_as_numbers(tmp_path):
    frame = pd.DataFrame(
        {
            "user_id": ["a", "b", "c", "d"],
            "timestamp": pd.date_range("2026-01-01", periods=4, freq="D", tz="UTC"),
            "event": ["view"] * 4,
            "score": ["7", "7", "8", "7"],
            "flag": ["true", "false", "true", "true"],
            "zip": ["01234", "01234", "98765", "01234"],
        }
    )
    path = tmp_path / "events.parquet"
    frame.to_parquet(path)
    loaded = load_events(path).frame
    assert loaded["score"].dtype == np.int64 and loaded["score"].tolist() == [7, 7, 8, 7]
    assert str(loaded["flag"].dtype) == "boolean"
    assert isinstance(loaded["zip"].dtype, pd.CategoricalDtype)  # a leading zero: text
    assert loaded["zip"].astype("object").tolist() == ["01234", "01234", "98765", "01234"]
    pd.testing.assert_series_equal(infer_property(loaded["zip"], "zip", None), loaded["zip"])


def test_names_only_dropped_rows_carry_are_not_categories(tmp_path):
    frame = pd.DataFrame(
        {
            "user_id": ["a", None, "b", "b"],
            "timestamp": pd.date_range("2026-01-01", periods=4, freq="D", tz="UTC"),
            "event": ["view", "orphan_event", "view", "buy"],
            "channel": ["seo", "orphan_channel", "seo", None],
        }
    )
    path = tmp_path / "events.parquet"
    frame.to_parquet(path)
    loaded = load_events(path)
    assert loaded.quality.rows_dropped == 1
    assert loaded.frame["event"].cat.categories.tolist() == ["buy", "view"]
    assert loaded.frame["channel"].cat.categories.tolist() == ["seo"]
    assert loaded.frame["event"].value_counts().to_dict() == {"view": 2, "buy": 1}


def test_categorical_input_is_ordered_by_its_names_as_text():
    ts = pd.Timestamp("2024-03-05 10:00", tz="UTC")
    given = pd.DataFrame(
        {
            "user_id": ["u1"] * 4,
            "timestamp": [ts, ts, ts, ts + pd.Timedelta("1h")],
            "event": pd.Categorical(
                ["visit", "visit", "b_visit", "purchase"],
                categories=["visit", "purchase", "b_visit"],
            ),
            "channel": pd.Categorical(
                ["social", "email", "social", None], categories=["social", "email"]
            ),
            "source": pd.Categorical([2, 1, 1, None]),  # names that are numbers
        }
    )
    as_text = given.astype({"event": "str", "channel": "str", "source": "str"})
    as_text["source"] = ["2", "1", "1", None]
    coded, plain = load_events(given).frame, load_events(as_text).frame
    assert coded["event"].cat.categories.tolist() == ["b_visit", "purchase", "visit"]
    assert coded["channel"].cat.categories.tolist() == ["email", "social"]
    for column in ("event", "channel"):
        assert coded[column].astype("object").tolist() == plain[column].astype("object").tolist()
    assert coded["event"].astype("object").tolist() == ["b_visit", "visit", "visit", "purchase"]
    channel = pd.Series(pd.Categorical([1, 2, None]))
    mapped, mapping, _ = relabel(channel)
    assert mapped.astype("object").tolist()[:2] == ["1", "2"] and mapping.empty


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.sampled_from(["b", "a", "c", None, "é", "A"]), max_size=40),
    st.lists(st.integers(0, 39), max_size=40),
)
def test_dropping_unused_categories_matches_pandas(values, picks):
    full = pd.Series(pd.Categorical(values, categories=["A", "a", "b", "c", "d", "é"]), name="x")
    part = full.iloc[[p for p in picks if p < len(full)]]
    got = drop_unused_categories(part)
    pd.testing.assert_series_equal(got, part.cat.remove_unused_categories())


def test_rows_numbered_as_they_stream_match_the_window_numbers(con, tmp_path):
    # A query, a CSV file (numbered by line: the header is line 1) and a set of Parquet
    # files are numbered as their rows arrive; DuckDB's row_number() OVER () agrees.
    n = 3 * FETCH_ROWS + 17
    first = tmp_path / "a.parquet"
    con.sql(
        f"""COPY (SELECT i % 1000 AS user_id, 'e' || (i % 7) AS event
                  FROM range({n}) t(i) ORDER BY i DESC) TO '{first}'"""
    )
    con.sql(f"COPY (FROM '{first}' LIMIT 5000) TO '{tmp_path / 'b.parquet'}'")
    con.sql(f"COPY (FROM '{first}' LIMIT 5000) TO '{tmp_path / 'a.csv'}'")
    cases = [
        (None, f"SELECT * FROM '{first}' WHERE event <> 'e3'"),
        (str(tmp_path / "a.csv"), None),
        (str(tmp_path / "*.parquet"), None),
    ]
    for source, query in cases:
        streamed = read_rows(source, None, what="events", query=query).frame
        numbered = open_relation(source, query=query)[1].df()
        assert streamed[ROW].dtype == np.int64 and len(streamed) == len(numbered)
        np.testing.assert_array_equal(streamed[ROW], numbered[ROW], err_msg=str(source or query))
        np.testing.assert_array_equal(
            streamed["user_id"].astype(str), numbered["user_id"].astype(str)
        )
    assert read_rows(str(tmp_path / "a.csv"), None, what="events").frame[ROW].iloc[0] == 2


def test_a_source_column_named_like_the_row_numbers_is_refused(tmp_path):
    query = (
        "SELECT 'u1' AS user_id, TIMESTAMPTZ '2026-01-01 00:00:00+00' AS timestamp, "
        f"'a' AS event, 5 AS {ROW}"
    )
    path = tmp_path / "events.csv"
    path.write_text(f"user_id,timestamp,event,{ROW}\nu1,2026-01-01T00:00:00Z,a,5\n")
    parquet = tmp_path / "events.parquet"
    with duckdb.connect() as con:
        con.sql(f"COPY ({query}) TO '{parquet}'")
    for source, sql in ((None, query), (str(path), None), (str(parquet), None)):
        with pytest.raises(SchemaError, match="reserved") as caught:
            load_events(source, query=sql)
        assert caught.value.column == ROW


def test_the_row_numbers_name_cannot_be_mapped_onto_or_spelt_otherwise(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("user_id,timestamp,event,note\nu1,2026-01-01T00:00:00Z,a,5\n")
    with pytest.raises(ParameterError, match="reserved"):
        load_events(str(path), columns={"note": ROW.upper()})
    query = (
        "SELECT 'u1' AS user_id, TIMESTAMPTZ '2026-01-01 00:00:00+00' AS timestamp, "
        f"'a' AS event, 5 AS {ROW.upper()}"
    )
    with pytest.raises(SchemaError, match="reserved"):
        load_events(None, query=query)


def test_a_csv_header_given_as_text_numbers_the_lines_as_given(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text("u1,2026-01-01T00:00:00Z,a\nu2,not a time,b\n")
    names = {"column0": "user_id", "column1": "timestamp", "column2": "event"}
    for header in (False, "false", "FALSE", 0):
        with pytest.raises(DataError) as caught:
            load_events(str(path), columns=names, csv_options={"header": header})
        assert caught.value.rows == [2], header
        assert "(file lines)" in str(caught.value) and "header is line 1" not in str(caught.value)
    with pytest.raises(ParameterError, match="header"):
        load_events(str(path), columns=names, csv_options={"header": "maybe"})


def test_source_columns_named_like_duckdbs_row_numbers_keep_the_true_rows(tmp_path):
    # a Parquet column called file_row_number, a table column called rowid: DuckDB's own
    # numbers by those names cannot be used; the rows are numbered in order instead
    rows = (
        "SELECT 'u' || i AS user_id, CASE WHEN i = 1 THEN 'bad' ELSE '2026-01-01T00:00:00Z' END "
        "AS timestamp, 'e' AS event, 200 + i AS {} FROM range(5) t(i)"
    )
    parquet = tmp_path / "events.parquet"
    database = tmp_path / "events.duckdb"
    with duckdb.connect() as con:
        con.sql(f"COPY ({rows.format('file_row_number')}) TO '{parquet}'")
    with duckdb.connect(str(database)) as con:
        con.sql(f"CREATE TABLE events AS {rows.format('RowId')}")
    for source, table in ((str(parquet), None), (str(database), "events")):
        with pytest.raises(DataError) as caught:
            load_events(source, table=table)
        assert caught.value.rows == [2], source


def test_csv_lines_skipped_or_commented_out_are_counted_in_line_numbers(tmp_path):
    # DuckDB's skip= drops lines before the header and comment= drops comment lines:
    # messages still name the file's own lines
    preamble = tmp_path / "preamble.csv"
    preamble.write_text(
        "exported 2026-01-02\nby the shop\nuser_id,timestamp,event\n"
        "u1,2026-01-01T00:00:00Z,a\nu2,not a time,b\n"
    )
    with pytest.raises(DataError) as caught:
        load_events(str(preamble), csv_options={"skip": 2})
    assert caught.value.rows == [5]
    assert "the header is line 3" in str(caught.value)
    commented = tmp_path / "commented.csv"
    commented.write_text(
        "# a note\nuser_id,timestamp,event\nu1,2026-01-01T00:00:00Z,a\n"
        "# another note\nu2,not a time,b\n"
    )
    with pytest.raises(DataError) as caught:
        load_events(str(commented), csv_options={"comment": "#"})
    assert caught.value.rows == [5]
    with pytest.raises(ParameterError, match="skip"):
        load_events(str(preamble), csv_options={"skip": -1})
