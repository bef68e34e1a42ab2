"""The one reading of times, durations and months (journeylab.core.timeparse).

Every accepted form is checked against the value pandas or the calendar gives
for it; every rejected form against the one message for that mistake, and the
callers across the packages are checked to use that message.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from journeylab.core.errors import DataError, ParameterError
from journeylab.core.timeparse import (
    format_time,
    month_bounds,
    naive_utc,
    parse_duration,
    parse_month,
    to_utc_series,
    to_utc_timestamp,
)

UTC = "UTC"


# -- times ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-10-01", "2026-10-01 00:00"),
        ("2026-10-01 09:30", "2026-10-01 09:30"),
        ("2026-10-01T09:30:00+02:00", "2026-10-01 07:30"),
        (dt.date(2026, 10, 1), "2026-10-01 00:00"),
        (dt.datetime(2026, 10, 1, 9, 30), "2026-10-01 09:30"),
        (np.datetime64("2026-10-01T09:30"), "2026-10-01 09:30"),
        (pd.Timestamp("2026-10-01 09:30", tz="America/New_York"), "2026-10-01 13:30"),
    ],
)
def test_times_are_read_as_utc(value, expected):
    got = to_utc_timestamp(value, "start")
    assert str(got.tz) == UTC
    assert got == pd.Timestamp(expected, tz=UTC)


@pytest.mark.parametrize("value", ["soon", "", "NaT", "2026-13-01", 20261001, 1.5e18, True, [2026]])
def test_a_value_that_is_not_a_time_gets_the_one_message(value):
    with pytest.raises(ParameterError) as info:
        to_utc_timestamp(value, "period_end")
    assert str(info.value) == (
        f"period_end == {value!r}: not a date or time; write e.g. '2026-10-01' or "
        "'2026-10-01 09:30' (UTC unless an offset is given)."
    )


def test_none_is_a_missing_time_unless_optional():
    assert to_utc_timestamp(None, "start", optional=True) is None
    with pytest.raises(
        ParameterError, match=r"^start is missing: give a date or time, e\.g\. '2026-10-01'"
    ):
        to_utc_timestamp(None, "start")


def test_format_time_writes_midnight_as_a_day():
    assert format_time(pd.Timestamp("2026-10-01", tz=UTC)) == "2026-10-01"
    assert format_time(pd.Timestamp("2026-10-01 09:30", tz=UTC)) == "2026-10-01 09:30 UTC"
    assert format_time(pd.NaT) == format_time(None) == "(none)"


# -- durations ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30D", pd.Timedelta(days=30)),
        ("12h", pd.Timedelta(hours=12)),
        ("30min", pd.Timedelta(minutes=30)),
        ("1 day 2h", pd.Timedelta(hours=26)),
        ("1W", pd.Timedelta(days=7)),
        ("P30D", pd.Timedelta(days=30)),
        ("PT12H", pd.Timedelta(hours=12)),
        ("P1DT6H30M", pd.Timedelta(hours=30, minutes=30)),
        ("P2W", pd.Timedelta(days=14)),
        ("PT0.5S", pd.Timedelta(milliseconds=500)),
        (pd.Timedelta(hours=3), pd.Timedelta(hours=3)),
        (dt.timedelta(minutes=5), pd.Timedelta(minutes=5)),
        (np.timedelta64(90, "s"), pd.Timedelta(seconds=90)),
    ],
)
def test_durations(value, expected):
    assert parse_duration(value, "lookback") == expected


DURATION_HINT = "write e.g. '30D', '12h', '30min' or 'P30D'."


@pytest.mark.parametrize(
    "value",
    [
        "30 parsecs",
        "soon",
        "",
        "NaT",
        None,
        True,
        # pandas reads these as 30 ns and 1 minute: refused rather than misread
        "30",
        30,
        "P1M",
        "P1Y",
        "P",
        "PT",
        "p30d",
    ],
)
def test_a_value_that_is_not_a_duration_gets_the_one_message(value):
    with pytest.raises(ParameterError) as info:
        parse_duration(value, "lookback")
    assert str(info.value) == f"lookback == {value!r}: not a duration; {DURATION_HINT}"


@pytest.mark.parametrize("value", ["0D", "-3D", "PT0S", pd.Timedelta(0)])
def test_zero_and_negative_durations_are_refused(value):
    with pytest.raises(ParameterError) as info:
        parse_duration(value, "window")
    assert str(info.value) == f"window == {value!r}: not a positive duration; {DURATION_HINT}"


def test_zero_is_allowed_where_it_means_something_and_negatives_still_are_not():
    assert parse_duration("0s", "dedupe_window", allow_zero=True) == pd.Timedelta(0)
    with pytest.raises(
        ParameterError, match=r"^dedupe_window == '-1s': a negative duration; write e\.g\."
    ):
        parse_duration("-1s", "dedupe_window", allow_zero=True)


def test_numbers_are_durations_only_where_the_unit_is_named():
    assert parse_duration(7, "half_life", number_unit="D") == pd.Timedelta(days=7)
    assert parse_duration(1.5, "half_life", number_unit="D") == pd.Timedelta(hours=36)
    assert parse_duration("7D", "half_life", number_unit="D") == pd.Timedelta(days=7)
    with pytest.raises(ParameterError) as info:
        parse_duration(float("nan"), "half_life", number_unit="D")
    assert str(info.value) == (
        "half_life == nan: not a duration; write e.g. a number of days, '30D', '12h', '30min' or 'P30D'."
    )
    with pytest.raises(ParameterError, match="half_life == 0: not a positive duration"):
        parse_duration(0, "half_life", number_unit="D")


def test_optional_durations():
    assert parse_duration(None, "dedupe_window", optional=True) is None


@given(st.integers(0, 60), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_iso_durations_equal_their_parts(days, hours, minutes, seconds):
    total = pd.Timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    text = f"P{days}DT{hours}H{minutes}M{seconds}S"
    if total > pd.Timedelta(0):
        assert parse_duration(text, "gap") == total
        assert parse_duration(f"{days}D {hours}h {minutes}min {seconds}s", "gap") == total
    else:
        with pytest.raises(ParameterError, match="not a positive duration"):
            parse_duration(text, "gap")


# -- months ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        ("2026-10", "2026-10-01", "2026-11-01"),
        ("2026-12", "2026-12-01", "2027-01-01"),
        ("2024-02", "2024-02-01", "2024-03-01"),
        (pd.Period("2026-03", freq="M"), "2026-03-01", "2026-04-01"),
    ],
)
def test_month_bounds_are_the_half_open_utc_month(value, start, end):
    assert month_bounds(value) == (pd.Timestamp(start, tz=UTC), pd.Timestamp(end, tz=UTC))


def test_previous_is_the_last_full_month():
    assert parse_month("previous", today=dt.date(2026, 1, 1)) == "2025-12"
    assert parse_month("previous", today=dt.date(2026, 11, 30)) == "2026-10"
    first, _ = month_bounds("previous", today=dt.date(2026, 3, 15))
    assert first == pd.Timestamp("2026-02-01", tz=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2026-13",
        "2026-00",
        "2026-1",
        "26-10",
        "2026/10",
        "2026-10-01",
        "June",
        "2026-10\n",  # a trailing newline ($ in a regex would let it through)
        " 2026-10",
        "２０２６-１０",  # full-width digits (\d would let them through)
        "Previous",
        202610,
        None,
        pd.Period("2026-10-01", freq="D"),
    ],
)
def test_a_value_that_is_not_a_month_gets_the_one_message(value):
    with pytest.raises(ParameterError) as info:
        parse_month(value)
    assert str(info.value) == (
        f"month == {value!r}: not a calendar month; write 'YYYY-MM', e.g. '2026-10', or 'previous'."
    )


@given(st.integers(1700, 2200), st.integers(1, 12))
def test_every_month_round_trips_and_its_bounds_touch(year, month):
    text = f"{year:04d}-{month:02d}"
    assert parse_month(text) == text
    start, end = month_bounds(text)
    assert (start.year, start.month, start.day) == (year, month, 1)
    assert end == month_bounds(str(pd.Period(text, freq="M") + 1))[0]
    assert 28 <= (end - start).days <= 31


# -- columns --------------------------------------------------------------------------
def test_columns_are_read_as_utc_and_missing_values_stay_missing():
    values = pd.Series(["2026-05-01", "2026-05-01 12:00:00+02:00", None])
    got = to_utc_series(values, "timestamp")
    assert got.tolist()[:2] == [
        pd.Timestamp("2026-05-01", tz=UTC),
        pd.Timestamp("2026-05-01 10:00", tz=UTC),
    ]
    assert pd.isna(got.iloc[2])
    aware = pd.Series(pd.to_datetime(["2026-01-01 01:00"]).tz_localize("Europe/Paris"))
    assert to_utc_series(aware, "t").iloc[0] == pd.Timestamp("2026-01-01 00:00", tz=UTC)
    naive = pd.Series(pd.to_datetime(["2026-01-01 01:00"]))
    assert to_utc_series(naive, "t").iloc[0] == pd.Timestamp("2026-01-01 01:00", tz=UTC)
    assert naive_utc(aware, "t").iloc[0] == pd.Timestamp("2026-01-01 00:00")
    assert naive_utc(aware, "t").dt.tz is None


def test_a_column_with_unreadable_times_names_the_column_and_rows():
    values = pd.Series(["2026-05-01", "soon", None, "later"], index=[10, 11, 12, 13])
    with pytest.raises(DataError) as info:
        to_utc_series(values, "assigned_at", source="assignments.csv")
    err = info.value
    assert (err.column, err.source, err.rows) == ("assigned_at", "assignments.csv", [11, 13])
    assert str(err).startswith(
        "Column 'assigned_at' has values that are not dates or times: 'soon', 'later'."
    )
    assert "write times in ISO 8601" in str(err)
    with pytest.raises(DataError, match=r"Column 'ts' holds numbers \(int64\), not dates or times"):
        to_utc_series(pd.Series([1, 2]), "ts")


# -- the callers use the one wording ---------------------------------------------------
def test_callers_across_packages_share_the_wording():
    from journeylab.attribution.heuristics import _half_life
    from journeylab.experiments.cuped import check_pre_exposure
    from journeylab.io.pipeline import dedupe_window
    from journeylab.maps.periods import resolve_period
    from journeylab.reports import resolve_month

    with pytest.raises(ParameterError, match=r"^month == '2026-1': not a calendar month"):
        resolve_period(month="2026-1")
    with pytest.raises(ParameterError, match=r"^start == 'soon': not a date or time"):
        resolve_period(start="soon", end="2026-10-01")
    with pytest.raises(ParameterError, match=r"^month == '2026-10\\n': not a calendar month"):
        resolve_month("2026-10\n")
    assert resolve_month("previous", today=dt.date(2026, 11, 23)) == "2026-10"
    with pytest.raises(ParameterError, match=r"^half_life == 'weekly': not a duration"):
        _half_life("weekly")
    with pytest.raises(ParameterError, match=r"^dedupe_window == 'soon': not a duration"):
        dedupe_window("soon")
    frame = pd.DataFrame({"assigned_at": ["2026-05-02"], "x": [1.0]})
    with pytest.raises(
        ParameterError, match=r"^covariate_measured_at == 'never': not a date or time"
    ):
        check_pre_exposure(frame, "x", "never")
