"""Loaders: sources, explicit casts, DST policy, de-duplication, channel names (REFERENCES.md DT-1…DT-6)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from journeylab.core.errors import DataError, ParameterError, SchemaError
from journeylab.datasets import sample_stage_map
from journeylab.io import loaders
from journeylab.io.loaders import (
    LoadedTable,
    events_relation,
    load_assignments,
    load_feedback,
    load_spend,
    load_transactions,
)

#: These logs use the sample's vocabulary: the loaders are given its stage map
#: explicitly (there is no default stage map).
SAMPLE_STAGES = sample_stage_map()


def load_events(*args, **kwargs):
    """``load_events`` with the sample's stage map unless the test gives one."""
    kwargs.setdefault("stage_map", SAMPLE_STAGES)
    return loaders.load_events(*args, **kwargs)


def sort_events(frame, stage_map=SAMPLE_STAGES):
    """``sort_events`` with the sample's stage map unless the test gives one."""
    return loaders.sort_events(frame, stage_map)


REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "data" / "examples"


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def clean_events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u3"],
            "timestamp": pd.to_datetime(
                [
                    "2026-05-01 10:00",
                    "2026-05-01 10:05",
                    "2026-05-02 09:00",
                    "2026-05-02 09:30",
                    "2026-05-03 12:00",
                ]
            ).tz_localize("UTC"),
            "event": [
                "site_visit",
                "booking_completed",
                "site_visit",
                "quote_request",
                "site_visit",
            ],
            "channel": ["email", None, "paid_search", None, "direct"],
            "value": [np.nan, 180.0, np.nan, np.nan, np.nan],
            "device": ["mobile", "mobile", "desktop", "desktop", "tablet"],
        }
    )


# -- sources ---------------------------------------------------------------------


def test_csv_parquet_duckdb_query_and_dataframe_load_the_same_frame(tmp_path, clean_events):
    csv = tmp_path / "events.csv"
    clean_events.to_csv(csv, index=False)
    parquet = tmp_path / "events.parquet"
    clean_events.to_parquet(parquet)
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        con.register("frame", clean_events)
        con.execute("CREATE TABLE events AS SELECT * FROM frame")
    loads = {
        "csv": load_events(csv),
        "csv.gz": None,
        "parquet": load_events(parquet),
        "duckdb table": load_events(database, table="events"),
        "duckdb query": load_events(
            database, query="SELECT * FROM events WHERE user_id <> 'nobody'"
        ),
        "query over a file": load_events(query=f"SELECT * FROM read_parquet('{parquet}')"),
        "dataframe": load_events(clean_events),
    }
    gz = tmp_path / "events.csv.gz"
    clean_events.to_csv(gz, index=False, compression="gzip")
    loads["csv.gz"] = load_events(gz)
    reference = loads["dataframe"].frame
    assert list(reference.columns) == [
        "user_id",
        "timestamp",
        "event",
        "channel",
        "value",
        "device",
    ]
    assert str(reference["timestamp"].dtype) == "datetime64[ns, UTC]"
    for name, loaded in loads.items():
        assert isinstance(loaded, LoadedTable)
        assert loaded.quality.rows_read == 5 and loaded.quality.rows_kept == 5, name
        pd.testing.assert_frame_equal(loaded.frame, reference, check_dtype=True, obj=name)


def test_columns_mapping_renames_and_keeps_extra_columns_as_properties(tmp_path):
    csv = write_csv(
        tmp_path / "raw.csv",
        [
            "visitor,ts,action,source,revenue,score,zip",
            "a,2026-05-01 10:00,site_visit,email,,7,01234",
            "b,2026-05-01 11:00,booking_completed,,99.5,8,98765",
        ],
    )
    loaded = load_events(
        csv,
        columns={
            "visitor": "user_id",
            "ts": "timestamp",
            "action": "event",
            "source": "channel",
            "revenue": "value",
        },
    )
    frame = loaded.frame
    assert list(frame.columns) == [
        "user_id",
        "timestamp",
        "event",
        "channel",
        "value",
        "score",
        "zip",
    ]
    assert frame["value"].tolist()[1] == 99.5
    assert frame["score"].dtype == "int64"  # every value written as a whole number
    assert frame["zip"].tolist() == ["01234", "98765"]  # a leading zero keeps the column text


