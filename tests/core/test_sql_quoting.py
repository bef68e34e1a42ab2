"""One way to write names and text into DuckDB SQL (journeylab.core.sql), and hostile names end to end.

Reference: DuckDB itself. Any text must come back unchanged from ``SELECT <literal>``
and as a column name; event, channel, segment and column names with quotes,
semicolons, comment markers and Hangul must give the same rows as plain names
(the expected tables are counted by hand from the log below).
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylab.core.errors import ParameterError
from journeylab.core.sql import quote_ident, quote_list, quote_literal
from journeylab.datasets import sample_stage_map

# Text DuckDB can hold: any Unicode but NUL and lone surrogates (both refused, tested below).
TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=40)


# -- the quoting rules ----------------------------------------------------------------
def test_quoting_doubles_the_quote_character():
    assert quote_ident('a"b') == '"a""b"'
    assert quote_literal("it's") == "'it''s'"
    assert quote_literal('back\\slash "x"') == "'back\\slash \"x\"'"
    assert quote_list(["a", "it's"]) == "['a', 'it''s']::VARCHAR[]"
    assert quote_list([]) == "[]::VARCHAR[]"


def test_nul_and_empty_names_are_refused_with_a_reason():
    with pytest.raises(ParameterError, match="contains a NUL character"):
        quote_literal("a\x00b")
    with pytest.raises(ParameterError, match="contains a NUL character"):
        quote_ident("a\x00b")
    with pytest.raises(ParameterError, match="An empty name cannot be a DuckDB column"):
        quote_ident("")
    with pytest.raises(
        ParameterError, match="not valid Unicode \\(a lone surrogate at position 1\\)"
    ):
        quote_literal("a\ud800")


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_any_text_round_trips_as_a_literal(text):
    con = duckdb.connect()
    assert con.execute(f"SELECT {quote_literal(text)}").fetchone()[0] == text
    assert con.execute(f"SELECT {quote_list([text, 'x'])}").fetchone()[0] == [text, "x"]
    assert con.execute(f"SELECT {quote_literal(text)} = ?", [text]).fetchone()[0]


@settings(max_examples=200, deadline=None)
@given(TEXT.filter(bool))
def test_any_text_round_trips_as_a_column_name(name):
    con = duckdb.connect()
    got = con.execute(f"SELECT 7 AS {quote_ident(name)}")
    assert got.description[0][0] == name
    assert got.fetchall() == [(7,)]
    con.register("t", pd.DataFrame({name: [1, 2, 3]}))
    assert con.execute(f"SELECT sum({quote_ident(name)}) FROM t").fetchone()[0] == 6


# -- hostile names through the journeys, funnels, flows, loaders and features ----------
VISIT = 'visit"; DROP TABLE src; --'
AD = "광고 클릭"
BOOKED = "it's booked"
CALL = "o'clock call"
SEGMENT = 'dev"ice; --'


@pytest.fixture
def hostile_log() -> pd.DataFrame:
    rows = [
        # u1: visit by e'mail, ad click on 소셜, booking (100)
        ("u1", "2026-05-01 09:00", VISIT, "e'mail", None, "mob'ile"),
        ("u1", "2026-05-02 09:00", AD, "소셜", None, "mob'ile"),
        ("u1", "2026-05-03 09:00", BOOKED, None, 100.0, "mob'ile"),
        # u2: visit by e'mail, then a phone call; no booking
        ("u2", "2026-05-01 10:00", VISIT, "e'mail", None, "mob'ile"),
        ("u2", "2026-05-04 10:00", CALL, 'ph"one', None, "mob'ile"),
        # u3: books with no touch (direct)
        ("u3", "2026-05-02 11:00", BOOKED, None, 50.0, 'desk"top'),
    ]
    frame = pd.DataFrame(
        rows, columns=["user_id", "timestamp", "event", "channel", "value", SEGMENT]
    )
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


OPTIONS = {
    "conversion": BOOKED, "touch_events": [VISIT, AD], "lookback": "30D", "period_end": "2026-06-30",
    "stage_map": sample_stage_map(),
}  # fmt: skip
EXPECTED_PATHS = [
    [("(direct)",), 1, 50.0, 0],
    [("e'mail", "소셜"), 1, 100.0, 0],
    [("e'mail",), 0, 0.0, 1],
]


def test_path_table_with_hostile_event_and_channel_names(hostile_log):
    from journeylab.journeys import build_journeys, path_table

    table = path_table(hostile_log, **OPTIONS)
    assert table.values.tolist() == EXPECTED_PATHS
    journeys = build_journeys(hostile_log, **OPTIONS)
    assert journeys.touches["channel"].tolist() == ["e'mail", "소셜", "e'mail"]
    assert path_table(journeys).values.tolist() == EXPECTED_PATHS
    by_event = path_table(hostile_log, level="event", **OPTIONS)
    assert by_event["path"].tolist() == [("(direct)",), (VISIT, AD), (VISIT,)]


def test_a_parquet_path_with_a_quote_reads_the_same_rows(hostile_log, tmp_path):
    from journeylab.journeys import path_table

    path = tmp_path / "it's; events.parquet"
    hostile_log.to_parquet(path)
    assert path_table(str(path), **OPTIONS).values.tolist() == EXPECTED_PATHS


def test_funnel_with_hostile_steps_and_segment_column(hostile_log):
    from journeylab.journeys import funnel, where_instead

    result = funnel(hostile_log, [VISIT, AD, BOOKED], segment=SEGMENT)
    table = result.to_frame()
    assert table[["segment", "step", "entrants"]].values.tolist() == [
        ["mob'ile", 1, 2],
        ["mob'ile", 2, 1],
        ["mob'ile", 3, 1],
    ]
    instead = where_instead(hostile_log, [VISIT, AD, BOOKED], after_step=1).to_frame()
    assert instead[["next", "units"]].values.tolist() == [[(CALL,), 1]]


def test_transitions_with_hostile_channel_names(hostile_log):
    from journeylab.journeys import transitions

    table = transitions(hostile_log, **OPTIONS).to_frame()
    pairs = {(r["from"], r["to"]): r["count"] for _, r in table.iterrows()}
    assert pairs == {
        ("START", "e'mail"): 2,
        ("START", "CONVERSION"): 1,
        ("e'mail", "소셜"): 1,
        ("e'mail", "NULL"): 1,
        ("소셜", "CONVERSION"): 1,
    }


def test_loaders_map_hostile_source_column_names(hostile_log, tmp_path):
    from journeylab.io import load_events

    source = hostile_log.rename(
        columns={"user_id": "us'er", "timestamp": 'ti"me', "event": "ev; ent"}
    )
    mapping = {"us'er": "user_id", 'ti"me': "timestamp", "ev; ent": "event"}
    loaded = load_events(source, columns=mapping, stage_map=sample_stage_map())
    assert loaded.frame["event"].tolist().count(BOOKED) == 2
    assert loaded.frame[SEGMENT].tolist().count('desk"top') == 1
    path = tmp_path / "it's.csv"
    source.to_csv(path, index=False)
    from_csv = load_events(
        str(path), columns=mapping, start="2026-05-02", stage_map=sample_stage_map()
    )
    assert sorted(from_csv.frame["event"]) == sorted([AD, BOOKED, CALL, BOOKED])


def test_propensity_features_count_hostile_touch_events(hostile_log):
    from journeylab.customers import propensity_features

    features = propensity_features(
        hostile_log,
        as_of="2026-05-02 12:00",
        horizon_days=5,
        conversion_event=BOOKED,
        touch_events=[VISIT, AD, CALL],
        segments=[SEGMENT],
        observed_until="2026-05-31",
    )
    # channels read off the data: u2's call comes after as_of, so its channel has no column
    assert features.attrs["vocabulary"]["channels"] == ["e'mail", "소셜"]
    by_user = features.set_index("user_id")
    columns = ["touches_e_mail", "touches_소셜", SEGMENT, "converted"]
    # u3 converted before as_of and is not at risk
    assert by_user[columns].to_dict("index") == {
        "u1": dict(zip(columns, [1, 1, "mob'ile", 1], strict=True)),
        "u2": dict(zip(columns, [1, 0, "mob'ile", 0], strict=True)),
    }
    named = propensity_features(
        hostile_log,
        as_of="2026-05-02 12:00",
        horizon_days=5,
        conversion_event=BOOKED,
        channels=["e'mail", "소셜", 'ph"one'],
        count_events=[CALL],
        observed_until="2026-05-31",
    )
    assert named[["touches_ph_one", "n_o_clock_call"]].values.tolist() == [[0, 0], [0, 0]]
