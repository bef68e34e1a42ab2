"""Journeys and the path table: the rules of journeylab.journeys.build on hand-made logs."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from journeylab.core.errors import ParameterError, SchemaError
from journeylab.datasets import sample_stage_map
from journeylab.journeys import build
from journeylab.journeys.build import (
    PATH_COLUMNS,
    Journeys,
)
from journeylab.journeys.rules import DIRECT

#: These logs use the sample's vocabulary: the journey builder is given its stage
#: map explicitly (there is no default stage map).
SAMPLE_STAGES = sample_stage_map()


#: The sample's conversion (the library has none: a project names its own).
SAMPLE_CONVERSION = "booking_completed"


def build_journeys(*args, **kwargs):
    """``build_journeys`` with the sample's stage map and conversion unless the test gives them."""
    kwargs.setdefault("stage_map", SAMPLE_STAGES)
    kwargs.setdefault("conversion", SAMPLE_CONVERSION)
    return build.build_journeys(*args, **kwargs)


def path_table(*args, **kwargs):
    """``path_table`` with the sample's stage map and conversion unless the test gives them (or passes journeys)."""
    if not (args and isinstance(args[0], Journeys)):
        kwargs.setdefault("stage_map", SAMPLE_STAGES)
        kwargs.setdefault("conversion", SAMPLE_CONVERSION)
    return build.path_table(*args, **kwargs)


def sessionize(*args, **kwargs):
    """``sessionize`` with the sample's stage map unless the test gives one."""
    kwargs.setdefault("stage_map", SAMPLE_STAGES)
    return build.sessionize(*args, **kwargs)


END = "2026-06-30"