def test_dtypes_makes_property_types_explicit(tmp_path):
    csv = write_csv(
        tmp_path / "e.csv",
        ["user_id,timestamp,event,zip,flag", "a,2026-05-01,x,123,yes", "b,2026-05-01,y,456,no"],
    )
    frame = load_events(csv, dtypes={"zip": "str", "flag": "bool"}).frame
    assert frame["zip"].tolist() == ["123", "456"]
    assert frame["flag"].tolist() == [True, False]
    with pytest.raises(SchemaError, match="did you mean 'zip'"):
        load_events(csv, dtypes={"zp": "str"})


# -- DT-1: ids are text ---------------------------------------------------------------


def test_ids_are_read_as_text_and_blank_ids_are_counted(tmp_path):
    csv = write_csv(
        tmp_path / "ids.csv",
        [
            "user_id,timestamp,event",
            "00123,2026-05-01 10:00,site_visit",
            "123,2026-05-01 10:00,site_visit",
            "9007199254740993,2026-05-01 10:00,site_visit",
            ",2026-05-01 10:00,site_visit",
            "   ,2026-05-01 10:00,site_visit",
            "9007199254740992,2026-05-01 10:00,site_visit",
        ],
    )
    loaded = load_events(csv)
    ids = loaded.frame["user_id"]
    assert set(ids) == {"00123", "123", "9007199254740993", "9007199254740992"}
    assert ids.nunique() == 4
    assert loaded.quality.count("missing user_id") == 2
    step = next(s for s in loaded.quality.steps if s.step == "missing user_id")
    assert step.rows == (5, 6)  # file lines, header = line 1
    assert "missing user_id: 2 rows dropped" in loaded.quality.summary()
    assert loaded.quality.rows_read == 6 == loaded.quality.rows_kept + loaded.quality.rows_dropped


def test_integer_ids_from_parquet_keep_every_digit(tmp_path):
    frame = pd.DataFrame(
        {
            "user_id": np.array([9007199254740993, 123], dtype=np.int64),
            "timestamp": pd.Timestamp("2026-05-01", tz="UTC"),
            "event": "x",
        }
    )
    path = tmp_path / "ids.parquet"
    frame.to_parquet(path)
    assert sorted(load_events(path).frame["user_id"]) == ["123", "9007199254740993"]


def test_float_ids_become_whole_number_text_and_are_counted():
    frame = pd.DataFrame(
        {
            "user_id": [17850.0, np.nan, 12346.0],
            "timestamp": ["2026-05-01"] * 3,
            "event": ["x", "y", "z"],
        }
    )
    loaded = load_events(frame)
    assert sorted(loaded.frame["user_id"]) == ["12346", "17850"]
    assert loaded.quality.count("user_id written as float") == 2
    assert loaded.quality.count("missing user_id") == 1


def test_fractional_float_ids_raise():
    frame = pd.DataFrame(
        {"user_id": [1.0, 2.5], "timestamp": ["2026-05-01"] * 2, "event": ["x", "y"]}
    )
    with pytest.raises(DataError, match=r"not whole.*'user_id'.*at row 2\b"):
        load_events(frame)


# -- DT-2: deterministic order ----------------------------------------------------------


def tied_events() -> pd.DataFrame:
    t = pd.Timestamp("2026-05-01 10:00", tz="UTC")
    return pd.DataFrame(
        {
            "user_id": ["u2", "u1", "u1", "u1", "u1", "u1", "u1", "u2"],
            "timestamp": [t, t, t, t, t, t + pd.Timedelta("1s"), t, t],
            "event": [
                "site_visit",
                "booking_completed",
                "booking_started",
                "site_visit",
                "site_visit",
                "review_posted",
                "custom_event",
                "ad_impression",
            ],
            "channel": [None, None, None, "email", "direct", None, None, "social"],
            "value": [np.nan, 120.0, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
            "session_id": ["s9", "s1", "s1", "s2", "s1", "s1", "s1", "s9"],
        }
    )


def test_sort_events_orders_ties_by_stage_map_then_name_channel_value():
    ordered = sort_events(tied_events())
    u1 = ordered[ordered["user_id"] == "u1"]
    assert u1["event"].tolist() == [
        "site_visit",  # consideration: direct before email
        "site_visit",
        "booking_started",  # purchase: listed before booking_completed in the stage map
        "booking_completed",
        "custom_event",  # in no stage: after every listed event
        "review_posted",  # one second later
    ]
    assert u1["channel"].tolist()[:2] == ["direct", "email"]
    assert ordered["user_id"].tolist()[-2:] == ["u2", "u2"]
    assert ordered["event"].tolist()[-2:] == ["ad_impression", "site_visit"]


@pytest.mark.parametrize("seed", range(5))
def test_shuffled_input_gives_the_identical_order(seed):
    events = tied_events()
    shuffled = events.sample(frac=1, random_state=seed).reset_index(drop=True)
    pd.testing.assert_frame_equal(sort_events(shuffled), sort_events(events))
    pd.testing.assert_frame_equal(load_events(shuffled).frame, load_events(events).frame)


def test_a_custom_stage_map_decides_the_tie_order():
    events = tied_events().iloc[1:3]
    stage_map = {
        "stages": [
            {"name": "done", "events": ["booking_completed"]},
            {"name": "start", "events": ["booking_started"]},
        ]
    }
    assert sort_events(events, stage_map)["event"].tolist() == [
        "booking_completed",
        "booking_started",
    ]


# -- DT-3: time zones and DST --------------------------------------------------------------


def dst_frame(times: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"user_id": [f"u{i}" for i in range(len(times))], "timestamp": times, "event": "site_visit"}
    )


