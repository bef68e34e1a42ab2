"""Pain points: value-at-stake arithmetic, Newcombe intervals, ranking and planted gaps."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from journeylab.core.errors import NotComputableError, ParameterError, UnknownNameError
from journeylab.core.project import Project
from journeylab.datasets import sample_stage_map
from journeylab.maps.pains import pain_points, response_speed

REFERENCE = json.loads(
    (Path(__file__).parents[1] / "results" / "journey_map_reference.json").read_text(
        encoding="utf-8"
    )
)
FORM = "booking_started → booking_completed"
PHONE = "phone_call → booking_completed"
STAGES = sample_stage_map()
#: The sample's key event-to-event steps and how a finding words them.
SAMPLE_STEPS = [
    ("booking_started", "booking_completed", "at the booking form"),
    ("phone_call", "booking_completed", "between phone call and booking"),
    ("quote_request", "booking_completed", "between quote request and booking"),
    ("site_visit", "booking_started", "between site visit and booking form"),
]
FORM_STEP, PHONE_STEP = SAMPLE_STEPS[0], SAMPLE_STEPS[1]


def sample_steps(events: pd.DataFrame) -> list[tuple[str, ...]]:
    """Every consecutive stage pair, plus the sample's key steps whose first event occurs."""
    present = set(events["event"])
    return [
        *zip(STAGES.names, STAGES.names[1:], strict=False),
        *(s for s in SAMPLE_STEPS if s[0] in present),
    ]


def callback_speed(events: pd.DataFrame, fast_minutes: float = 60) -> pd.Series:
    """The sample's phone leads by call-back speed."""
    return response_speed(
        events, request_event="phone_call", response_event="callback", minutes_column="response_minutes",
        fast_minutes=fast_minutes, name="callback_speed",
    )  # fmt: skip


def pains(events: pd.DataFrame, **options):
    """pain_points with the sample's stage map and conversion."""
    return pain_points(events, STAGES, conversion="booking_completed", **options)


def _form_log(
    counts: dict[str, tuple[int, int]], start: str = "2026-10-02", value: float = 100.0
) -> pd.DataFrame:
    """Users who start the booking form, per device: (started, completed)."""
    devices = (
        np.concatenate([[d] * n for d, (n, _) in counts.items()])
        if counts
        else np.array([], dtype=object)
    )
    done = (
        np.concatenate([np.arange(n) < k for _, (n, k) in counts.items()])
        if counts
        else np.array([], dtype=bool)
    )
    ids = np.array([f"{start}-{i:04d}" for i in range(len(devices))])
    t0 = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.arange(len(devices)), unit="min")
    started = pd.DataFrame(
        {
            "user_id": ids,
            "timestamp": t0,
            "event": "booking_started",
            "value": np.nan,
            "device": devices,
        }
    )
    completed = pd.DataFrame(
        {
            "user_id": ids[done],
            "timestamp": t0[done] + pd.Timedelta(minutes=20),
            "event": "booking_completed",
            "value": value,
            "device": devices[done],
        }
    )
    return pd.concat([started, completed], ignore_index=True)


def _phone_log(
    fast: tuple[int, int], slow: tuple[int, int], start: str = "2026-10-03"
) -> pd.DataFrame:
    """Phone leads called back fast (30 min) or slow (120 min): (leads, bookings)."""
    minutes = np.r_[np.full(fast[0], 30.0), np.full(slow[0], 120.0)]
    booked = np.r_[np.arange(fast[0]) < fast[1], np.arange(slow[0]) < slow[1]]
    ids = np.array([f"p{i:04d}" for i in range(len(minutes))])
    t0 = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(np.arange(len(ids)), unit="min")
    base = {"user_id": ids, "device": "desktop", "value": np.nan}
    calls = pd.DataFrame({**base, "timestamp": t0, "event": "phone_call", "channel": "phone"})
    backs = pd.DataFrame(
        {
            **base,
            "timestamp": t0 + pd.to_timedelta(minutes, unit="min"),
            "event": "callback",
            "channel": "phone",
            "response_minutes": minutes,
        }
    )
    book = pd.DataFrame(
        {
            **base,
            "timestamp": t0 + pd.Timedelta(days=1),
            "event": "booking_completed",
            "value": 100.0,
        }
    )[booked]
    return pd.concat([calls, backs, book], ignore_index=True)


@pytest.fixture
def planted():
    return pd.concat(
        [_form_log({"mobile": (20, 6), "desktop": (20, 16)}), _phone_log((20, 12), (20, 4))],
        ignore_index=True,
    )