def make_events(rows: list[tuple]) -> pd.DataFrame:
    """Rows of (user, time, event, channel, value)."""
    frame = pd.DataFrame(rows, columns=["user_id", "timestamp", "event", "channel", "value"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["value"] = frame["value"].astype("float64")
    return frame


@pytest.fixture
def log() -> pd.DataFrame:
    return make_events(
        [
            # u1: social ad, email visit, conversion; then sms visit, conversion again
            ("u1", "2026-05-01 09:00", "ad_impression", "social", None),
            ("u1", "2026-05-02 10:00", "site_visit", "email", None),
            ("u1", "2026-05-02 10:05", "service_page_view", None, None),
            ("u1", "2026-05-02 10:10", "booking_completed", None, 120.0),
            ("u1", "2026-05-10 08:00", "site_visit", "sms", None),
            ("u1", "2026-05-10 08:30", "booking_completed", None, 80.0),
            # u2: two email visits, never converts, long closed
            ("u2", "2026-05-03 12:00", "site_visit", "email", None),
            ("u2", "2026-05-04 12:00", "site_visit", "email", None),
            # u3: converts with no touch at all
            ("u3", "2026-05-05 12:00", "booking_completed", None, 50.0),
            # u4: a visit just before the period end, no conversion yet
            ("u4", "2026-06-25 12:00", "site_visit", "display", None),
        ]
    )


def test_journey_rules_on_hand_made_log(log):
    j = build_journeys(log, period_end=END)
    jr = j.journeys
    assert list(jr.columns) == [
        "journey_id",
        "user_id",
        "start",
        "end",
        "n_touches",
        "converted",
        "value",
        "conversion_time",
        "censored",
        "truncated_touches",
    ]
    assert list(j.touches.columns) == [
        "journey_id",
        "user_id",
        "position",
        "timestamp",
        "channel",
        "event",
    ]
    assert jr["user_id"].tolist() == ["u1", "u1", "u2", "u3", "u4"]
    assert jr["n_touches"].tolist() == [2, 1, 2, 0, 1]
    assert jr["converted"].tolist() == [True, True, False, True, False]
    assert jr["value"].tolist() == [120.0, 80.0, 0.0, 50.0, 0.0]
    assert jr["censored"].tolist() == [False, False, False, False, True]
    # touches of the first journey, in order, without the channel-less page view
    first = j.touches[j.touches["journey_id"] == 1]
    assert first["channel"].tolist() == ["social", "email"]
    assert first["position"].tolist() == [1, 2]
    assert j.left_out["direct_conversions"] == 1
    assert j.left_out["censored_journeys"] == 1
    assert jr.loc[0, "start"] == pd.Timestamp("2026-05-01 09:00", tz="UTC")
    assert jr.loc[0, "end"] == pd.Timestamp("2026-05-02 10:10", tz="UTC")


def test_path_table_columns_totals_and_direct(log):
    j = build_journeys(log, period_end=END)
    pt = path_table(j)
    assert tuple(pt.columns) == PATH_COLUMNS
    rows = {p: (c, v, n) for p, c, v, n in pt.itertuples(index=False)}
    assert rows == {
        ("social", "email"): (1, 120.0, 0),
        ("sms",): (1, 80.0, 0),
        (DIRECT,): (1, 50.0, 0),
        ("email",): (0, 0.0, 1),  # repeats collapsed: email > email -> email
    }
    closed = j.journeys[~j.journeys["censored"]]
    assert pt["conversions"].sum() == closed["converted"].sum() == 3
    assert pt["value"].sum() == pytest.approx(closed["value"].sum()) == 250.0
    assert pt["non_conversions"].sum() == (~closed["converted"]).sum()
    # sorted: conversions desc, non-conversions desc, then path
    assert pt["path"].tolist()[:3] == [(DIRECT,), ("sms",), ("social", "email")]
    assert pt.attrs["left_out"]["censored_journeys"] == 1


def test_repeats_kept_and_censored_included(log):
    pt = path_table(log, period_end=END, collapse_repeats=False, include_censored=True)
    rows = dict(zip(pt["path"], pt["non_conversions"], strict=True))
    assert rows[("email", "email")] == 1
    assert rows[("display",)] == 1
    assert pt["conversions"].sum() + pt["non_conversions"].sum() == 5


def test_path_table_from_events_equals_from_journeys(log):
    a = path_table(log, period_end=END, lookback="10D")
    b = path_table(build_journeys(log, period_end=END, lookback="10D"))
    pd.testing.assert_frame_equal(a, b)


def test_event_and_stage_levels(log):
    pt = path_table(log, period_end=END, level="event", touch_events="all")
    first = pt[pt["value"] == 120.0]["path"].iloc[0]
    assert first == ("ad_impression", "site_visit", "service_page_view")
    st = path_table(log, period_end=END, level="stage", touch_events="all")
    assert st[st["value"] == 120.0]["path"].iloc[0] == ("awareness", "consideration")


def test_ties_give_one_order_whatever_the_input_order():
    # four touches at the same instant: the stage map orders ad_impression before
    # site_visit before phone_call; channel breaks the tie between two visits.
    rows = [
        ("u1", "2026-05-01 10:00", "phone_call", "phone", None),
        ("u1", "2026-05-01 10:00", "site_visit", "social", None),
        ("u1", "2026-05-01 10:00", "site_visit", "email", None),
        ("u1", "2026-05-01 10:00", "ad_impression", "display", None),
        ("u1", "2026-05-01 10:00", "booking_completed", None, 10.0),
    ]
    expected = ("display", "email", "social", "phone")
    rng = np.random.default_rng(5)
    for _ in range(6):
        shuffled = make_events([rows[i] for i in rng.permutation(len(rows))])
        pt = path_table(shuffled, period_end=END)
        assert pt["path"].tolist() == [expected]
        assert pt["conversions"].tolist() == [1]


def test_conversion_first_and_conversions_after_conversions():
    ev = make_events(
        [
            ("u1", "2026-05-01", "booking_completed", None, 10.0),
            ("u1", "2026-05-02", "booking_completed", None, 20.0),
            ("u1", "2026-05-03", "site_visit", "email", None),
            ("u1", "2026-05-04", "booking_completed", None, 30.0),
        ]
    )
    j = build_journeys(ev, period_end=END)
    assert j.journeys["n_touches"].tolist() == [0, 0, 1]
    assert j.journeys["value"].tolist() == [10.0, 20.0, 30.0]
    pt = path_table(j)
    assert dict(zip(pt["path"], pt["conversions"], strict=True)) == {(DIRECT,): 2, ("email",): 1}
    assert j.left_out["direct_conversions"] == 2


def test_lookback_leaves_old_touches_out_and_counts_them():
    ev = make_events(
        [
            ("u1", "2026-04-01", "ad_impression", "social", None),  # 44 days before
            ("u1", "2026-05-10", "site_visit", "email", None),  # 5 days before
            ("u1", "2026-05-15", "booking_completed", None, 99.0),
            ("u2", "2026-03-01", "site_visit", "sms", None),  # only touch far too old
            ("u2", "2026-05-15", "booking_completed", None, 1.0),
        ]
    )
    j = build_journeys(ev, lookback="30D", period_end=END)
    assert j.journeys["n_touches"].tolist() == [1, 0]
    assert j.left_out["outside_lookback"] == 2
    pt = path_table(j)
    assert dict(zip(pt["path"], pt["conversions"], strict=True)) == {("email",): 1, (DIRECT,): 1}
    assert "2 touches older than the lookback" in j.summary()
    # a longer lookback keeps them
    assert path_table(ev, lookback="90D", period_end=END)["path"].tolist() == [
        ("sms",),
        ("social", "email"),
    ]


def test_censoring_at_period_end():
    ev = make_events(
        [
            ("open", "2026-06-20", "site_visit", "email", None),  # 10 days before end
            ("closed", "2026-05-01", "site_visit", "email", None),  # 60 days before end
            ("late", "2026-07-05", "site_visit", "email", None),  # after the end
        ]
    )
    j = build_journeys(ev, lookback="30D", period_end=END)
    assert dict(zip(j.journeys["user_id"], j.journeys["censored"], strict=True)) == {
        "open": True,
        "closed": False,
    }
    assert j.left_out["after_period_end"] == 1
    assert path_table(j)["non_conversions"].tolist() == [1]
    assert path_table(j, include_censored=True)["non_conversions"].tolist() == [2]
    # with a 7-day lookback the 10-day-old journey is closed
    assert not build_journeys(ev, lookback="7D", period_end=END).journeys["censored"].any()


def test_user_with_ten_thousand_events_is_capped_with_a_counter():
    n = 10_000
    times = pd.date_range("2026-05-01", periods=n, freq="1min", tz="UTC")
    ev = pd.DataFrame(
        {
            "user_id": "heavy",
            "timestamp": times,
            "event": "ad_impression",
            "channel": np.where(np.arange(n) % 2 == 0, "display", "social"),
            "value": np.nan,
        }
    )
    conv = pd.DataFrame(
        {
            "user_id": ["heavy"],
            "timestamp": [times[-1] + pd.Timedelta("1min")],
            "event": ["booking_completed"],
            "channel": [None],
            "value": [500.0],
        }
    )
    ev = pd.concat([ev, conv], ignore_index=True)
    j = build_journeys(ev, max_touches=50, period_end=END)
    assert j.journeys["n_touches"].tolist() == [50]
    assert j.journeys["truncated_touches"].tolist() == [n - 50]
    assert j.left_out["truncated_touches"] == n - 50
    assert j.left_out["truncated_journeys"] == 1
    assert j.touches["position"].tolist() == list(range(1, 51))
    # the last 50 touches are kept: the last one is the 10,000th (social)
    assert j.touches["timestamp"].iloc[-1] == times[-1]
    assert j.touches["channel"].iloc[-1] == "social"
    pt = path_table(j, collapse_repeats=False)
    assert len(pt["path"].iloc[0]) == 50
    assert "9,950 touches beyond max_touches" in j.summary()
    full = path_table(ev, period_end=END)
    assert len(full["path"].iloc[0]) == n


def test_empty_period():
    empty = make_events([])
    j = build_journeys(empty, period_end=END)
    assert len(j.journeys) == 0 and len(j.touches) == 0
    pt = path_table(empty, period_end=END)
    assert tuple(pt.columns) == PATH_COLUMNS and len(pt) == 0
    assert "No journeys" in j.summary()


def test_duckdb_relation_and_parquet_sources(log, tmp_path):
    expected = path_table(log, period_end=END)
    con = duckdb.connect()
    rel = con.from_df(log)
    pd.testing.assert_frame_equal(path_table(rel, period_end=END), expected)
    file = tmp_path / "events.parquet"
    log.to_parquet(file)
    pd.testing.assert_frame_equal(path_table(file, period_end=END), expected)
    pd.testing.assert_frame_equal(path_table(str(file), period_end=END), expected)


def test_missing_channel_with_explicit_touch_events_is_named():
    ev = make_events(
        [
            ("u1", "2026-05-01", "service_page_view", None, None),
            ("u1", "2026-05-02", "booking_completed", None, 5.0),
        ]
    )
    j = build_journeys(ev, touch_events=["service_page_view"], period_end=END)
    assert j.touches["channel"].tolist() == ["(none)"]
    assert j.left_out["no_channel_touches"] == 1


def test_errors_say_what_to_do(log):
    with pytest.raises(SchemaError, match="'timestamp'.*did you mean 'time_stamp'"):
        build_journeys(log.rename(columns={"timestamp": "time_stamp"}))
    with pytest.raises(ParameterError, match="lookback == '-3D': not a positive duration"):
        build_journeys(log, lookback="-3D")
    with pytest.raises(
        ParameterError, match="lookback == 'soon': not a duration; write e.g. '30D'"
    ):
        build_journeys(log, lookback="soon")
    with pytest.raises(ParameterError, match="max_touches == 0, must be >= 1"):
        build_journeys(log, max_touches=0)
    with pytest.raises(ParameterError, match="level == 'channels'.*did you mean 'channel'"):
        path_table(log, level="channels")
    with pytest.raises(
        ParameterError, match="unexpected option 'look_back'.*did you mean 'lookback'"
    ):
        path_table(log, look_back="7D")
    with pytest.raises(ParameterError, match="already built"):
        path_table(build_journeys(log), lookback="7D")
    with pytest.raises(ParameterError, match="must be a pandas DataFrame"):
        path_table(42)


def test_sessionize_gap_rule_and_ties():
    ev = make_events(
        [
            ("a", "2026-05-01 10:00", "site_visit", "email", None),
            (
                "a",
                "2026-05-01 10:30",
                "service_page_view",
                None,
                None,
            ),  # exactly 30 min: same session
            ("a", "2026-05-01 11:01", "service_page_view", None, None),  # 31 min: new session
            ("b", "2026-05-01 10:00", "site_visit", "sms", None),
        ]
    )
    shuffled = ev.iloc[[2, 3, 0, 1]]
    out = sessionize(shuffled)
    assert out.index.tolist() == [2, 3, 0, 1]  # input order kept
    assert out["session_id"].tolist() == ["a#2", "b#1", "a#1", "a#1"]
    with pytest.raises(ParameterError, match="already have a 'session_id'"):
        sessionize(out)
    assert sessionize(out, overwrite=True, gap="5min")["session_id"].tolist() == [
        "a#3",
        "b#1",
        "a#1",
        "a#2",
    ]


def test_journeys_result_renders_and_plots(log, tmp_path):
    j = build_journeys(log, period_end=END)
    assert isinstance(j, Journeys)
    html = j._repr_html_()
    assert "Journeys" in html and "4 closed journeys" in html
    ax = j.plot()
    assert ax.get_xlabel().startswith("touches per journey")
    ax.figure.savefig(tmp_path / "journeys.png")


def test_sample_path_table_reconciles(small_sample):
    ev = small_sample.events
    j = build_journeys(ev)
    pt = path_table(j)
    closed = j.journeys[~j.journeys["censored"]]
    assert pt["conversions"].sum() == closed["converted"].sum()
    assert pt["conversions"].sum() == int((ev["event"] == "booking_completed").sum())
    assert pt["value"].sum() == pytest.approx(
        ev.loc[ev["event"] == "booking_completed", "value"].sum()
    )
    assert pt["non_conversions"].sum() == (~closed["converted"]).sum()
    assert pt["path"].map(len).min() >= 1
    assert not pt["path"].duplicated().any()


# ---------------------------------------------------------------------------
# properties over random logs
# ---------------------------------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

random_rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 60),  # day of May-June; few distinct days make ties
        st.sampled_from(
            ["ad_impression", "site_visit", "phone_call", "booking_completed", "service_page_view"]
        ),
        st.sampled_from(["email", "social", "phone", None]),
        st.sampled_from([None, 10.0, 25.0]),
    ),
    max_size=30,
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=random_rows,
    lookback=st.sampled_from(["3D", "30D"]),
    cap=st.sampled_from([None, 2]),
    collapse=st.booleans(),
    level=st.sampled_from(["channel", "event"]),
    seed=st.integers(0, 2**16),
)
def test_path_table_properties(rows, lookback, cap, collapse, level, seed):
    ev = pd.DataFrame(rows, columns=["user_id", "day", "event", "channel", "value"])
    ev["timestamp"] = pd.Timestamp("2026-05-01", tz="UTC") + pd.to_timedelta(ev["day"], unit="D")
    ev = ev.drop(columns="day")
    ev.loc[ev["event"] != "booking_completed", "value"] = np.nan
    ev.loc[ev["event"] == "booking_completed", "channel"] = None
    ev["value"] = ev["value"].astype("float64")
    options = {"lookback": lookback, "max_touches": cap, "period_end": "2026-07-15"}
    pt = path_table(ev, level=level, collapse_repeats=collapse, **options)
    # the same table from built journeys, and from shuffled input
    j = build_journeys(ev, **options)
    pd.testing.assert_frame_equal(pt, path_table(j, level=level, collapse_repeats=collapse))
    shuffled = ev.sample(frac=1, random_state=seed)
    pd.testing.assert_frame_equal(
        pt, path_table(shuffled, level=level, collapse_repeats=collapse, **options)
    )
    # every conversion closes exactly one journey; totals reconcile
    conversions = ev[ev["event"] == "booking_completed"]
    assert pt["conversions"].sum() == len(conversions) == j.journeys["converted"].sum()
    assert pt["value"].sum() == pytest.approx(conversions["value"].fillna(0).sum())
    closed = j.journeys[~j.journeys["censored"]]
    assert pt["non_conversions"].sum() == (~closed["converted"]).sum()
    assert not pt["path"].duplicated().any()
    if cap is not None:
        assert np.max(j.journeys["n_touches"].to_numpy(), initial=0) <= cap
        assert all(len(p) <= cap for p in pt["path"])
    assert j.left_out["truncated_touches"] == j.journeys["truncated_touches"].sum()


