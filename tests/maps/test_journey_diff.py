"""Journey differences: transition counts, two-proportion tests, Benjamini–Hochberg, planted gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from journeylab.core.errors import NotComputableError, ParameterError, UnknownNameError
from journeylab.datasets import sample_stage_map
from journeylab.maps.journey_diff import END, START, compare_journeys, transition_counts

STAGES = sample_stage_map()

T0 = pd.Timestamp("2026-10-01", tz="UTC")


def _log(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "hours", "event", "device"])
    frame["timestamp"] = T0 + pd.to_timedelta(frame.pop("hours"), unit="h")
    return frame


def test_transition_counts_exact():
    log = _log(
        [
            ("u1", 0, "A", "m"),
            ("u1", 1, "A", "m"),
            ("u1", 2, "B", "m"),
            ("u1", 3, "C", "m"),
            ("u2", 0, "A", "d"),
            ("u2", 5, "C", "d"),
        ]
    )
    counts = transition_counts(log, log["event"]).set_index(["from", "to"])["count"].to_dict()
    assert counts == {(START, "A"): 2, ("A", "B"): 1, ("B", "C"): 1, ("A", "C"): 1, ("C", END): 2}
    raw = (
        transition_counts(log, log["event"], collapse_repeats=False)
        .set_index(["from", "to"])["count"]
        .to_dict()
    )
    assert raw[("A", "A")] == 1 and raw[(START, "A")] == 2


def test_ties_keep_input_order():
    log = _log([("u1", 0, "B", "m"), ("u1", 0, "A", "m")])
    counts = transition_counts(log, log["event"]).set_index(["from", "to"])["count"].to_dict()
    assert counts == {(START, "B"): 1, ("B", "A"): 1, ("A", END): 1}


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 50), st.sampled_from("ABCD")),
        min_size=1,
        max_size=40,
    )
)
def test_transition_counts_conserve_users(rows):
    log = _log([(f"u{u}", h, e, "m") for u, h, e in rows])
    counts = transition_counts(log, log["event"])
    users = log["user_id"].nunique()
    assert counts.loc[counts["from"] == START, "count"].sum() == users
    assert counts.loc[counts["to"] == END, "count"].sum() == users
    # every state is entered as often as it is left
    into = counts.groupby("to")["count"].sum().drop(END)
    out = counts.groupby("from")["count"].sum().drop(START)
    pd.testing.assert_series_equal(into.sort_index(), out.sort_index(), check_names=False)


def _planted(
    n: int = 300, mobile_rate: float = 0.3, desktop_rate: float = 0.7, seed: int = 5
) -> pd.DataFrame:
    """Visit → form start (60 % on both devices) → completion (planted gap by device)."""
    rng = np.random.default_rng(seed)
    frames = []
    for device, rate in (("mobile", mobile_rate), ("desktop", desktop_rate)):
        ids = np.array([f"{device}{i:04d}" for i in range(n)])
        started = rng.random(n) < 0.6
        done = started & (rng.random(n) < rate)
        for event, mask, hour in (
            ("site_visit", np.ones(n, bool), 0),
            ("booking_started", started, 1),
            ("booking_completed", done, 2),
        ):
            frames.append(
                pd.DataFrame(
                    {
                        "user_id": ids[mask],
                        "timestamp": T0 + pd.Timedelta(hours=hour),
                        "event": event,
                        "device": device,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def test_planted_difference_found_and_bh_applied():
    diff = compare_journeys(_planted(), STAGES, by="device", a="mobile", b="desktop", level="event")
    t = diff.to_frame().set_index("item")
    edge = t.loc["booking_started → booking_completed"]
    # the edge test is the pooled two-proportion z-test, R prop.test(correct=FALSE)
    _, p = proportions_ztest([edge["count_a"], edge["count_b"]], [edge["n_a"], edge["n_b"]])
    assert edge["p_value"] == pytest.approx(p, rel=1e-9)
    lo, hi = confint_proportions_2indep(
        edge["count_a"], edge["n_a"], edge["count_b"], edge["n_b"], method="newcombe"
    )
    assert (edge["diff_ci_low"], edge["diff_ci_high"]) == pytest.approx((lo, hi))
    assert edge["significant"] and edge["diff"] < 0
    assert t.loc["booking_started → (end)", "significant"]
    # Benjamini–Hochberg over every tested comparison together
    tested = diff.table.loc[diff.table["tested"]]
    reject, adjusted, _, _ = multipletests(tested["p_value"], alpha=0.05, method="fdr_bh")
    np.testing.assert_allclose(tested["p_adjusted"], adjusted)
    assert (tested["significant"].to_numpy() == reject).all()
    # the reach of the form start is the same by design: not named in the summary
    text = diff.summary()
    assert "transition booking_started → booking_completed" in text
    assert "site_visit → booking_started" not in text
    for item in diff.table.loc[~diff.table["significant"], "item"]:
        assert f" {item}:" not in text


def test_reach_and_step_rows_exact():
    log = _log([
        ("m1", 0, "site_visit", "m"), ("m1", 1, "booking_started", "m"),
        ("m2", 0, "site_visit", "m"),
        ("d1", 0, "site_visit", "d"), ("d1", 1, "booking_completed", "d"),
    ])  # fmt: skip
    diff = compare_journeys(log, STAGES, by="device", a="m", b="d", min_count=1)
    t = diff.to_frame().set_index(["kind", "item"])
    assert t.loc[("reach", "purchase"), ["count_a", "n_a", "count_b", "n_b"]].tolist() == [
        1,
        2,
        1,
        1,
    ]
    assert t.loc[
        ("step", "consideration → purchase"), ["count_a", "n_a", "count_b", "n_b"]
    ].tolist() == [1, 2, 1, 1]
    assert t.loc[("edge", "site_visit → (end)"), ["count_a", "n_a"]].tolist() == [1, 2]
    assert diff.users_a == 2 and diff.users_b == 1
    stages = compare_journeys(log, STAGES, by="device", a="m", b="d", level="stage", min_count=1)
    edge = stages.table.set_index(["kind", "item"]).loc[("edge", "consideration → purchase")]
    assert edge[["count_a", "n_a", "count_b", "n_b"]].tolist() == [1, 2, 1, 1]


def test_identical_groups_have_no_significant_difference(tmp_path):
    diff = compare_journeys(
        _planted(mobile_rate=0.5, desktop_rate=0.5, seed=11),
        STAGES,
        by="device",
        a="mobile",
        b="desktop",
    )
    assert not diff.table["significant"].any()
    assert "No difference survives FDR control" in diff.summary()
    ax = diff.plot()
    assert ax.texts[0].get_text() == "No difference survives FDR control"


def test_two_periods():
    log = pd.concat([_planted(n=200, seed=1).assign(timestamp=lambda f: f["timestamp"] - pd.Timedelta(days=30)),
                     _planted(n=200, mobile_rate=0.7, seed=2).assign(user_id=lambda f: "o" + f["user_id"])],
                    ignore_index=True)  # fmt: skip
    diff = compare_journeys(
        log,
        STAGES,
        periods=(("2026-09-01", "2026-10-01"), ("2026-10-01", "2026-11-01")),
        level="event",
    )
    # the change from the first period to the second: a = 2026-10, b = 2026-09
    assert (diff.label_a, diff.label_b) == ("2026-10", "2026-09")
    assert diff.summary().startswith("period 2026-10 (400 users) vs 2026-09 (400 users)")
    step = diff.table.set_index(["kind", "item"]).loc[
        ("edge", "booking_started → booking_completed")
    ]
    assert step["diff"] > 0  # mobile completion planted at 30 % in September, 70 % in October
    edges = diff.table.loc[diff.table["kind"] == "edge", "item"]
    assert "site_visit → booking_started" in set(edges)


def test_errors():
    log = _planted(n=20)
    with pytest.raises(
        ParameterError,
        match=r"value 'mobil' of 'device' belongs to no user in .* \(did you mean 'mobile'\?\)",
    ) as info:
        compare_journeys(log, STAGES, by="device", a="mobil", b="desktop")
    assert isinstance(info.value, UnknownNameError) and info.value.suggestions == {
        "mobil": "mobile"
    }
    assert "values present: 'desktop', 'mobile'" in str(info.value)
    with pytest.raises(
        UnknownNameError,
        match=r"segment 'devise' is not a column of the events \(did you mean 'device'\?\)",
    ):
        compare_journeys(log, STAGES, by="devise", a="mobile", b="desktop")
    with pytest.raises(NotComputableError, match="No events in the period 2027-01"):
        compare_journeys(log, STAGES, by="device", a="mobile", b="desktop", month="2027-01")
    with pytest.raises(ParameterError, match="Say what to compare"):
        compare_journeys(log, STAGES)
    with pytest.raises(ParameterError, match="Say what to compare"):
        compare_journeys(log, STAGES, by="device")
    with pytest.raises(
        NotComputableError, match=r"Only one value of device \(mobile\) in .*: no comparison"
    ):
        compare_journeys(log.assign(device="mobile"), STAGES, by="device", a="mobile", b="desktop")
    with pytest.raises(ParameterError, match="No stage map given"):
        compare_journeys(log, by="device", a="mobile", b="desktop")
    with pytest.raises(ParameterError, match="two"):
        compare_journeys(log, STAGES, periods=(("2026-10-01", "2026-11-01"),))
    with pytest.raises(ParameterError, match=r"level == 'path'"):
        compare_journeys(log, STAGES, level="path")


def test_plot_names_significant_differences(tmp_path):
    diff = compare_journeys(_planted(), STAGES, by="device", a="mobile", b="desktop")
    ax = diff.plot()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "edge: booking_started → booking_completed" in labels
    assert len(labels) == int(diff.table["significant"].sum())
    ax.figure.savefig(tmp_path / "diff.png")


@pytest.fixture
def sample_data(request):
    pytest.importorskip(
        "journeylab.datasets.sample", reason="the sample generator has not landed yet"
    )
    return request.getfixturevalue("small_sample")


def test_sample_mobile_form_gap_is_significant(sample_data):
    diff = compare_journeys(sample_data.events, STAGES, by="device", a="mobile", b="desktop")
    sig = diff.significant().set_index("item")
    # the planted form drop-off: mobile users leave the booking form more often
    completes = "booking_started → booking_completed"
    abandons = "booking_started → (end)"
    assert (completes in sig.index and sig.loc[completes, "diff"] < 0) or (
        abandons in sig.index and sig.loc[abandons, "diff"] > 0
    )
    rates = sample_data.truth["mobile_form"]["completion_rate"]
    assert rates["mobile"] < rates["desktop"]