def _row(result, step, dimension, segment):
    t = result.to_frame()
    return t.loc[
        (t["step"] == step) & (t["dimension"] == dimension) & (t["segment"] == segment)
    ].iloc[0]


def test_value_at_stake_arithmetic(planted):
    pp = pains(
        planted, month="2026-10", segments=("device", callback_speed(planted)), steps=[FORM_STEP, PHONE_STEP],
        min_users=5,
    )  # fmt: skip
    assert pp.value_per_conversion == pytest.approx(100.0)  # mean booking value
    mobile = _row(pp, FORM, "device", "mobile")
    assert (mobile["reached"], mobile["converted"], mobile["benchmark"]) == (20, 6, "desktop")
    assert mobile["gap"] == pytest.approx(0.5)
    assert mobile["value_at_stake"] == pytest.approx(20 * (0.8 - 0.3) * 100)
    lo, hi = confint_proportions_2indep(16, 20, 6, 20, method="newcombe", compare="diff")
    assert mobile["value_at_stake_ci_low"] == pytest.approx(20 * lo * 100)
    assert mobile["value_at_stake_ci_high"] == pytest.approx(20 * hi * 100)
    # Newcombe (1998) method 10 from Wilson bounds, independently of statsmodels (tests/results)
    (l1, u1), (l2, u2) = (
        proportion_confint(16, 20, method="wilson"),
        proportion_confint(6, 20, method="wilson"),
    )
    newcombe = (0.5 - math.hypot(0.8 - l1, u2 - 0.3), 0.5 + math.hypot(u1 - 0.8, 0.3 - l2))
    assert newcombe == pytest.approx(REFERENCE["newcombe_16_of_20_vs_6_of_20"]["value"], rel=1e-9)
    assert (mobile["gap_ci_low"], mobile["gap_ci_high"]) == pytest.approx(newcombe, rel=1e-9)
    assert _row(pp, FORM, "device", "desktop")["value_at_stake"] == 0
    slow = _row(pp, PHONE, "callback_speed", "slow (> 60 min)")
    assert slow["value_at_stake"] == pytest.approx(20 * (0.6 - 0.2) * 100)
    assert slow["benchmark"] == "fast (≤ 60 min)"
    top = pp.top(2)
    assert list(zip(top["step"], top["segment"], strict=True))[0] == (FORM, "mobile")
    assert top["value_at_stake"].tolist() == pytest.approx([1000.0, 800.0])


def test_explicit_value_per_conversion_and_min_users(planted):
    pp = pains(
        planted,
        month="2026-10",
        segments=("device",),
        steps=[FORM_STEP],
        value_per_conversion=50,
        min_users=5,
    )
    assert _row(pp, FORM, "device", "mobile")["value_at_stake"] == pytest.approx(500.0)
    tiny = pains(planted, month="2026-10", segments=("device",), steps=[FORM_STEP], min_users=21)
    assert not tiny.to_frame().loc[tiny.to_frame()["step"] == FORM, "sized"].any()


def test_findings_read_well(planted):
    pp = pains(
        planted, month="2026-10", segments=("device", callback_speed(planted)), steps=[FORM_STEP, PHONE_STEP],
        min_users=5,
    )  # fmt: skip
    first = pp.findings(1)[0]
    assert first.startswith(
        "Users with device = mobile drop out at the booking form 3.5× as often as users with device = desktop "
        "(70.0% vs 20.0%; 20 reached the step)"
    )
    assert "closing the gap is worth $1,000 a month [" in first
    assert any(
        f.startswith(
            "Users with callback_speed = slow (> 60 min) drop out between phone call and booking"
        )
        for f in pp.findings(3)
    )
    assert "Pain points, 2026-10" in pp.summary()
    assert "value at stake" in pp._repr_html_()


def test_a_series_is_a_segment_dimension(planted):
    mobile = planted.loc[planted["device"] == "mobile", "user_id"].unique()
    cohort = pd.Series("y", index=planted["user_id"].unique(), name="cohort")
    cohort[mobile] = "x"
    pp = pains(
        planted, month="2026-10", segments=(cohort,), steps=[FORM_STEP, PHONE_STEP], min_users=5
    )
    assert set(pp.to_frame()["dimension"]) == {"cohort"}
    assert _row(pp, FORM, "cohort", "x")["value_at_stake"] == pytest.approx(1000.0)
    assert pp.findings(1)[0].startswith(
        "Users with cohort = x drop out at the booking form 3.5× as often as users with cohort = y"
    )