def test_duckdb_relation_from_the_loader(log, tmp_path):
    from journeylab.io.loaders import events_relation

    file = tmp_path / "events.parquet"
    log.to_parquet(file)
    pd.testing.assert_frame_equal(
        path_table(events_relation(file), period_end=END), path_table(log, period_end=END)
    )


# --------------------------------------------------------------------------- one month
@pytest.fixture
def months_log() -> pd.DataFrame:
    return make_events(
        [
            # m1: May touch, June conversion -> a June journey (the May touch is in the lookback)
            ("m1", "2026-05-28 09:00:00", "site_visit", "email", None),
            ("m1", "2026-06-02 09:00:00", "booking_completed", None, 100.0),
            # m2: one May touch, nothing after -> a May journey, closed without conversion
            ("m2", "2026-05-10 09:00:00", "site_visit", "social", None),
            # m3: converts mid-June, then a late-June touch still open at the month's end
            ("m3", "2026-06-15 09:00:00", "site_visit", "display", None),
            ("m3", "2026-06-16 09:00:00", "booking_completed", None, 50.0),
            ("m3", "2026-06-28 09:00:00", "site_visit", "sms", None),
            # m4: touch on 06-29, conversion at the first instant of July -> a July journey
            ("m4", "2026-06-29 09:00:00", "site_visit", "email", None),
            ("m4", "2026-07-01 00:00:00", "booking_completed", None, 70.0),
            # m5: a touch in the last second of June
            ("m5", "2026-06-30 23:59:59", "site_visit", "search", None),
        ]
    )