def test_nonexistent_spring_time_is_shifted_forward_and_counted():
    loaded = load_events(
        dst_frame(["2024-03-10 02:30:00", "2024-03-10 01:30:00"]), tz="America/New_York"
    )
    by_user = loaded.frame.set_index("user_id")["timestamp"]
    assert by_user["u0"] == pd.Timestamp("2024-03-10 07:00", tz="UTC")  # 03:00 EDT
    assert by_user["u1"] == pd.Timestamp("2024-03-10 06:30", tz="UTC")  # 01:30 EST
    assert loaded.quality.count("nonexistent local time") == 1
    backward = load_events(
        dst_frame(["2024-03-10 02:30:00"]), tz="America/New_York", nonexistent="shift_backward"
    )
    assert backward.frame["timestamp"][0] == pd.Timestamp(
        "2024-03-10 06:59:59.999999", tz="UTC"
    )  # text is read to the microsecond


def test_nonexistent_time_raise_names_the_row():
    with pytest.raises(
        DataError, match=r"(?s)do not exist in America/New_York.*at row 2\b.*shift_forward"
    ):
        load_events(
            dst_frame(["2024-03-10 01:00", "2024-03-10 02:15"]),
            tz="America/New_York",
            nonexistent="raise",
        )


@pytest.mark.parametrize(
    ("policy", "expected"), [("earliest", "2024-11-03 05:30"), ("latest", "2024-11-03 06:30")]
)
def test_ambiguous_autumn_time_follows_the_policy(policy, expected):
    loaded = load_events(
        dst_frame(["2024-11-03 01:30:00"]), tz="America/New_York", ambiguous=policy
    )
    assert loaded.frame["timestamp"][0] == pd.Timestamp(expected, tz="UTC")
    assert loaded.quality.count("ambiguous local time") == 1


def test_ambiguous_time_raise():
    with pytest.raises(DataError, match=r"(?s)occur twice.*ambiguous='earliest'"):
        load_events(dst_frame(["2024-11-03 01:30:00"]), tz="America/New_York", ambiguous="raise")


@pytest.mark.parametrize("month", ["2024-03", "2024-11"])
def test_daily_totals_in_local_time_sum_to_the_month(month):
    start = pd.Timestamp(f"{month}-01")
    wall_clock = pd.date_range(
        start, start + pd.offsets.MonthEnd(0) + pd.Timedelta("23h"), freq="h"
    )
    frame = dst_frame([t.strftime("%Y-%m-%d %H:%M:%S") for t in wall_clock])
    loaded = load_events(frame, tz="America/New_York")
    assert loaded.quality.rows_kept == len(wall_clock)  # nothing lost on DST days
    local_day = loaded.frame["timestamp"].dt.tz_convert("America/New_York").dt.date
    daily = local_day.value_counts().sort_index()
    assert daily.sum() == len(wall_clock)
    assert (daily == 24).all()  # every local day keeps its 24 hourly events
    assert (
        loaded.quality.count("nonexistent local time")
        + loaded.quality.count("ambiguous local time")
        == 1
    )


def test_offsets_are_exact_and_ignore_tz():
    frame = dst_frame(
        ["2024-03-10T02:30:00-05:00", "2024-03-10 07:30:00Z", "2024-03-10T08:30:00+0100"]
    )
    loaded = load_events(frame, tz="America/New_York")
    assert (loaded.frame["timestamp"] == pd.Timestamp("2024-03-10 07:30", tz="UTC")).all()
    assert loaded.quality.count("nonexistent local time") == 0