def test_response_speed_labels():
    log = _phone_log((2, 1), (3, 0))
    log = pd.concat(
        [
            log,
            pd.DataFrame(
                {
                    "user_id": ["q"],
                    "timestamp": [pd.Timestamp("2026-10-05", tz="UTC")],
                    "event": ["phone_call"],
                }
            ),
        ]
    )
    speed = callback_speed(log, fast_minutes=60)
    assert speed.name == "callback_speed"
    assert speed.value_counts().to_dict() == {
        "slow (> 60 min)": 3,
        "fast (≤ 60 min)": 2,
        "no response": 1,
    }
    assert response_speed(
        log, request_event="phone_call", response_event="callback", minutes_column="response_minutes",
        fast_minutes=150,
    ).value_counts().to_dict() == {"fast (≤ 150 min)": 5, "no response": 1}  # fmt: skip
    with pytest.raises(
        UnknownNameError, match="minutes column 'response_minutes' is not a column of the events"
    ):
        callback_speed(log.drop(columns="response_minutes"))
    with pytest.raises(
        UnknownNameError, match="event 'call_back' occurs in no row.*did you mean 'callback'"
    ):
        response_speed(
            log,
            request_event="phone_call",
            response_event="call_back",
            minutes_column="response_minutes",
        )


def test_previous_period_benchmark():
    log = pd.concat(
        [
            _form_log({"mobile": (20, 15)}, start="2026-09-05"),
            _form_log({"mobile": (20, 5)}, start="2026-10-05"),
        ],
        ignore_index=True,
    )
    pp = pains(
        log,
        month="2026-10",
        segments=("device",),
        steps=[FORM_STEP],
        benchmark="previous_period",
        min_users=5,
    )
    row = _row(pp, FORM, "device", "mobile")
    assert row["benchmark"] == "2026-09"
    assert row["value_at_stake"] == pytest.approx(20 * (0.75 - 0.25) * 100)
    assert "as often as in 2026-09" in pp.findings(1)[0]


def test_touchpoint_is_last_channel_before_the_step():
    t = pd.Timestamp("2026-10-02", tz="UTC")
    log = pd.DataFrame(
        {
            "user_id": ["a", "a", "a", "b", "b"],
            "timestamp": [
                t,
                t + pd.Timedelta(hours=1),
                t + pd.Timedelta(hours=2),
                t,
                t + pd.Timedelta(hours=1),
            ],
            "event": [
                "site_visit",
                "booking_started",
                "booking_completed",
                "site_visit",
                "booking_started",
            ],
            "channel": ["email", pd.NA, pd.NA, "social", pd.NA],
            "value": [np.nan, np.nan, 80.0, np.nan, np.nan],
        }
    )
    pp = pains(log, month="2026-10", segments=("touchpoint",), steps=[FORM_STEP], min_users=1)
    form = pp.to_frame().query("step == @FORM")
    assert dict(zip(form["segment"], form["converted"], strict=True)) == {"email": 1, "social": 0}


def test_errors(planted):
    segments = ("device",)
    with pytest.raises(NotComputableError, match="No events in the period 2027-03"):
        pains(planted, month="2027-03", segments=segments)
    with pytest.raises(ParameterError, match=r"benchmark == 'best', must be one of"):
        pains(planted, month="2026-10", segments=segments, benchmark="best")
    with pytest.raises(
        ParameterError,
        match=r"step name 'booking_start' is neither a stage nor an event of the data "
        r"\(did you mean 'booking_started'\?\)",
    ):
        pains(
            planted,
            month="2026-10",
            segments=segments,
            steps=[("booking_start", "booking_completed")],
        )
    with pytest.raises(NotComputableError, match="pass value_per_conversion="):
        pains(planted.assign(value=np.nan), month="2026-10", segments=segments)
    with pytest.raises(ParameterError, match=r"Step 'booking_started' must be a pair"):
        pains(planted, month="2026-10", segments=segments, steps=["booking_started"])