def test_journeys_of_one_month_end_in_it_and_open_ones_are_censored(months_log):
    june = build_journeys(months_log, month="2026-06", lookback="7D")
    jr = june.journeys.set_index("user_id")
    # m1 (converted 06-02), m3 twice, m4 and m5 end in June; m2 ended on 05-10
    assert sorted(jr.index) == ["m1", "m3", "m3", "m4", "m5"]
    assert june.left_out["ended_before_start"] == 1
    assert june.left_out["after_period_end"] == 1  # m4's conversion on 07-01 00:00
    assert jr.loc["m1", "converted"] and jr.loc["m1", "n_touches"] == 1  # the May touch counts
    assert jr.loc["m1", "start"] == pd.Timestamp("2026-05-28 09:00", tz="UTC")
    # still open at the month's end (last touch within the 7-day lookback of 06-30 23:59:59.999999)
    assert jr["censored"].groupby(level=0).any().to_dict() == {
        "m1": False,
        "m3": True,
        "m4": True,
        "m5": True,
    }
    assert not jr.loc["m4", "converted"]
    assert june.settings["start"] == pd.Timestamp("2026-06-01", tz="UTC")
    assert june.settings["period_end"] == pd.Timestamp("2026-06-30 23:59:59.999999", tz="UTC")
    assert set(june.touches["journey_id"]) == set(june.journeys["journey_id"])
    assert june.summary().startswith("Journeys ending in 2026-06 (UTC).")
    assert "1 journeys that ended before the period start" in june.summary()
    # the month is shorthand for start and period_end
    explicit = build_journeys(
        months_log, start="2026-06-01", period_end="2026-06-30 23:59:59.999999", lookback="7D"
    )
    pd.testing.assert_frame_equal(explicit.journeys, june.journeys)
    # July holds m4's conversion with its June touch; May holds m1 (open) and m2 (closed)
    july = build_journeys(months_log, month="2026-07", lookback="7D").journeys
    assert july[["user_id", "converted", "n_touches", "value"]].values.tolist() == [
        ["m4", True, 1, 70.0]
    ]
    may = build_journeys(months_log, month="2026-05", lookback="7D").journeys.set_index("user_id")
    assert may["censored"].to_dict() == {"m1": True, "m2": False}
    # start alone: journeys ending from June on, up to the log's end
    since = build_journeys(months_log, start="2026-06-01", lookback="7D").journeys
    assert since.loc[since["user_id"] == "m4", "converted"].tolist() == [True]


