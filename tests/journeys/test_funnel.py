"""Funnels: exact counts on a hand-made log, Wilson intervals, and reconciliation properties."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylab.core.errors import NotComputableError, ParameterError, SchemaError, UnknownNameError
from journeylab.core.project import Project
from journeylab.core.stages import StageMap
from journeylab.io.loaders import sort_events
from journeylab.journeys.funnels import NO_FURTHER_EVENT, FunnelResult, funnel, where_instead

REFERENCE = json.loads(
    (Path(__file__).parents[1] / "results" / "funnel_reference.json").read_text()
)
STEPS = ["site_visit", "booking_started", "booking_completed"]


def make_log(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "timestamp", "event", "device"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


@pytest.fixture
def log() -> pd.DataFrame:
    return make_log(
        [
            ("u1", "2026-05-01 10:00", "site_visit", "mobile"),
            ("u1", "2026-05-01 10:10", "booking_started", "mobile"),
            ("u1", "2026-05-01 10:20", "booking_completed", "mobile"),
            ("u2", "2026-05-01 10:00", "site_visit", "mobile"),
            ("u2", "2026-05-03 12:00", "booking_started", "mobile"),
            ("u2", "2026-05-20 10:00", "booking_completed", "mobile"),  # outside the 7-day window
            ("u3", "2026-05-01 09:00", "booking_started", "desktop"),  # before the visit
            ("u3", "2026-05-01 10:00", "site_visit", "desktop"),
            ("u3", "2026-05-01 11:00", "booking_completed", "desktop"),
            ("u4", "2026-05-02 08:00", "site_visit", "desktop"),
            ("u4", "2026-05-02 08:30", "booking_completed", "desktop"),  # out of order
            ("u4", "2026-05-02 09:00", "booking_started", "desktop"),
            ("u5", "2026-05-01 08:00", "site_visit", "desktop"),  # first attempt: nothing
            ("u5", "2026-05-10 09:00", "site_visit", "desktop"),  # second attempt converts
            ("u5", "2026-05-11 09:00", "booking_started", "desktop"),
            ("u5", "2026-05-11 09:30", "booking_completed", "desktop"),
            ("u6", "2026-05-01 10:00", "booking_started", "desktop"),  # never enters
        ]
    )


def test_exact_counts_strict(log):
    ref = REFERENCE["hand_made_log"]
    f = funnel(log, STEPS, window="7D")
    t = f.to_frame()
    assert t["entrants"].tolist() == ref["strict_entrants"] == [5, 4, 2]
    assert t["drop_off"].tolist() == [0, 1, 2]
    assert t["conversion_from_previous"].tolist() == pytest.approx([1.0, 0.8, 0.5])
    assert t["conversion_from_first"].tolist() == pytest.approx([1.0, 0.8, 0.4])
    for step, seconds in ((2, ref["strict_step2_seconds"]), (3, ref["strict_step3_seconds"])):
        row = t[t["step"] == step].iloc[0]
        q25, q50, q75 = np.percentile(seconds, [25, 50, 75])
        assert row["time_q25"].total_seconds() == pytest.approx(q25)
        assert row["time_median"].total_seconds() == pytest.approx(q50)
        assert row["time_q75"].total_seconds() == pytest.approx(q75)
    assert t.loc[0, "time_median"] is pd.NaT or pd.isna(t.loc[0, "time_median"])


def test_wilson_intervals_match_reference(log):
    t = funnel(log, STEPS).to_frame()
    cases = {
        (c["count"], c["nobs"]): (c["low"], c["high"])
        for c in REFERENCE["wilson_intervals"]["cases"]
    }
    assert (t.loc[1, "from_previous_ci_low"], t.loc[1, "from_previous_ci_high"]) == pytest.approx(
        cases[(4, 5)], rel=1e-9
    )
    assert (t.loc[2, "from_previous_ci_low"], t.loc[2, "from_previous_ci_high"]) == pytest.approx(
        cases[(2, 4)], rel=1e-9
    )
    assert (t.loc[2, "from_first_ci_low"], t.loc[2, "from_first_ci_high"]) == pytest.approx(
        cases[(2, 5)], rel=1e-9
    )
    # the closed-form Wilson score interval, computed independently
    z = 1.959963984540054
    for (count, n), (low, high) in cases.items():
        p = count / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        assert (centre - half, centre + half) == pytest.approx((low, high), rel=1e-9)


def test_any_order_counts(log):
    t = funnel(log, STEPS, order="any").to_frame()
    assert t["entrants"].tolist() == REFERENCE["hand_made_log"]["any_entrants"] == [5, 4, 3]


def test_segments_partition_the_units(log):
    t = funnel(log, STEPS, segment="device").to_frame()
    got = {seg: g["entrants"].tolist() for seg, g in t.groupby("segment")}
    assert got == {"desktop": [3, 2, 1], "mobile": [2, 2, 1]}


def test_window_and_period(log):
    # a 1-hour window keeps u1 (10 min steps) and u5 loses step 2 (1 day)
    assert funnel(log, STEPS, window="1h").to_frame()["entrants"].tolist() == [5, 2, 1]
    # entries from May 5 on: only u5's second visit
    t = funnel(log, STEPS, start="2026-05-05").to_frame()
    assert t["entrants"].tolist() == [1, 1, 1]
    # entries before May 2: u1, u2, u3, u5 (first attempt only, which fails)
    assert funnel(log, STEPS, end="2026-05-02").to_frame()["entrants"].tolist() == [4, 2, 1]


def test_identical_timestamps_count_in_stage_map_order():
    rows = [
        ("u1", "2026-05-01 10:00", "booking_completed", "mobile"),
        ("u1", "2026-05-01 10:00", "booking_started", "mobile"),
        ("u1", "2026-05-01 10:00", "site_visit", "mobile"),
    ]
    for perm in ([0, 1, 2], [2, 1, 0], [1, 0, 2]):
        log = make_log([rows[i] for i in perm])
        assert funnel(log, STEPS).to_frame()["entrants"].tolist() == [1, 1, 1]


def test_session_grain_and_missing_sessions(log):
    with pytest.raises(SchemaError, match="(?s)session_id.*sessionize"):
        funnel(log, STEPS, grain="session")
    ev = log.assign(session_id=log["user_id"] + "#" + log["timestamp"].dt.day.astype(str))
    ev.loc[ev["user_id"] == "u2", "session_id"] = None
    f = funnel(ev, STEPS, grain="session")
    # sessions with a visit: u1#1 (all three steps), u3#1 (visit, completed), u4#2 (visit,
    # completed, started), u5#1 and u5#10 (visit only; u5 started on the 11th, another session)
    assert f.to_frame()["entrants"].tolist() == [5, 2, 1]
    assert f.left_out["events_without_session"] == 3
    assert "3 step events without a session id" in f.summary()


def test_steps_with_alternatives_and_labels(log):
    f = funnel(log, {"visit": "site_visit", "booking": ["booking_started", "booking_completed"]})
    t = f.to_frame()
    assert t["label"].tolist() == ["visit", "booking"]
    # any booking event after the visit: u1, u2, u3 (completed after visit), u4, u5
    assert t["entrants"].tolist() == [5, 5]


def test_steps_are_shown_by_the_project_labels(log):
    f = funnel(log, STEPS, segment="device")
    labels = {"site_visit": "Visited the site", "booking_completed": "Booked"}
    shown = f.with_labels(labels)
    assert shown.to_frame() is f.to_frame()  # the numbers are the same table
    # a step without a label reads as its name with spaces, capitalised
    expected = ["Visited the site", "Booking started", "Booked"]
    assert shown.display_frame()["step"].drop_duplicates().tolist() == expected
    assert f.display_frame()["step"].drop_duplicates().tolist() == STEPS  # no labels: as given
    assert "did 'Visited the site'" in shown.summary() and "site_visit" not in shown.summary()
    assert [t.get_text() for t in shown.plot().get_yticklabels()] == expected
    ticks = [t.get_text() for t in shown.plot_time_to_convert().get_yticklabels()]
    assert ticks == ["Visited the site → Booking started", "Booking started → Booked"]
    project = Project.from_dict(
        {
            "data": {"events": {"path": "events.csv"}},
            "journey": {"conversion": "booking_completed"},
            "stages": {"all": {"events": ["*"]}},
            "labels": labels,
        }
    )
    assert f.with_labels(project).labels == labels
    plt.close("all")


def test_where_instead_lists_next_events(log):
    w = where_instead(log, STEPS, after_step=2)
    t = w.to_frame()
    assert t["next"].tolist() == [(NO_FURTHER_EVENT,), ("booking_completed",)]
    assert t["units"].tolist() == [1, 1]
    assert t["share"].sum() == pytest.approx(1.0)
    assert w.n_units == 2
    w1 = where_instead(log, STEPS, after_step=1, n_next=2)
    # u3 (visit, then completed) and u5 (first visit failed; best attempt is... level 3) -> only u3
    assert w1.to_frame()["next"].tolist() == [("booking_completed",)]
    assert "reached 'site_visit' but not 'booking_started'" in w1.summary()


def test_errors(log):
    with pytest.raises(ParameterError, match="order == 'strictly'.*did you mean 'strict'"):
        funnel(log, STEPS, order="strictly")
    with pytest.raises(ParameterError, match="at least two steps"):
        funnel(log, ["site_visit"])
    with pytest.raises(ParameterError, match="window == '0D': not a positive duration"):
        funnel(log, STEPS, window="0D")
    with pytest.raises(
        ParameterError,
        match=r"end == 2026-05-01 is not after start == 2026-06-01; units enter in \[start, end\)",
    ):
        funnel(log, STEPS, start="2026-06-01", end="2026-05-01")
    with pytest.raises(ParameterError, match="start == 'soon': not a date or time"):
        funnel(log, STEPS, start="soon")
    with pytest.raises(
        SchemaError, match="'devise' is not a column of the events.*did you mean 'device'"
    ):
        funnel(log, STEPS, segment="devise")
    with pytest.raises(ParameterError, match="after_step == 3, must be a step number from 1 to 2"):
        where_instead(log, STEPS, after_step=3)


def test_result_renders_and_plots(log, tmp_path):
    f = funnel(log, STEPS, segment="device")
    assert isinstance(f, FunnelResult)
    html = f._repr_html_()
    assert "Funnel" in html and "Wilson" in html
    ax = f.plot()
    assert [t.get_text() for t in ax.get_yticklabels()] == STEPS
    ax.figure.savefig(tmp_path / "funnel.png")
    ax = f.plot_time_to_convert()
    assert ax.get_xscale() == "log"
    ax.figure.savefig(tmp_path / "ttc.png")
    ax = where_instead(log, STEPS, after_step=2).plot()
    ax.figure.savefig(tmp_path / "where.png")


def test_empty_log_names_the_steps_it_lacks():
    with pytest.raises(
        UnknownNameError, match="3 funnel steps occur in no row.*the data are empty"
    ) as info:
        funnel(make_log([]), STEPS)
    assert info.value.names == tuple(STEPS)


def test_misspelt_step_fails_with_the_name_and_the_closest_events(log):
    with pytest.raises(UnknownNameError) as info:
        funnel(log, ["site_visit", "booking_complete"])
    error = info.value
    assert error.names == ("booking_complete",)
    assert error.suggestions == {"booking_complete": "booking_completed"}
    assert (
        "funnel step 'booking_complete' occurs in no row (did you mean 'booking_completed'?)"
        in str(error)
    )
    assert "names present: 'booking_completed', 'booking_started', 'site_visit'" in str(error)
    assert isinstance(error, ParameterError) and isinstance(error, SchemaError)
    # the same check in where_instead, and for the alternatives of a step
    with pytest.raises(UnknownNameError, match="'site_vist'.*did you mean 'site_visit'"):
        where_instead(log, ["site_vist", "booking_started"], after_step=1)
    with pytest.raises(UnknownNameError, match="'booking_stared'"):
        funnel(log, {"visit": "site_visit", "booking": ["booking_stared", "booking_completed"]})


def test_first_step_without_entrants_in_the_period_says_when_it_occurs(log):
    with pytest.raises(
        NotComputableError,
        match=r"No user entered the funnel at its first step 'site_visit' from 2026-06-01 on: "
        r"its 6 events occur from 2026-05-01 08:00 to 2026-05-10 09:00",
    ):
        funnel(log, STEPS, start="2026-06-01")
    with pytest.raises(NotComputableError, match="none of its 6 events has a session id"):
        funnel(log.assign(session_id=None), STEPS, grain="session")


def test_a_segment_with_one_value_is_counted_and_said(log):
    f = funnel(log.assign(device="mobile"), STEPS, segment="device")
    assert f.to_frame()["entrants"].tolist() == [5, 4, 2]
    assert f.notes == ["Only one value of device (mobile): no comparison."]
    assert "Only one value of device (mobile): no comparison." in f.summary()
    assert funnel(log, STEPS, segment="device").notes == []


def test_steps_and_stage_map_from_the_project_file(log):
    project = Project.from_dict({
        "data": {"events": {"path": "events.csv"}},
        "journey": {"conversion": "booking_completed"},
        "stages": {"consideration": {"events": ["site_visit"]},
                   "purchase": {"events": ["booking_started", "booking_completed"]}},
        "funnel": STEPS,
    })  # fmt: skip
    pd.testing.assert_frame_equal(
        funnel(log, project=project).to_frame(), funnel(log, STEPS).to_frame()
    )
    assert where_instead(log, None, 2, project=project).n_units == 2
    with pytest.raises(ParameterError, match="Name the funnel steps"):
        funnel(log)


# ---------------------------------------------------------------------------
# reconciliation properties on random logs, against a plain-Python oracle
# ---------------------------------------------------------------------------
EVENTS = ["site_visit", "booking_started", "booking_completed", "phone_call"]


def oracle_levels(
    log: pd.DataFrame, steps: list[str], window: pd.Timedelta, order: str
) -> dict[str, int]:
    """Furthest step per user by the documented rules, by brute force.

    Without a stage map, identical timestamps count in step order; other events after.
    """
    levels = {}
    ordered = sort_events(log, StageMap.from_dict({"stages": [{"name": "steps", "events": steps}]}))
    for user, g in ordered.groupby("user_id", sort=False):
        ev, ts = g["event"].tolist(), g["timestamp"].tolist()
        best = 0
        for i, name in enumerate(ev):
            if name != steps[0]:
                continue
            deadline = ts[i] + window
            level, cur = 1, i
            for step in steps[1:]:
                if order == "strict":
                    nxt = next(
                        (j for j in range(cur + 1, len(ev)) if ev[j] == step and ts[j] <= deadline),
                        None,
                    )
                    if nxt is None:
                        break
                    cur = nxt
                else:
                    if not any(ev[j] == step and ts[j] <= deadline for j in range(i + 1, len(ev))):
                        break
                level += 1
            best = max(best, level)
        if best:
            levels[user] = best
    return levels


random_logs = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.integers(0, 30),
        st.sampled_from(EVENTS),
        st.sampled_from(["x", "y"]),
    ),
    min_size=0,
    max_size=40,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=random_logs, order=st.sampled_from(["strict", "any"]))
def test_funnel_reconciles_and_matches_oracle(rows, order):
    log = pd.DataFrame(rows, columns=["user_id", "hour", "event", "device"])
    log["timestamp"] = pd.Timestamp("2026-05-01", tz="UTC") + pd.to_timedelta(log["hour"], unit="h")
    log = log.drop(columns="hour")
    steps = ["site_visit", "booking_started", "booking_completed"]
    # every step occurs in the log (by a user before the period), so the names are known
    before = make_log([("z", "2026-04-01", e, "x") for e in steps])
    log = pd.concat([log, before], ignore_index=True)
    window = pd.Timedelta("6h")
    levels = oracle_levels(log[log["user_id"] != "z"], steps, window, order)
    if not levels:
        with pytest.raises(NotComputableError, match="No user entered the funnel"):
            funnel(log, steps, window=window, order=order, segment="device", start="2026-05-01")
        return
    t = funnel(
        log, steps, window=window, order=order, segment="device", start="2026-05-01"
    ).to_frame()
    for _, s in t.groupby("segment"):
        n = s["entrants"].to_numpy()
        assert (np.diff(n) <= 0).all()  # never more at a step than at the one before
        assert (s["drop_off"] >= 0).all()
        rates = s[["conversion_from_previous", "conversion_from_first"]].to_numpy()
        assert np.nanmax(rates, initial=0) <= 1.0 and np.nanmin(rates, initial=0) >= 0.0
        ok = s["entrants"] > 0
        assert (s.loc[ok, "from_first_ci_low"] <= s.loc[ok, "conversion_from_first"] + 1e-12).all()
        assert (s.loc[ok, "from_first_ci_high"] >= s.loc[ok, "conversion_from_first"] - 1e-12).all()
    expected = [sum(level >= k for level in levels.values()) for k in (1, 2, 3)]
    # segments partition the users; their sums equal the brute-force counts
    assert t.groupby("step")["entrants"].sum().reindex([1, 2, 3], fill_value=0).tolist() == expected


def test_sample_mobile_completes_bookings_less_than_desktop(small_sample):
    f = funnel(
        small_sample.events, ["booking_started", "booking_completed"], segment="device",
        stage_map=small_sample.stage_map,
    )  # fmt: skip
    t = f.to_frame().set_index(["segment", "step"])
    mobile, desktop = t.loc[("mobile", 2)], t.loc[("desktop", 2)]
    assert mobile["conversion_from_previous"] < desktop["conversion_from_previous"]
    # the intervals do not overlap: the planted mobile form problem is clear
    assert mobile["from_previous_ci_high"] < desktop["from_previous_ci_low"]
    truth = small_sample.truth["mobile_form"]["completion_rate"]
    assert truth["mobile"] < truth["desktop"]


def test_where_instead_by_channel_and_from_a_relation(log):
    import duckdb

    ev = pd.concat(
        [
            log.assign(channel=None),
            make_log([("u4", "2026-05-02 10:00", "phone_call", "desktop")]).assign(channel="phone"),
            make_log([("u4", "2026-05-02 11:00", "service_page_view", "desktop")]).assign(
                channel=None
            ),
        ],
        ignore_index=True,
    )
    w = where_instead(ev, STEPS, after_step=2, level="channel")
    # u4's next event with a channel is the phone call (the page view has none); u2 has none
    assert dict(zip(w.to_frame()["next"], w.to_frame()["units"], strict=True)) == {
        (NO_FURTHER_EVENT,): 1,
        ("phone",): 1,
    }
    rel = duckdb.connect().from_df(log)
    pd.testing.assert_frame_equal(funnel(rel, STEPS).to_frame(), funnel(log, STEPS).to_frame())


def test_small_segments_are_suppressed_and_counted(log):
    # entrants of 'site_visit': mobile u1, u2 (2 users); desktop u3, u4, u5 (3 users)
    full = funnel(log, STEPS, segment="device")
    assert full.segments == ["desktop", "mobile"] and full.suppressed_segments == 0
    shown = funnel(log, STEPS, segment="device", min_users=3)
    assert shown.segments == ["desktop"] and shown.suppressed_segments == 1
    pd.testing.assert_frame_equal(
        shown.to_frame(), full.to_frame()[full.to_frame()["segment"] == "desktop"]
    )
    assert "1 segment with fewer than 3 users is not shown" in shown.summary()
    assert "mobile" not in shown.summary() and "mobile" not in shown._repr_html_()
    assert shown.display_frame()["segment"].unique().tolist() == [
        "desktop"
    ]  # still says whose funnel
    ax = shown.plot()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["desktop"]
    ax.figure.savefig("/tmp/funnel_min_users.png", bbox_inches="tight")
    none = funnel(log, STEPS, segment="device", min_users=4)
    assert none.to_frame().empty and none.suppressed_segments == 2
    assert "2 segments with fewer than 4 users are not shown" in none.summary()
    assert none.plot().get_title().startswith("No segment has 4 users or more")
    assert none.plot_time_to_convert().get_title().startswith("No segment has 4 users or more")
    assert "jl-table" in none._repr_html_()
    # the default shows everything; without segments nothing is suppressed
    assert (
        funnel(log, STEPS, min_users=100).to_frame()["entrants"].tolist()
        == full.to_frame().groupby("step")["entrants"].sum().tolist()
    )
    with pytest.raises(ParameterError, match="min_users == -1"):
        funnel(log, STEPS, segment="device", min_users=-1)
    import matplotlib.pyplot as plt

    plt.close("all")