def test_naive_and_tz_aware_parquet(tmp_path):
    naive = pd.DataFrame(
        {"user_id": ["a"], "timestamp": [pd.Timestamp("2024-07-01 12:00")], "event": ["x"]}
    )
    aware = naive.assign(timestamp=naive["timestamp"].dt.tz_localize("Europe/Berlin"))
    naive.to_parquet(tmp_path / "naive.parquet")
    aware.to_parquet(tmp_path / "aware.parquet")
    as_utc = load_events(tmp_path / "naive.parquet")
    assert as_utc.frame["timestamp"][0] == pd.Timestamp("2024-07-01 12:00", tz="UTC")
    assert any("read as UTC" in n for n in as_utc.quality.notes)
    local = load_events(tmp_path / "naive.parquet", tz="America/New_York")
    assert local.frame["timestamp"][0] == pd.Timestamp("2024-07-01 16:00", tz="UTC")
    berlin = load_events(
        tmp_path / "aware.parquet", tz="America/New_York"
    )  # tz ignored: the data carry one
    assert berlin.frame["timestamp"][0] == pd.Timestamp("2024-07-01 10:00", tz="UTC")


def test_unreadable_timestamps_name_file_column_lines_and_fix(tmp_path):
    csv = write_csv(
        tmp_path / "t.csv", ["user_id,timestamp,event", "a,2026-05-01,x", "b,01/05/2026 10:00,x"]
    )
    with pytest.raises(
        DataError, match=r"(?s)not timestamps.*'timestamp'.*at line 3 .*timestamp_format"
    ) as info:
        load_events(csv)
    assert info.value.source == str(csv) and info.value.rows == [3]
    loaded = load_events(
        write_csv(tmp_path / "u.csv", ["user_id,timestamp,event", "b,01/05/2026 10:00,x"]),
        timestamp_format="%d/%m/%Y %H:%M",
    )
    assert loaded.frame["timestamp"][0] == pd.Timestamp("2026-05-01 10:00", tz="UTC")


# -- DT-4: duplicates ------------------------------------------------------------------------


def duplicate_events() -> pd.DataFrame:
    t = pd.Timestamp("2026-05-01 10:00", tz="UTC")
    s = pd.Timedelta("1s")
    return pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "a", "a", "a", "b"],
            "timestamp": [t, t, t + 0.4 * s, t + 0.9 * s, t + 5 * s, t, t],
            "event": ["site_visit"] * 5 + ["booking_completed", "site_visit"],
            "channel": ["email"] * 5 + [None, "email"],
            "value": [np.nan] * 5 + [50.0, np.nan],
        }
    )


def test_exact_and_near_duplicates_are_removed_and_counted():
    loaded = load_events(duplicate_events())
    assert loaded.quality.count("exact duplicate") == 1
    assert (
        loaded.quality.count("near duplicate") == 2
    )  # 0.4 s and 0.9 s: a burst collapses to its first
    assert len(loaded.frame) == 4
    assert loaded.frame["timestamp"].tolist()[:3] == [
        pd.Timestamp("2026-05-01 10:00", tz="UTC")
    ] * 2 + [pd.Timestamp("2026-05-01 10:00:05", tz="UTC")]


def test_dedupe_window_and_switch():
    assert len(load_events(duplicate_events(), dedupe_window=None).frame) == 6
    assert len(load_events(duplicate_events(), dedupe_window="10s").frame) == 3
    kept = load_events(duplicate_events(), dedupe=False)
    assert len(kept.frame) == 7 and kept.quality.rows_dropped == 0
    with pytest.raises(ParameterError, match="dedupe_window"):
        load_events(duplicate_events(), dedupe_window="soon")


def test_events_differing_in_value_are_not_near_duplicates():
    frame = duplicate_events().iloc[[0, 2]].copy()
    frame["value"] = [1.0, 2.0]
    assert len(load_events(frame).frame) == 2


# -- DT-5: a column that turns to text late ---------------------------------------------------------


@pytest.fixture(scope="module")
def late_text_csv(tmp_path_factory) -> Path:
    """150,000 short rows; the value column turns to text after row 100,000."""
    n = 150_000
    values = [str(i % 97) for i in range(n)]
    values[100_000] = "abc"
    values[120_000] = "n/a"
    lines = ["user_id,timestamp,event,value"] + [
        f"u{i},2026-05-01 10:00,x,{v}" for i, v in enumerate(values)
    ]
    path = tmp_path_factory.mktemp("dt5") / "late_text.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_numeric_column_turning_to_text_late_fails_loudly(late_text_csv):
    with pytest.raises(DataError) as info:
        load_events(late_text_csv, dedupe=False)
    message = str(info.value)
    assert "late_text.csv" in message and "'value'" in message
    assert "at lines 100002, 120002" in message and "'abc'" in message
    assert info.value.column == "value" and info.value.rows == [100002, 120002]