def test_path_table_of_one_month(months_log):
    june = path_table(months_log, month="2026-06", lookback="7D")
    assert june[list(PATH_COLUMNS)].values.tolist() == [
        [("display",), 1, 50.0, 0],
        [("email",), 1, 100.0, 0],
    ]
    assert june.attrs["left_out"]["censored_journeys"] == 3
    assert june.attrs["left_out"]["ended_before_start"] == 1
    assert june.attrs["settings"]["month"] == "2026-06"
    built = build_journeys(months_log, month="2026-06", lookback="7D")
    pd.testing.assert_frame_equal(path_table(built), june)
    every = path_table(months_log, month="2026-06", lookback="7D", include_censored=True)
    assert dict(zip(every["path"], every["non_conversions"], strict=True)) == {
        ("display",): 0,
        ("email",): 1,
        ("search",): 1,
        ("sms",): 1,
    }
    may = path_table(months_log, month="2026-05", lookback="7D")
    assert may[list(PATH_COLUMNS)].values.tolist() == [[("social",), 0, 0.0, 1]]


def test_month_and_start_errors(months_log):
    with pytest.raises(
        ParameterError, match="month == '2026-13': not a calendar month; write 'YYYY-MM'"
    ):
        build_journeys(months_log, month="2026-13")
    with pytest.raises(ParameterError, match="month == 'June': not a calendar month"):
        path_table(months_log, month="June")
    with pytest.raises(ParameterError, match="pass either month or start/period_end"):
        build_journeys(months_log, month="2026-06", period_end="2026-06-30")
    with pytest.raises(
        ParameterError, match="start == 2026-07-01 is after period_end == 2026-06-30"
    ):
        build_journeys(months_log, start="2026-07-01", period_end="2026-06-30")
    with pytest.raises(ParameterError, match="did you mean 'month'"):
        path_table(months_log, mnth="2026-06")


