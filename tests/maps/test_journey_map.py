"""Journey map: exact counts on a hand-made log, Wilson bounds, comparisons and invariants."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from journeylab.core.errors import NotComputableError, ParameterError, SchemaError, UnknownNameError
from journeylab.core.project import Project
from journeylab.core.stages import StageMap
from journeylab.datasets import sample_stage_map
from journeylab.maps.journey_map_result import JourneyMapResult
from journeylab.maps.journey_maps import journey_map
from journeylab.maps.periods import resolve_period

STAGES = sample_stage_map()
REFERENCE = json.loads(
    (Path(__file__).parents[1] / "results" / "journey_map_reference.json").read_text(
        encoding="utf-8"
    )
)


def _log(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "timestamp", "event", "value", "device"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame


@pytest.fixture
def hand_log():
    """Five users in October 2026, one in September."""
    nan = float("nan")
    return _log(
        [
            ("u1", "2026-10-01 09:00", "ad_impression", nan, "mobile"),
            ("u1", "2026-10-01 10:00", "site_visit", nan, "mobile"),
            ("u1", "2026-10-02 10:00", "booking_started", nan, "mobile"),
            ("u1", "2026-10-02 10:30", "booking_completed", 200.0, "mobile"),
            ("u2", "2026-10-03 08:00", "ad_impression", nan, "mobile"),
            ("u2", "2026-10-03 10:00", "site_visit", nan, "mobile"),
            ("u3", "2026-10-05 12:00", "ad_impression", nan, "desktop"),
            ("u4", "2026-10-06 09:00", "site_visit", nan, "desktop"),
            ("u4", "2026-10-06 09:05", "phone_call", nan, "desktop"),
            ("u4", "2026-10-07 09:00", "booking_completed", 300.0, "desktop"),
            ("u4", "2026-10-10 09:00", "review_posted", nan, "desktop"),
            ("u5", "2026-10-08 09:00", "booking_completed", 100.0, "desktop"),
            ("u5", "2026-10-09 09:00", "site_visit", nan, "desktop"),
            ("u6", "2026-09-15 09:00", "ad_impression", nan, "tablet"),
            ("u6", "2026-09-16 09:00", "site_visit", nan, "tablet"),
        ]
    )


def _row(result: JourneyMapResult, stage: str, segment: str = "all users") -> pd.Series:
    table = result.to_frame()
    return table.loc[(table["stage"] == stage) & (table["segment"] == segment)].iloc[0]


def test_stage_users_and_conversion_exact(hand_log):
    jm = journey_map(hand_log, STAGES, month="2026-10")
    table = jm.to_frame()
    assert table["users"].tolist() == [3, 4, 3, 0, 1]
    assert table["users_in_period"].unique().tolist() == [5]
    assert table["reached_next"].tolist() == [2, 2, 0, 0, 0]
    # u5 booked before visiting: a purchase before consideration is not a step forward.
    assert _row(jm, "consideration")["conversion"] == pytest.approx(0.5)
    assert _row(jm, "awareness")["conversion"] == pytest.approx(2 / 3)
    assert math.isnan(_row(jm, "advocacy")["conversion"])
    # first ad 09:00 → visit 10:00 (1 h), 08:00 → 10:00 (2 h); visit → booking 24 h for u1 and u4.
    assert _row(jm, "awareness")["median_hours_in_stage"] == pytest.approx(1.5)
    assert _row(jm, "consideration")["median_hours_in_stage"] == pytest.approx(24.0)


def test_wilson_bounds_match_statsmodels_and_closed_form(hand_log):
    row = _row(journey_map(hand_log, STAGES, month="2026-10"), "awareness")
    lo, hi = proportion_confint(2, 3, alpha=0.05, method="wilson")
    assert (row["conversion_ci_low"], row["conversion_ci_high"]) == pytest.approx(
        (lo, hi), rel=1e-12
    )
    # Wilson (1927) closed form, = R prop.test(2, 3, correct=FALSE)$conf.int (tests/results).
    z, n, p = norm.ppf(0.975), 3, 2 / 3
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    assert row["conversion_ci_low"] == pytest.approx(centre - half, rel=1e-9)
    assert row["conversion_ci_high"] == pytest.approx(centre + half, rel=1e-9)
    assert [row["conversion_ci_low"], row["conversion_ci_high"]] == pytest.approx(
        REFERENCE["wilson_2_of_3"]["value"], rel=1e-9
    )


def test_kpis_exact(hand_log):
    kpis = journey_map(hand_log, STAGES, month="2026-10").kpis.set_index("kpi")["value"]
    expected = {
        "impressions": 3, "reach": 3, "sessions": 4, "visitors": 4, "phone_calls": 1, "quote_requests": 0,
        "booking_entries": 1, "booking_completions": 3, "revenue": 600.0, "reviews": 1, "referrals": 0,
    }  # fmt: skip
    for name, value in expected.items():
        assert kpis[name] == value, name


def test_previous_period_comparison_matches_proportions_ztest(hand_log):
    jm = journey_map(hand_log, STAGES, month="2026-10")
    assert jm.previous.label == "2026-09"
    row = _row(jm, "awareness")
    assert row["users_previous"] == 1 and row["conversion_previous"] == 1.0
    assert row["conversion_change"] == pytest.approx(2 / 3 - 1)
    _, p = proportions_ztest([2, 1], [3, 1])
    assert row["p_value"] == pytest.approx(p, rel=1e-9)
    assert row["p_value"] == pytest.approx(
        REFERENCE["pooled_z_2_of_3_vs_1_of_1"]["value"]["p_value"], rel=1e-9
    )
    kpis = jm.kpis.set_index("kpi")
    assert kpis.loc["impressions", "previous"] == 1
    assert kpis.loc["impressions", "change"] == pytest.approx(2.0)
    assert "2026-09" in jm.summary()


def test_empty_previous_period_is_said(hand_log):
    jm = journey_map(hand_log, STAGES, month="2026-09")
    assert "No events in the previous period (2026-08): no comparison." in jm.summary()
    assert jm.to_frame()["users_previous"].sum() == 0


def test_numeric_user_ids_match_a_users_table(hand_log):
    events = hand_log.assign(user_id=hand_log["user_id"].str[1:].astype(int))
    users = pd.DataFrame({"user_id": [1, 2, 3, 4, 5], "persona": ["a", "b", "a", "b", "b"]})
    jm = journey_map(events, STAGES, month="2026-10", segment="persona", users=users, compare=None)
    assert _row(jm, "consideration", "b")[["users", "reached_next"]].tolist() == [3, 1]


def test_no_comparison_when_asked(hand_log):
    jm = journey_map(hand_log, STAGES, month="2026-10", compare=None)
    assert "p_value" not in jm.to_frame()
    assert jm.previous is None


def test_segment_from_events_users_table_and_series(hand_log):
    by_device = journey_map(hand_log, STAGES, month="2026-10", segment="device")
    assert _row(by_device, "awareness", "mobile")[["users", "reached_next"]].tolist() == [2, 2]
    assert _row(by_device, "awareness", "desktop")[["users", "reached_next"]].tolist() == [1, 0]
    assert set(by_device.to_frame()["segment"]) == {"mobile", "desktop"}

    users = pd.DataFrame(
        {"user_id": ["u1", "u2", "u3", "u4", "u5"], "persona": ["a", "b", "a", "b", "b"]}
    )
    by_persona = journey_map(hand_log, STAGES, month="2026-10", segment="persona", users=users)
    assert _row(by_persona, "consideration", "b")[["users", "reached_next"]].tolist() == [3, 1]

    series = pd.Series({"u1": "x", "u2": "x"}, name="cohort")
    by_series = journey_map(hand_log, STAGES, month="2026-10", segment=series)
    assert _row(by_series, "awareness", "(unknown)")["users"] == 1
    assert by_series.segment == "cohort"


def test_start_end_window_and_previous_of_equal_length(hand_log):
    jm = journey_map(hand_log, STAGES, start="2026-10-01", end="2026-10-04")
    assert _row(jm, "awareness")["users"] == 2
    assert jm.previous.start == pd.Timestamp("2026-09-28", tz="UTC")
    assert jm.period.label == "2026-10-01 to 2026-10-03"


def test_empty_period_is_a_clear_error(hand_log):
    with pytest.raises(
        NotComputableError,
        match=r"No events in the period 2027-01; the data cover 2026-09-15 to 2026-10-10",
    ):
        journey_map(hand_log, STAGES, month="2027-01")


def test_bad_arguments(hand_log):
    with pytest.raises(ParameterError, match="either month= or start="):
        journey_map(hand_log, STAGES, month="2026-10", start="2026-10-01")
    with pytest.raises(
        ParameterError, match=r"month == '2026-1': not a calendar month; write 'YYYY-MM'"
    ):
        resolve_period(month="2026-1")
    with pytest.raises(
        SchemaError, match=r"segment 'devise' is not a column.*did you mean 'device'"
    ):
        journey_map(hand_log, STAGES, month="2026-10", segment="devise")
    with pytest.raises(SchemaError, match="lacks required column"):
        journey_map(hand_log.drop(columns="event"), STAGES, month="2026-10")


def test_summary_html_and_plots(hand_log, tmp_path):
    jm = journey_map(hand_log, STAGES, month="2026-10", segment="device")
    text = jm.summary()
    assert "mobile: 2 users; awareness → consideration 100.0%" in text
    assert "<h4>Journey map</h4>" in jm._repr_html_()
    ax = jm.plot()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "purchase: Revenue" in labels
    assert "400" in [t.get_text() for t in ax.texts]  # desktop revenue 300 + 100 annotated
    ax2 = jm.plot(kind="conversion")
    assert [t.get_text() for t in ax2.get_yticklabels()][0] == "awareness → consideration"
    ax2.figure.savefig(tmp_path / "map.png")


_EVENTS = [
    "ad_impression",
    "site_visit",
    "phone_call",
    "booking_started",
    "booking_completed",
    "repeat_booking",
    "review_posted",
    "unmapped",
]


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 8),
            st.integers(0, 60 * 24 * 60),
            st.sampled_from(_EVENTS),
            st.sampled_from(["m", "d"]),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_invariants_on_random_logs(rows):
    frame = pd.DataFrame(rows, columns=["user", "minute", "event", "device"])
    events = pd.DataFrame(
        {
            "user_id": "u" + frame["user"].astype(str),
            "timestamp": pd.Timestamp("2026-09-01", tz="UTC")
            + pd.to_timedelta(frame["minute"], unit="min"),
            "event": frame["event"],
            "value": 1.0,
            "device": frame["device"],
        }
    )
    in_october = events["timestamp"] >= pd.Timestamp("2026-10-01", tz="UTC")
    if not in_october.any():
        with pytest.raises(NotComputableError, match="No events in the period"):
            journey_map(events, STAGES, month="2026-10")
        return
    if (events.loc[in_october, "event"] == "unmapped").all():
        with pytest.raises(NotComputableError, match="belongs to a stage"):
            journey_map(events, STAGES, month="2026-10")
        return
    jm = journey_map(events, STAGES, month="2026-10", segment="device", compare=None)
    t = jm.to_frame()
    conv = t["conversion"].dropna()
    assert ((conv >= 0) & (conv <= 1)).all()
    assert (t["users"] <= t["users_in_period"]).all()
    assert (t["reached_next"] <= t["users"]).all()
    assert (
        (t["conversion_ci_low"].dropna() <= conv + 1e-12)
        & (conv <= t["conversion_ci_high"].dropna() + 1e-12)
    ).all()
    per_segment = t.drop_duplicates("segment")["users_in_period"].sum()
    assert per_segment == events.loc[in_october, "user_id"].nunique()
    # users reaching the next stage afterwards are among the users of the next stage
    for _, group in t.groupby("segment"):
        assert (group["reached_next"].to_numpy()[:-1] <= group["users"].to_numpy()[1:]).all()


@pytest.fixture
def small(request):
    pytest.importorskip(
        "journeylab.datasets.sample", reason="the sample generator has not landed yet"
    )
    return request.getfixturevalue("small_sample")


def test_sample_reconciles_with_raw_counts(small):
    events = small.events
    jm = journey_map(events, STAGES, month="2026-10", segment="device")
    october = events.loc[
        (events["timestamp"] >= "2026-10-01") & (events["timestamp"] < "2026-11-01")
    ]
    t = jm.to_frame()
    assert t.drop_duplicates("segment")["users_in_period"].sum() == october["user_id"].nunique()
    kpis = jm.kpis.groupby("kpi")["value"].sum()
    assert kpis["sessions"] == (october["event"] == "site_visit").sum()
    assert kpis["revenue"] == pytest.approx(
        october.loc[october["event"] == "booking_completed", "value"].sum()
    )
    visitors = october.loc[
        october["event"].isin(
            ["site_visit", "service_page_view", "quote_request", "phone_call", "callback"]
        ),
        "user_id",
    ].nunique()
    assert t.loc[t["stage"] == "consideration", "users"].sum() == visitors
    assert np.isfinite(t.loc[t["stage"] == "awareness", "conversion"]).all()


def test_small_segments_are_suppressed_and_counted(hand_log, tmp_path):
    # October users: mobile u1, u2 (2); desktop u3, u4, u5 (3)
    full = journey_map(hand_log, STAGES, month="2026-10", segment="device")
    shown = journey_map(hand_log, STAGES, month="2026-10", segment="device", min_users=3)
    assert shown.suppressed_segments == 1
    assert set(shown.to_frame()["segment"]) == {"desktop"} and set(shown.kpis["segment"]) == {
        "desktop"
    }
    desktop = full.to_frame()[full.to_frame()["segment"] == "desktop"].reset_index(drop=True)
    pd.testing.assert_frame_equal(shown.to_frame(), desktop, check_categorical=False)
    text = shown.summary()
    assert "1 segment with fewer than 3 users is not shown" in text and "mobile" not in text
    html = shown._repr_html_()
    assert "mobile" not in html
    for kind in ("kpis", "conversion"):
        ax = shown.plot(kind=kind)
        assert [t.get_text() for t in ax.get_xticklabels()] == ["desktop"]
        ax.figure.savefig(tmp_path / f"suppressed_{kind}.png")
    none = journey_map(hand_log, STAGES, month="2026-10", segment="device", min_users=10)
    assert none.to_frame().empty and none.kpis.empty
    assert "2 segments with fewer than 10 users are not shown" in none.summary()
    assert none.plot().get_title().startswith("No segment has 10 users or more in")
    assert "jl-table" in none._repr_html_()
    # no segment: the whole period is shown whatever min_users says
    assert (
        journey_map(hand_log, STAGES, month="2026-10", min_users=100)
        .to_frame()["users_in_period"]
        .iloc[0]
        == 5
    )
    with pytest.raises(ParameterError, match="min_users == -3"):
        journey_map(hand_log, STAGES, month="2026-10", segment="device", min_users=-3)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_the_stage_map_is_required_and_may_come_from_the_project(hand_log):
    with pytest.raises(ParameterError, match="No stage map given, and there is no default one"):
        journey_map(hand_log, month="2026-10")
    project = Project.from_dict({
        "data": {"events": {"path": "events.csv"}},
        "journey": {"conversion": "booking_completed"},
        "stages": STAGES.to_dict(),
    })  # fmt: skip
    pd.testing.assert_frame_equal(
        journey_map(hand_log, project=project, month="2026-10").to_frame(),
        journey_map(hand_log, STAGES, month="2026-10").to_frame(),
    )


def test_misspelt_segment_names_the_closest_columns(hand_log):
    users = pd.DataFrame({"user_id": ["u1"], "persona": ["a"]})
    with pytest.raises(UnknownNameError) as info:
        journey_map(hand_log, STAGES, month="2026-10", segment="persna", users=users)
    assert info.value.suggestions == {"persna": "persona"}
    assert (
        "segment 'persna' is not a column of the events or the users table (did you mean 'persona'?)"
        in str(info.value)
    )


def test_a_stage_map_of_other_events_is_an_error_not_a_map_of_zeros(hand_log):
    shop = StageMap.from_dict({"stages": [{"name": "browse", "events": ["view", "site_vist"]},
                                          {"name": "buy", "events": ["purchase"]}]})  # fmt: skip
    with pytest.raises(
        NotComputableError, match=r"No event in 2026-10 belongs to a stage of the stage map"
    ) as info:
        journey_map(hand_log, shop, month="2026-10")
    assert "'site_vist' (did you mean 'site_visit'?)" in str(info.value)


def test_a_segment_with_one_value_is_mapped_and_said(hand_log):
    jm = journey_map(hand_log.assign(device="mobile"), STAGES, month="2026-10", segment="device")
    assert set(jm.to_frame()["segment"]) == {"mobile"}
    assert jm.notes == ["Only one value of device (mobile) in 2026-10: no comparison."]
    assert "Only one value of device (mobile) in 2026-10: no comparison." in jm.summary()


def test_an_empty_period_is_said_before_an_unknown_segment():
    """The period is checked first; a segment no table has is then named with suggestions."""
    from journeylab.core.errors import NotComputableError, UnknownNameError
    from journeylab.core.stages import StageMap
    from journeylab.maps.journey_maps import journey_map

    stages = StageMap.from_dict(
        {"stages": [{"name": "look", "events": ["view"]}, {"name": "buy", "events": ["buy"]}]}
    )
    ev = pd.DataFrame(
        {
            "user_id": ["a", "a", "b"],
            "event": ["view", "buy", "view"],
            "timestamp": pd.to_datetime(["2026-10-01", "2026-10-02", "2026-10-03"], utc=True),
            "platform": ["web", "web", "app"],
        }
    )
    with pytest.raises(NotComputableError, match="No events in the period 2026-12"):
        journey_map(ev, stages, month="2026-12", segment="nope")
    with pytest.raises(UnknownNameError, match="platform"):
        journey_map(ev, stages, month="2026-10", segment="platfrom")