def test_misspelt_conversion_step_and_segment_name_the_closest(planted):
    with pytest.raises(UnknownNameError) as info:
        pain_points(planted, STAGES, conversion="booking_complete", segments=("device",))
    assert info.value.suggestions == {"booking_complete": "booking_completed"}
    assert (
        "conversion event 'booking_complete' occurs in no row (did you mean 'booking_completed'?)"
        in str(info.value)
    )
    with pytest.raises(UnknownNameError) as info:
        pains(planted, segments=("devise",))
    assert "segment 'devise' is not a column of the events (did you mean 'device'?)" in str(
        info.value
    )
    with pytest.raises(
        UnknownNameError, match="'personna'.*or the users table.*did you mean 'persona'"
    ):
        pains(
            planted,
            segments=("personna",),
            users=pd.DataFrame({"user_id": ["p0000"], "persona": ["a"]}),
        )
    with pytest.raises(UnknownNameError, match="step name 'phonecall'.*did you mean 'phone_call'"):
        pains(planted, segments=("device",), steps=[("phonecall", "booking_completed")])
    with pytest.raises(ParameterError, match="Name the conversion"):
        pain_points(planted, STAGES, segments=("device",))
    with pytest.raises(ParameterError, match=r"Name the segment dimensions.*'device'"):
        pains(planted)
    with pytest.raises(ParameterError, match="No stage map given"):
        pain_points(planted, conversion="booking_completed", segments=("device",))


def test_a_dimension_with_one_value_is_kept_and_noted(planted):
    pp = pains(planted.assign(device="desktop"), month="2026-10", segments=("device",), steps=[FORM_STEP],
               min_users=5)  # fmt: skip
    assert set(pp.to_frame()["segment"]) == {"desktop"}
    assert "only one value of device (desktop) in 2026-10: no comparison." in pp.notes
    assert "Note: only one value of device (desktop) in 2026-10: no comparison." in pp.summary()


def test_conversion_funnel_segments_and_value_from_the_project_file(planted):
    project = Project.from_dict({
        "data": {"events": {"path": "events.csv"}},
        "journey": {"conversion": "booking_completed", "value_per_conversion": 50},
        "stages": STAGES.to_dict(),
        "funnel": ["booking_started", "booking_completed"],
        "segments": ["device"],
    })  # fmt: skip
    pp = pain_points(planted, project=project, month="2026-10", min_users=5)
    assert pp.value_per_conversion == 50
    assert "($50.00 per conversion)" in pp.summary()  # the project file's default currency, USD
    in_euro = pain_points(
        planted, project=replace(project, currency="EUR"), month="2026-10", min_users=5
    )
    assert "(€50.00 per conversion)" in in_euro.summary() and "$" not in in_euro.summary()
    assert all("€" in f and "$" not in f for f in in_euro.findings(3))
    shown = in_euro.display_frame()["value at stake"]
    assert shown.str.startswith("€").all()
    in_francs = pain_points(planted, project=project, month="2026-10", min_users=5, currency="CHF")
    assert "(CHF 50.00 per conversion)" in in_francs.summary()
    assert set(pp.to_frame()["dimension"]) == {"device", "touchpoint"}
    assert FORM in set(pp.to_frame()["step"])  # the funnel's step
    assert "awareness → consideration" in pp.step_words  # and the stage pairs
    explicit = pains(
        planted,
        month="2026-10",
        min_users=5,
        value_per_conversion=50,
        segments=("device", "touchpoint"),
        steps=[
            *zip(STAGES.names, STAGES.names[1:], strict=False),
            ("booking_started", "booking_completed"),
        ],
    )
    pd.testing.assert_frame_equal(pp.to_frame(), explicit.to_frame())


def test_plot(planted, tmp_path):
    pp = pains(
        planted, month="2026-10", segments=("device", callback_speed(planted)), steps=[FORM_STEP, PHONE_STEP],
        min_users=5,
    )  # fmt: skip
    ax = pp.plot()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == f"{FORM}\ndevice = mobile"  # largest bar on top
    ax.figure.savefig(tmp_path / "pain.png")


@settings(max_examples=8, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["mobile", "desktop", "tablet"]),
        st.integers(1, 30).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
        min_size=1,
    )
)
def test_value_at_stake_is_the_gap_to_the_best_segment(counts):
    # a booking in September makes the conversion a known event even when nobody converts in October
    known = _form_log({"desktop": (1, 1)}, start="2026-09-02")
    pp = pains(
        pd.concat([_form_log(counts), known], ignore_index=True), month="2026-10", segments=("device",),
        steps=[("booking_started", "booking_completed")], value_per_conversion=10, min_users=1,
    )  # fmt: skip
    rows = pp.to_frame().query("step == @FORM").set_index("segment")
    best = max(k / n for n, k in counts.values())
    for device, (n, k) in counts.items():
        row = rows.loc[device]
        assert row["value_at_stake"] >= 0
        assert row["value_at_stake"] == pytest.approx(n * (best - k / n) * 10, abs=1e-9)
        assert (
            row["value_at_stake_ci_low"]
            <= row["value_at_stake"] + 1e-9
            <= row["value_at_stake_ci_high"] + 2e-9
        )