# ---------------------------------------------------------------------------
# Censoring summary: how many journeys were open, left out, and what that leaves
# ---------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 5_000),
    st.integers(0, 5_000),
    st.integers(0, 5_000),
    st.booleans(),
)
def test_censoring_summary_refuses_only_when_leaving_open_journeys_out_starves_the_table(
    conversions, non_conversions, open_journeys, include
):
    from journeylab.journeys.rules import (
        MIN_NON_CONVERSION_SHARE,
        MIN_NON_CONVERSIONS,
        censoring_summary,
    )

    c = censoring_summary(conversions, non_conversions, open_journeys, include_censored=include)
    journeys = conversions + non_conversions
    few = (
        non_conversions < MIN_NON_CONVERSIONS
        or non_conversions < MIN_NON_CONVERSION_SHARE * journeys
    )
    assert c["left_out"] == (0 if include else open_journeys)
    assert c["identifiable"] == (include or open_journeys == 0 or not few)
    assert c["journeys"] == journeys
    if open_journeys and not include:
        assert f"{open_journeys:,} journeys were still open" in c["message"]


def test_censoring_thresholds_by_hand():
    from journeylab.journeys.rules import censoring_summary

    assert censoring_summary(1_000, 30, 500)["identifiable"] is True  # 30 and 2.9 %
    assert censoring_summary(1_000, 29, 500)["identifiable"] is False  # fewer than 30
    assert censoring_summary(9_950, 99, 500)["identifiable"] is False  # 0.99 % of 10,049
    assert censoring_summary(9_900, 100, 500)["identifiable"] is True  # exactly 1 %
    assert censoring_summary(100, 0, 0)["identifiable"] is True  # nothing was censored
    closed = censoring_summary(686, 75, 2_925)
    assert closed["identifiable"] is True
    assert (
        "Open journeys outnumber the closed non-converting ones (2,925 to 75)" in closed["message"]
    )


# -- the DuckDB cursor behind a journey build is always closed -------------------------
@pytest.fixture
def opened_cursors(monkeypatch):
    """Every cursor journeys.build opens, to check that each is closed again."""
    from journeylab.core import sql as engine
    from journeylab.journeys import build

    opened = []
    real_cursor = engine.cursor

    def cursor():
        con = real_cursor()
        opened.append(con)
        return con

    monkeypatch.setattr(build.engine, "cursor", cursor)
    return opened


def _is_closed(con) -> bool:
    import duckdb

    try:
        con.execute("SELECT 1")
    except duckdb.ConnectionException:
        return True
    return False


def test_events_cursor_is_closed_when_opening_fails_and_after_use(log, opened_cursors):
    from journeylab.journeys.build import _Events
    from journeylab.journeys.funnels import funnel

    with pytest.raises(SchemaError, match="'user_id'"):
        _Events(log.drop(columns="user_id"), stage_map=SAMPLE_STAGES)
    with _Events(log, stage_map=SAMPLE_STAGES) as ev:
        assert ev.scalar("SELECT count(*) FROM src") == len(log)
    with pytest.raises(SchemaError, match="grain='session' needs a session_id column"):
        funnel(
            log.drop(columns="session_id", errors="ignore"),
            ["site_visit", "booking_completed"],
            grain="session",
        )
    path_table(log, lookback="7D", stage_map=SAMPLE_STAGES)
    path_table(build_journeys(log, lookback="7D", stage_map=SAMPLE_STAGES))
    assert len(opened_cursors) == 6
    assert all(_is_closed(con) for con in opened_cursors)


# -- the path table from events, read in small batches ----------------------------------
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"level": "event", "collapse_repeats": False},
        {"level": "stage", "max_touches": 2, "include_censored": True},
        {"touch_events": "all", "lookback": "3D", "month": "2026-10"},
    ],
)
def test_path_table_from_events_read_in_batches_of_a_few_rows_equals_that_of_its_journeys(
    options, monkeypatch
):
    from journeylab.datasets.sample import make_sample
    from journeylab.journeys import path_scan

    events = make_sample(seed=3, n_users=300).events
    path_keys = {"level", "collapse_repeats", "include_censored"}
    journey_options = {k: v for k, v in options.items() if k not in path_keys}
    path_options = {k: v for k, v in options.items() if k in path_keys}
    whole = path_table(events, **options)
    monkeypatch.setattr(path_scan, "BATCH_ROWS", 7)  # users straddle batches all the time
    monkeypatch.setattr(path_scan._PathSums, "FOLD", 5)  # journeys folded in many times
    batched = path_table(events, **options)
    pd.testing.assert_frame_equal(batched, whole, check_exact=True)
    assert batched.attrs == whole.attrs
    built = path_table(
        build_journeys(events, **journey_options), stage_map=SAMPLE_STAGES, **path_options
    )
    pd.testing.assert_frame_equal(batched, built, check_exact=False, rtol=1e-12)
    assert batched.attrs["left_out"] == built.attrs["left_out"]