def test_text_property_column_keeps_every_row(late_text_csv):
    loaded = load_events(late_text_csv, columns={"value": "amount"}, dedupe=False)
    assert loaded.quality.rows_read == 150_000 == len(loaded.frame)
    amount = loaded.frame.set_index("user_id")["amount"]
    assert amount["u100000"] == "abc" and amount["u5"] == "5"  # kept as text, never NaN
    assert loaded.frame["amount"].isna().sum() == 0


def test_csv_options_that_skip_rows_are_refused(tmp_path):
    csv = write_csv(tmp_path / "e.csv", ["user_id,timestamp,event", "a,2026-05-01,x"])
    with pytest.raises(ParameterError, match="ignore_errors"):
        load_events(csv, csv_options={"ignore_errors": True})
    semicolon = write_csv(tmp_path / "s.csv", ["user_id;timestamp;event", "a;2026-05-01;x"])
    assert load_events(semicolon, csv_options={"delim": ";"}).frame["user_id"].tolist() == ["a"]


def test_ragged_csv_line_raises_with_the_file(tmp_path):
    csv = write_csv(
        tmp_path / "ragged.csv",
        ["user_id,timestamp,event", "a,2026-05-01,x", "b,2026-05-01,x,extra,more"],
    )
    with pytest.raises(DataError, match="ragged.csv"):
        load_events(csv)


# -- DT-6: channel names -----------------------------------------------------------------------------


def test_channel_names_are_canonicalised_and_the_mapping_reported():
    nfc, nfd = "Café", unicodedata.normalize("NFD", "Café")
    assert nfc != nfd
    channels = [nfc, nfc, nfd, "Email", "Email", "email ", "E\u200bmail", "Sms", "SMS", None]
    frame = pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(10)],
            "timestamp": "2026-05-01",
            "event": "site_visit",
            "channel": channels,
        }
    )
    loaded = load_events(frame)
    by_user = loaded.frame.set_index("user_id")["channel"]
    assert by_user[[f"u{i}" for i in range(3)]].tolist() == ["Café"] * 3
    assert by_user[[f"u{i}" for i in range(3, 7)]].tolist() == ["Email"] * 4
    assert by_user[["u7", "u8"]].tolist() == ["SMS", "SMS"]  # tie: alphabetical
    assert pd.isna(by_user["u9"])
    mapping = loaded.quality.channel_mapping
    assert dict(zip(mapping["raw"], mapping["channel"], strict=True)) == {
        nfd: "Café",
        "email ": "Email",
        "E\u200bmail": "Email",
        "Sms": "SMS",
    }
    assert loaded.quality.count("channel names canonicalised") == 4
    assert "'E\\u200bmail' → 'Email'" in loaded.quality.summary()


# -- errors --------------------------------------------------------------------------------------------


def test_missing_required_column_suggests_the_closest_name():
    frame = pd.DataFrame({"userid": ["a"], "timestamp": ["2026-05-01"], "event": ["x"]})
    with pytest.raises(SchemaError, match=r"'user_id' \(did you mean 'userid'\?\)") as info:
        load_events(frame)
    assert info.value.missing_columns == ("user_id",)
    assert "__source_row__" not in str(info.value)


def test_columns_key_not_in_source_suggests_the_closest_name(tmp_path):
    csv = write_csv(tmp_path / "e.csv", ["customer_id,timestamp,event", "a,2026-05-01,x"])
    with pytest.raises(
        SchemaError, match=r"(?s)'customerid' \(did you mean 'customer_id'\?\).*e.csv"
    ):
        load_events(csv, columns={"customerid": "user_id"})


def test_two_columns_mapped_to_one_name_raise():
    frame = pd.DataFrame(
        {"user_id": ["a"], "uid": ["b"], "timestamp": ["2026-05-01"], "event": ["x"]}
    )
    with pytest.raises(SchemaError, match="both be called 'user_id'"):
        load_events(frame, columns={"uid": "user_id"})


def test_source_errors(tmp_path):
    with pytest.raises(ParameterError, match="Cannot tell the format"):
        load_events(tmp_path / "events.xlsx")
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        load_events(tmp_path / "missing.csv")
    database = tmp_path / "w.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE TABLE events (user_id VARCHAR, timestamp TIMESTAMPTZ, event VARCHAR)")
    with pytest.raises(ParameterError, match="table='events'"):
        load_events(database)
    with pytest.raises(SchemaError, match="did you mean 'events'"):
        load_events(database, table="event")
    assert load_events(database, table="events").quality.rows_read == 0
    with pytest.raises(ParameterError, match="nonexistent"):
        load_events(dst_frame(["2024-01-01"]), nonexistent="later")
    with pytest.raises(ParameterError, match="not a known time zone"):
        load_events(dst_frame(["2024-01-01"]), tz="Mars/Olympus")