def _planted_log(n_users: int = 3000, seed: int = 3) -> pd.DataFrame:
    """Visits, booking forms (mobile completes 30 %, desktop 70 %) and phone leads (fast 55 %, slow 20 %)."""
    rng = np.random.default_rng(seed)
    device = rng.choice(["mobile", "desktop", "tablet"], n_users, p=[0.5, 0.4, 0.1])
    t0 = pd.Timestamp("2026-10-01", tz="UTC") + pd.to_timedelta(
        rng.uniform(0, 25, n_users), unit="D"
    )
    ids = np.array([f"u{i:05d}" for i in range(n_users)])
    phone = rng.random(n_users) < 0.3
    fast = rng.random(n_users) < 0.5
    minutes = np.where(fast, 20.0, 240.0)
    phone_booked = phone & (rng.random(n_users) < np.where(fast, 0.55, 0.20))
    started = ~phone & (rng.random(n_users) < 0.5)
    form_booked = started & (
        rng.random(n_users)
        < pd.Series(device).map({"mobile": 0.3, "desktop": 0.7, "tablet": 0.6}).to_numpy()
    )
    h = pd.Timedelta(hours=1)
    channel = rng.choice(["paid_search", "organic_search", "social"], n_users)
    parts = [
        ("site_visit", np.ones(n_users, bool), t0, channel, np.nan),
        ("phone_call", phone, t0 + h, "phone", np.nan),
        ("callback", phone, t0 + h + pd.to_timedelta(minutes, unit="min"), "phone", minutes),
        ("booking_started", started, t0 + 2 * h, pd.NA, np.nan),
        ("booking_completed", phone_booked | form_booked, t0 + 30 * h, pd.NA, np.nan),
    ]
    frames = []
    for event, mask, ts, chan, resp in parts:
        frames.append(
            pd.DataFrame(
                {
                    "user_id": ids,
                    "timestamp": ts,
                    "event": event,
                    "channel": chan,
                    "device": device,
                    "value": 250.0 if event == "booking_completed" else np.nan,
                    "response_minutes": resp,
                }
            )[mask]  # fmt: skip
        )
    return pd.concat(frames, ignore_index=True)


def test_planted_gaps_come_out_on_top():
    log = _planted_log()
    pp = pains(
        log,
        month="2026-10",
        segments=("device", "touchpoint", callback_speed(log)),
        steps=sample_steps(log),
    )
    top = pp.top(3)
    keys = set(zip(top["dimension"], top["segment"], strict=True))
    assert ("device", "mobile") in keys
    assert ("callback_speed", "slow (> 60 min)") in keys
    assert top.iloc[0]["step"] == FORM and top.iloc[0]["segment"] == "mobile"


@pytest.fixture
def sample_data(request):
    pytest.importorskip(
        "journeylab.datasets.sample", reason="the sample generator has not landed yet"
    )
    return request.getfixturevalue("small_sample")


def test_sample_planted_effects_on_top(sample_data):
    """The sample plants a mobile booking-form drop-off and slow call-backs (truth); both lead the ranking."""
    truth = sample_data.truth
    events = sample_data.events
    pp = pains(
        events,
        segments=("device", "touchpoint", callback_speed(events)),
        steps=sample_steps(events),
    )
    top = pp.top(3)
    keys = set(zip(top["dimension"], top["segment"], strict=True))
    assert ("device", "mobile") in keys
    assert any(d == "callback_speed" and s.startswith("slow") for d, s in keys)
    phone = (
        pp.to_frame().query("step == @PHONE and dimension == 'callback_speed'").set_index("segment")
    )
    speed = truth["phone_response"]["booking_rate"]
    assert speed["slow"] < speed["fast"]
    assert phone.loc["slow (> 60 min)", "conversion"] < phone.loc["fast (≤ 60 min)", "conversion"]
    form = pp.to_frame().query("step == @FORM and dimension == 'device'").set_index("segment")
    rates = truth["mobile_form"]["completion_rate"]
    assert form.loc["mobile", "conversion"] < form.loc["desktop", "conversion"]
    assert rates["mobile"] < rates["desktop"]