@pytest.mark.parametrize("options", [{"touch_events": "all"}, {"level": "event"}])
def test_path_table_is_the_same_whatever_width_the_sort_keys_take(options, monkeypatch):
    from journeylab.datasets.sample import make_sample
    from journeylab.journeys import path_scan

    events = make_sample(seed=4, n_users=300).events
    assert events["channel"].isna().any()  # touches without a channel sort after the others
    narrow = path_table(events, stage_map=SAMPLE_STAGES, **options)
    # a vocabulary too long for the first key type takes the next
    monkeypatch.setattr(path_scan, "KEY_TYPES", (("TINYINT", 2), ("INTEGER", 2**31 - 1)))
    wide = path_table(events, stage_map=SAMPLE_STAGES, **options)
    pd.testing.assert_frame_equal(wide, narrow, check_exact=True)
    assert wide.attrs == narrow.attrs
    if options.get("touch_events") == "all":
        assert any("(none)" in p for p in wide["path"])


# -- a large log sorted in ranges of user ids --------------------------------------------
@pytest.mark.parametrize("source", ["frame", "parquet"])
def test_path_table_sorted_in_ranges_of_users_equals_one_sort(source, tmp_path, monkeypatch):
    from journeylab.datasets.sample import make_sample
    from journeylab.journeys import path_scan

    events = make_sample(seed=5, n_users=400).events
    # user ids that sort apart from their order of appearance, and one empty id
    events["user_id"] = events["user_id"].map(lambda u: f"{hash(u) % 97:02d}-{u}")
    events.loc[events["user_id"].str.startswith("13-"), "user_id"] = ""
    data = events
    if source == "parquet":
        data = tmp_path / "events.parquet"
        events.to_parquet(data)
    whole = path_table(data, month="2026-10", touch_events="all")
    ranges = {}
    real = path_scan._user_ranges

    def spy(ev):
        ranges["got"] = real(ev)
        return ranges["got"]

    monkeypatch.setattr(path_scan, "_user_ranges", spy)
    monkeypatch.setattr(path_scan, "SPLIT_ROWS", 100)
    monkeypatch.setattr(path_scan, "RANGE_ROWS", len(events) // 5)
    monkeypatch.setattr(path_scan, "BATCH_ROWS", 11)
    split = path_table(data, month="2026-10", touch_events="all")
    assert len(ranges["got"]) >= 4
    pd.testing.assert_frame_equal(split, whole, check_exact=True)
    assert split.attrs == whole.attrs


def test_parquet_statistics_count_missing_ids_and_the_last_time_without_reading_rows(log, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from journeylab.journeys.source import _Events

    log = log.copy()
    log.loc[log.index[:3], "user_id"] = None
    file = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pandas(log, preserve_index=False), file, row_group_size=7)
    bare = tmp_path / "no_statistics.parquet"
    pq.write_table(pa.Table.from_pandas(log, preserve_index=False), bare, write_statistics=False)
    last = log["timestamp"].max()
    with _Events(file, stage_map=SAMPLE_STAGES) as ev:
        assert ev.parquet_statistics() == {
            "user_id": (3, None),
            "timestamp": (0, last.value // 1000),
        }
        assert ev.incomplete_rows() == 3
        assert ev.last_timestamp() == last
    with _Events(bare, stage_map=SAMPLE_STAGES) as ev:
        assert ev.parquet_statistics() is None
        assert ev.incomplete_rows() == 3
        assert ev.last_timestamp() == last
    both = log.copy()
    both.loc[both.index[2:5], "timestamp"] = pd.NaT  # row 2 lacks both: counted once
    both.to_parquet(file)
    with _Events(file, stage_map=SAMPLE_STAGES) as ev:
        assert ev.parquet_statistics()["timestamp"][0] == 3
        assert ev.incomplete_rows() == 5
        assert ev.last_timestamp() == both["timestamp"].max()
    pd.testing.assert_frame_equal(
        path_table(file, period_end=END), path_table(both, period_end=END)
    )


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(st.text(max_size=3), min_size=1, max_size=6, unique=True),
    data=st.data(),
)
def test_path_table_rows_sort_as_tuples_of_names_however_many_cells(names, data):
    from journeylab.journeys import path_scan

    n_codes = len(names)
    paths = data.draw(
        st.lists(
            st.lists(st.integers(0, n_codes - 1), max_size=5).map(tuple),
            min_size=1,
            max_size=25,
            unique=True,
        )
    )
    has_direct = DIRECT in names
    if has_direct:  # an element named like the direct path stands for it
        paths = [p for p in paths if p != ()] or [(names.index(DIRECT),)]
    sums = path_scan._PathSums(None)
    sums.ids = {np.array(p, dtype=np.uint16).tobytes(): i for i, p in enumerate(paths)}
    size = len(paths)
    sums.conversions = np.array(
        data.draw(st.lists(st.integers(0, 2), min_size=size, max_size=size))
    )
    sums.non_conversions = np.array(
        data.draw(st.lists(st.integers(0, 2), min_size=size, max_size=size))
    )
    sums.value = np.arange(size, dtype=float)
    as_names = [tuple(names[c] for c in p) if p else (DIRECT,) for p in paths]
    expected = sorted(
        range(size),
        key=lambda i: (-sums.conversions[i], -sums.non_conversions[i], as_names[i]),
    )
    cells = path_scan._SORT_CELLS
    try:
        for path_scan._SORT_CELLS in (cells, 0):  # a matrix of name ranks; tuples of names
            table = path_scan._table(sums, names, np.uint16)
            assert table["path"].tolist() == [as_names[i] for i in expected]
            assert table["value"].tolist() == [float(i) for i in expected]
    finally:
        path_scan._SORT_CELLS = cells


def test_parquet_statistics_are_not_used_where_they_would_read_differently_from_the_rows(
    tmp_path,
):
    """Files whose times are not microsecond UTC instants, infinite times, other name cases."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from journeylab.core.stages import StageMap
    from journeylab.journeys.source import _Events

    sm = StageMap.from_dict(
        {
            "stages": [
                {"name": "consideration", "events": ["visit"]},
                {"name": "purchase", "events": ["purchase"]},
            ]
        }
    )
    first = pd.DataFrame(
        {
            "user_id": ["a"],
            "timestamp": pd.to_datetime(["2026-05-01 10:00"], utc=True).astype(
                "datetime64[us, UTC]"
            ),
            "event": ["visit"],
            "channel": ["email"],
            "value": [1.5],
        }
    )
    first.to_parquet(tmp_path / "first.parquet")
    later = pd.DataFrame(
        {
            "user_id": ["b", "b"],
            "timestamp": pd.to_datetime(
                ["2026-05-02 10:00:00", "2026-05-02 11:00:00.000000750"], utc=True, format="ISO8601"
            ).astype("datetime64[ns, UTC]"),
            "event": ["visit", "purchase"],
            "channel": ["social", None],
            "value": [None, 90.0],
        }
    )
    text = later.assign(timestamp=["2026-05-02T10:00:00+00:00", "2026-05-02T16:00:00-05:00"])
    upper = later.assign(timestamp=later["timestamp"].astype("datetime64[us, UTC]")).rename(
        columns={"user_id": "USER_ID", "timestamp": "TIMESTAMP"}
    )
    upper.loc[0, "USER_ID"] = None
    cases = {
        "ns": (later, pd.Timestamp("2026-05-02 11:00:00.000001", tz="UTC")),  # rounded to us
        "text": (text, pd.Timestamp("2026-05-02 21:00", tz="UTC")),  # the latest instant
        "case": (upper, pd.Timestamp("2026-05-02 11:00", tz="UTC")),
    }
    for name, (frame, last) in cases.items():
        pq.write_table(
            pa.Table.from_pandas(frame, preserve_index=False), tmp_path / f"{name}.parquet"
        )
        files = [str(tmp_path / "first.parquet"), str(tmp_path / f"{name}.parquet")]
        with _Events(files, stage_map=sm) as ev:
            assert ev.parquet_statistics() is None, name
            assert ev.last_timestamp() == last, name
            assert ev.incomplete_rows() == (1 if name == "case" else 0), name
        table = path_table(files, conversion="purchase", stage_map=sm, lookback="7D")
        assert table["conversions"].tolist() == [1], name
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    infinite = tmp_path / "infinite.parquet"
    con.execute(
        f"""COPY (SELECT * FROM (VALUES
              ('a', TIMESTAMPTZ '2026-05-01 10:00', 'visit', 'email', NULL::DOUBLE),
              ('a', 'infinity'::TIMESTAMPTZ, 'visit', 'email', NULL))
            t(user_id, "timestamp", event, channel, value)) TO '{infinite}' (FORMAT parquet)"""
    )
    with _Events(infinite, stage_map=sm) as ev:
        assert ev.parquet_statistics() == {"user_id": (0, None), "timestamp": (0, None)}
        assert ev.incomplete_rows() == 0
        assert ev.last_timestamp() is None
    table = path_table(infinite, conversion="purchase", stage_map=sm, lookback="7D")
    assert table["non_conversions"].tolist() == [1]