# -- start / end and the out-of-core relation -------------------------------------------------------------


@pytest.fixture
def three_months(tmp_path) -> Path:
    times = pd.date_range("2026-04-01", "2026-06-30 23:00", freq="6h", tz="UTC")
    frame = pd.DataFrame(
        {
            "user_id": [f"u{i % 7}" for i in range(len(times))],
            "timestamp": times,
            "event": "site_visit",
            "channel": "email",
            "value": 1.0,
        }
    )
    path = tmp_path / "three_months.parquet"
    frame.to_parquet(path, row_group_size=50)
    return path


def test_start_end_keep_exactly_the_window(three_months, tmp_path):
    loaded = load_events(three_months, start="2026-05-01", end="2026-06-01")
    stamps = loaded.frame["timestamp"]
    assert len(loaded.frame) == 31 * 4 == loaded.quality.rows_read
    assert stamps.min() == pd.Timestamp("2026-05-01", tz="UTC") and stamps.max() < pd.Timestamp(
        "2026-06-01", tz="UTC"
    )
    assert any("in [" in n for n in loaded.quality.notes)
    # naive local text: the window is applied after the time-zone conversion
    csv = write_csv(
        tmp_path / "local.csv",
        [
            "user_id,timestamp,event",
            "a,2026-04-30 21:30,x",
            "b,2026-04-30 19:30,x",
            "c,2026-05-31 19:59,x",
            "d,2026-05-31 20:00,x",
        ],
    )
    local = load_events(csv, tz="America/New_York", start="2026-05-01", end="2026-06-01")
    assert sorted(local.frame["user_id"]) == ["a", "c"]  # 01:30Z and 23:59Z, in UTC


def test_events_relation_has_canonical_columns_and_pushes_the_filter_down(three_months):
    rel = events_relation(three_months, start="2026-05-01", end="2026-06-01")
    assert rel.columns[:5] == ["user_id", "timestamp", "event", "channel", "value"]
    assert [str(t) for t in rel.types[:3]] == ["VARCHAR", "TIMESTAMP WITH TIME ZONE", "VARCHAR"]
    counts = rel.aggregate("event, count(*) AS n", "event").df()
    assert counts["n"].tolist() == [124]
    scan = rel.explain().split("Read Parquet")[1]  # the date filter sits in the Parquet scan itself
    assert "timestamp >= '2026-05-01 00:00:00+00'" in scan and "timestamp < '2026-06-01" in scan


def test_events_relation_on_csv_and_dataframe(tmp_path):
    csv = write_csv(
        tmp_path / "e.csv",
        [
            "visitor,ts,event,value",
            "00123,2026-05-01 10:00:00,x,1.5",
            ",2026-05-01 10:00:00,x,",
            "7,2026-05-01T12:00:00+02:00,y,",
        ],
    )
    frame = (
        events_relation(csv, columns={"visitor": "user_id", "ts": "timestamp"})
        .df()
        .sort_values("user_id")
    )
    assert frame["user_id"].tolist() == ["00123", "7"]  # blank id left out
    assert (
        frame["timestamp"].dt.tz_convert("UTC").tolist()
        == [pd.Timestamp("2026-05-01 10:00", tz="UTC")] * 2
    )
    df = pd.DataFrame(
        {"user_id": [17850.0, 1.0], "timestamp": pd.Timestamp("2026-05-01", tz="UTC"), "event": "x"}
    )
    assert sorted(events_relation(df).df()["user_id"]) == ["1", "17850"]
    with pytest.raises(SchemaError, match=r"'event' \(did you mean 'events'\?\)"):
        events_relation(df.rename(columns={"event": "events"}))


# -- the example file ----------------------------------------------------------------------------------------


def test_dirty_example_file_report():
    loaded = load_events(EXAMPLES / "dirty_events.csv", tz="America/New_York")
    q = loaded.quality
    assert (q.rows_read, q.rows_kept, q.rows_dropped) == (32, 23, 9)
    expected = {
        "nonexistent local time": 1,
        "ambiguous local time": 2,
        "missing user_id": 2,
        "missing timestamp": 1,
        "event text cleaned": 1,
        "missing event": 1,
        "channel names canonicalised": 7,
        "exact duplicate": 2,
        "near duplicate": 3,
    }
    assert {s.step: s.count for s in q.steps} == expected
    assert set(loaded.frame["channel"].dropna()) == {
        "Social",
        "Email",
        "Paid Search",
        "Organic Search",
        "Phone",
        "Café",
        "Referral",
    }
    first_user = loaded.frame[loaded.frame["user_id"] == "00123"]["event"].tolist()
    assert first_user[-2:] == ["booking_started", "booking_completed"]


def test_bad_value_example_raises():
    with pytest.raises(DataError, match=r"lines 7, 9"):
        load_events(EXAMPLES / "bad_value_type.csv")


# -- the other tables ---------------------------------------------------------------------------------------


def assignment_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "uid": ["1", "2", "2", "3", "3", "4", "5", "5", "6", ""],
            "group": [
                "control",
                "treatment",
                "treatment",
                "control",
                "treatment",
                "control",
                "treatment",
                "treatment",
                "control",
                "control",
            ],
            "page": ["old", "new", "new", "old", "new", "new", "new", "new", "old", "old"],
            "ts": [
                "2026-05-01 10:00",
                "2026-05-01 11:00",
                "2026-05-01 11:00",
                "2026-05-01",
                "2026-05-02",
                "2026-05-01",
                "2026-05-03",
                "2026-05-02",
                "2026-05-01",
                "2026-05-01",
            ],
            "converted": [0, 1, 1, 0, 1, 0, 0, 1, 1, 0],
        }
    )


def test_load_assignments_counts_every_cleaning_step():
    loaded = load_assignments(
        assignment_rows(),
        columns={"uid": "user_id", "group": "variant", "ts": "assigned_at"},
        consistency={"page": {"control": "old", "treatment": "new"}},
    )
    q = loaded.quality
    assert {s.step: s.count for s in q.steps} == {
        "missing user_id": 1,
        "variant/page mismatch": 1,  # user 4: control shown the new page
        "exact duplicate": 1,  # user 2
        "user in several variants": 2,  # user 3
        "repeated assignment": 1,  # user 5: the earlier assignment (2026-05-02) is kept
    }
    frame = loaded.frame.set_index("user_id")
    assert sorted(frame.index) == ["1", "2", "5", "6"]
    assert frame.loc["5", "assigned_at"] == pd.Timestamp("2026-05-02", tz="UTC")
    assert frame.loc["5", "converted"] == 1
    assert "users per variant: control 2 · treatment 2." in q.summary()


def test_load_assignments_consistency_errors():
    columns = {"uid": "user_id", "group": "variant"}
    with pytest.raises(SchemaError, match="did you mean 'page'"):
        load_assignments(
            assignment_rows(), columns=columns, consistency={"pages": {"control": "old"}}
        )
    with pytest.raises(ParameterError, match="treatment"):
        load_assignments(
            assignment_rows(), columns=columns, consistency={"page": {"control": "old"}}
        )


def test_load_assignments_ids_from_rows():
    frame = pd.DataFrame({"segment": ["A", "B", "A"], "visit": [1, 0, 1]})
    loaded = load_assignments(frame, columns={"segment": "variant"}, user_id_from_row=True)
    assert loaded.frame["user_id"].tolist() == ["1", "2", "3"]
    with pytest.raises(ParameterError, match="already has a user_id"):
        load_assignments(
            frame.assign(user_id="x"), columns={"segment": "variant"}, user_id_from_row=True
        )


def feedback_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": ["a", "b", "c", "d", "e", ""],
            "timestamp": ["2026-05-01"] * 6,
            "survey": ["nps", "NPS", "csat", "csat", "nps", "nps"],
            "score": ["10", "0", "5", "6", "7.5", "9"],
            "text": ["great", "slow", "ok", "", "fine", "x"],
        }
    )


def test_load_feedback_validates_scores_against_the_scale():
    with pytest.raises(DataError, match=r"outside their scale.*'score'.*rows 4, 5"):
        load_feedback(feedback_rows())
    loaded = load_feedback(feedback_rows(), invalid="drop")
    assert loaded.quality.count("score out of range") == 2
    assert loaded.quality.count("missing user_id") == 1
    assert loaded.frame["score"].tolist() == [10.0, 0.0, 5.0]
    assert loaded.frame["survey"].tolist() == ["nps", "nps", "csat"]
    with pytest.raises(DataError, match=r"rows 1, 2, 4, 5"):
        load_feedback(feedback_rows().drop(columns="survey"), scale="csat")
    with pytest.raises(ParameterError, match="scale='nps'"):
        load_feedback(feedback_rows().drop(columns="survey"))


def test_load_feedback_by_touchpoint_without_user_id():
    frame = pd.DataFrame(
        {"touchpoint": ["call", None], "timestamp": ["2026-05-01"] * 2, "score": [4, 3]}
    )
    loaded = load_feedback(frame, scale="csat")
    assert (
        loaded.frame["touchpoint"].tolist() == ["call"]
        and loaded.quality.count("missing touchpoint") == 1
    )
    with pytest.raises(SchemaError, match="user_id"):
        load_feedback(frame.drop(columns="touchpoint"), scale="csat")


def test_load_spend():
    frame = pd.DataFrame(
        {
            "channel": ["Email", "email ", "Paid Search", "Social"],
            "day": ["2026-05-01", "2026-05-01 13:00", "2026-05-02", "2026-05-02"],
            "cost": ["10.5", "4.5", "100", ""],
        }
    )
    loaded = load_spend(frame, columns={"day": "date"})
    assert loaded.frame["channel"].tolist() == ["Email", "Email", "Paid Search"]
    assert str(loaded.frame["date"].dtype) == "datetime64[ns]"
    assert loaded.frame["date"].tolist()[1] == pd.Timestamp("2026-05-01")
    assert (
        loaded.quality.count("missing cost") == 1
        and loaded.quality.count("time of day dropped") == 1
    )
    with pytest.raises(DataError, match=r"Negative costs.*'cost'.*at row 2\b"):
        load_spend(frame.assign(cost=["1", "-3", "2", "4"]), columns={"day": "date"})


def test_load_transactions_keeps_refunds_and_counts_missing_ids():
    frame = pd.DataFrame(
        {
            "user_id": ["a", "a", "", "b", "b"],
            "timestamp": [
                "2026-05-01 10:00",
                "2026-05-02 10:00",
                "2026-05-01",
                "2026-05-03",
                "2026-05-03",
            ],
            "value": [50.0, -20.0, 10.0, 30.0, 30.0],
            "order_id": ["o1", "o2", "o3", "o4", "o4"],
        }
    )
    loaded = load_transactions(frame)
    assert loaded.quality.count("missing user_id") == 1
    assert loaded.quality.count("refund") == 1
    assert loaded.quality.count("exact duplicate (kept)") == 1
    assert loaded.frame["value"].sum() == 90.0
    assert len(load_transactions(frame, drop_duplicates=True).frame) == 3


def test_load_transactions_derives_value_with_a_query(tmp_path):
    csv = write_csv(
        tmp_path / "retail.csv",
        [
            "InvoiceNo,CustomerID,InvoiceDate,Quantity,UnitPrice",
            "1,17850.0,2010-12-01 08:26:00,6,2.55",
            "2,,2010-12-01 08:28:00,2,1.0",
            "C3,17850.0,2010-12-02 09:00:00,-1,2.55",
        ],
    )
    loaded = load_transactions(
        query=f"SELECT *, Quantity * UnitPrice AS value FROM read_csv('{csv}')",
        columns={"CustomerID": "user_id", "InvoiceDate": "timestamp", "InvoiceNo": "order_id"},
    )
    assert loaded.frame["user_id"].tolist() == ["17850", "17850"]
    assert loaded.frame["value"].round(2).tolist() == [15.3, -2.55]
    assert loaded.quality.count("missing user_id") == 1 and loaded.quality.count("refund") == 1


def test_loaded_table_renders_as_text_and_html():
    loaded = load_events(duplicate_events())
    text = repr(loaded)
    assert "4 rows × 5 columns" in text and "near duplicate: 2 rows deduplicated" in text
    page = loaded._repr_html_()
    assert "<table" in page and "near duplicate" in page and "Data quality" in page


def test_events_relation_reads_nanosecond_parquet_as_pandas_writes_it(tmp_path):
    from journeylab.io.loaders import events_relation

    frame = pd.DataFrame(
        {
            "user_id": ["a", "b", "c"],
            "timestamp": pd.to_datetime(
                ["2026-09-30 23:59:59", "2026-10-01 10:00:00", "2026-11-01 00:00:00"], utc=True
            ).as_unit("ns"),
            "event": ["x", "y", "z"],
        }
    )
    for name, stamps in (
        ("aware", frame["timestamp"]),
        ("naive", frame["timestamp"].dt.tz_localize(None)),
    ):
        path = tmp_path / f"{name}.parquet"
        frame.assign(timestamp=stamps).to_parquet(path)
        out = events_relation(path, start="2026-10-01", end="2026-11-01").df()
        assert out["user_id"].tolist() == ["b"], name
        assert out["timestamp"].iloc[0] == pd.Timestamp("2026-10-01 10:00:00", tz="UTC")
