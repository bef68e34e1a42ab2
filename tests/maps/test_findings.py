"""The findings pass: planted effects found, statistics equal statsmodels, money never counted twice."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from statsmodels.stats import proportion as smp
from statsmodels.stats.multitest import multipletests

from journeylab.core.errors import SchemaError
from journeylab.core.project_sections import SegmentSpec
from journeylab.core.stages import StageMap
from journeylab.datasets import make_sample, sample_stage_map
from journeylab.maps.findings import FINDING_FIELDS, find

FUNNEL = ["site_visit", "booking_started", "booking_completed"]
CALLBACK = SegmentSpec("callback_speed", "response_minutes", (60.0,), ("fast", "slow"))


@pytest.fixture(scope="module")
def sample():
    return make_sample(seed=2026, n_users=20_000)


@pytest.fixture(scope="module")
def found(sample):
    events = sample.events.assign(callback_speed=CALLBACK.apply(sample.events))
    return find(
        events,
        sample_stage_map(),
        month="2026-10",
        conversion="booking_completed",
        funnel=FUNNEL,
        segments=["device", "channel", "callback_speed"],
        timezone="America/New_York",
    )


def test_planted_pain_points_lead_the_findings(found, sample):
    top = found.top(3)
    keys = set(zip(top["dimension"], top["segment"], strict=True))
    assert ("device", "mobile") in keys
    assert ("callback_speed", "slow") in keys
    mobile = top.loc[top["segment"] == "mobile"].iloc[0]
    assert mobile["step"] == "booking_started → booking_completed"
    planted = sample.truth["mobile_form"]["completion_rate"]["mobile"]
    # the month's mobile completion mixes the experiment's arms; the planted rate lies inside the 99.9 % band
    assert abs(mobile["value"] - planted) < 0.12
    slow = top.loc[top["segment"] == "slow"].iloc[0]
    assert slow["value"] < slow["benchmark"]


def test_difference_interval_and_p_equal_statsmodels(found):
    row = found.top(1).iloc[0]
    ci = smp.confint_proportions_2indep(
        row["made"],
        row["reached"],
        row["benchmark_made"],
        row["benchmark_reached"],
        method="newcombe",
    )
    assert row["difference"] == pytest.approx(
        row["made"] / row["reached"] - row["benchmark_made"] / row["benchmark_reached"]
    )
    assert (row["difference_ci_low"], row["difference_ci_high"]) == pytest.approx(ci, rel=1e-9)
    p = smp.test_proportions_2indep(
        row["made"],
        row["reached"],
        row["benchmark_made"],
        row["benchmark_reached"],
        method="score",
        correction=False,
    ).pvalue
    assert row["p_value"] == pytest.approx(p, rel=1e-9)


def test_q_values_are_benjamini_hochberg_over_the_whole_pass(found):
    tests = found.tests()
    tested = tests.loc[tests["tested"]]
    q = multipletests(tested["p_value"], method="fdr_bh")[1]
    np.testing.assert_allclose(tested["q_value"].to_numpy(), q, rtol=1e-12)
    assert (found.to_frame()["q_value"] < 0.05).all()


def test_money_is_never_counted_twice(found):
    frame = found.to_frame()
    counted = frame.loc[frame["counted"]]
    assert not counted.duplicated(["dimension", "segment"]).any()
    for row in frame.loc[~frame["counted"]].itertuples():
        lead = frame.loc[frame["id"] == row.overlaps].iloc[0]
        assert (lead["dimension"], lead["segment"]) == (row.dimension, row.segment)
        assert lead["value_at_stake"] >= row.value_at_stake
    for dim in counted["dimension"].unique():
        assert found.total(dim) == pytest.approx(
            counted.loc[counted["dimension"] == dim, "value_at_stake"].sum()
        )


def test_records_are_json_with_the_documented_fields(found):
    records = found.records()
    assert records and all(tuple(r) == FINDING_FIELDS for r in records)
    text = json.dumps(records, allow_nan=False)
    assert json.loads(text)[0]["rank"] == 1
    assert [r["rank"] for r in records] == list(range(1, len(records) + 1))
    assert all(
        r["text"] and "_" not in r["text"].split(":")[0] for r in records
    )  # display labels, not raw names


def test_ids_are_stable_across_months(sample):
    events = sample.events.assign(callback_speed=CALLBACK.apply(sample.events))
    kw = dict(
        conversion="booking_completed",
        funnel=FUNNEL,
        segments=["device", "callback_speed"],
        timezone="America/New_York",
    )
    sep = find(events, sample_stage_map(), month="2026-09", **kw)
    octo = find(events, sample_stage_map(), month="2026-10", **kw)
    mobile_sep = sep.to_frame().query("segment == 'mobile'")["id"].iloc[0]
    mobile_oct = octo.to_frame().query("segment == 'mobile'")["id"].iloc[0]
    assert mobile_sep == mobile_oct == "segment_gap:booking_started→booking_completed:device=mobile"


def test_first_month_has_no_change_and_says_so_once(sample):
    result = find(
        sample.events,
        sample_stage_map(),
        month="2026-05",
        conversion="booking_completed",
        funnel=FUNNEL,
        segments=["device"],
    )
    assert (result.tests()["kind"] != "change_vs_previous").all()
    notes = [n for n in result.notes if "previous month" in n]
    assert notes == ["No events in the previous month (2026-04): no change to report."]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"conversion": "booking_complete"}, "did you mean 'booking_completed'"),
        ({"funnel": ["site_visit", "booking_startd"]}, "did you mean 'booking_started'"),
        ({"segments": ["devise"]}, "did you mean 'device'"),
    ],
)
def test_names_no_row_carries_fail_with_suggestions(sample, kwargs, message):
    args = dict(month="2026-10", conversion="booking_completed", funnel=FUNNEL, segments=["device"])
    args.update(kwargs)
    with pytest.raises(SchemaError, match=message):
        find(sample.events, sample_stage_map(), **args)


def _log(rates: dict[str, float], n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for segment, rate in rates.items():
        for i in range(n):
            user = f"{segment}-{i}"
            ts = pd.Timestamp("2026-03-02 10:00", tz="UTC") + pd.Timedelta(
                hours=int(rng.integers(0, 600))
            )
            rows.append((user, ts, "view", segment))
            if rng.random() < rate:
                rows.append((user, ts + pd.Timedelta(minutes=5), "buy", segment))
    return pd.DataFrame(rows, columns=["user_id", "timestamp", "event", "platform"]).assign(
        value=10.0
    )


@settings(max_examples=15, deadline=None)
@given(
    rates=st.dictionaries(
        st.sampled_from(["web", "ios", "android", "kiosk"]),
        st.floats(0.05, 0.95),
        min_size=2,
        max_size=4,
    ),
    seed=st.integers(0, 10_000),
)
def test_counted_money_is_at_most_one_lead_per_segment_on_any_log(rates, seed):
    events = _log(rates, 60, seed)
    stages = StageMap.from_dict(
        {"stages": [{"name": "browse", "events": ["view"]}, {"name": "buy", "events": ["buy"]}]}
    )
    result = find(
        events,
        stages,
        month="2026-03",
        conversion="buy",
        funnel=["view", "buy"],
        segments=["platform"],
        timing=False,
        min_users=20,
    )
    frame = result.to_frame()
    assert not frame.loc[frame["counted"]].duplicated(["dimension", "segment"]).any()
    assert (frame["value_at_stake"] >= frame["value_at_stake_ci_low"] - 1e-9).all()
    assert (frame["value_at_stake_ci_high"] >= frame["value_at_stake"] - 1e-9).all()
    assert (frame["difference"] < 0).all()
    # the funnel step and the stage step are the same people: one of the two is counted
    assert len(frame) == 0 or frame["counted"].sum() * 2 == len(frame)


def test_arrow_timestamps_and_odd_segment_names_give_the_same_findings(sample):
    """Times stored by Arrow (read_parquet(dtype_backend="pyarrow")) and a segment column with
    an unusual name search exactly as the plain log does."""
    import pyarrow as pa

    small = sample.events.loc[
        sample.events["user_id"].isin(sample.events["user_id"].unique()[:3000])
    ]
    odd = "\x00month users"  # once the name of an internal cache entry
    events = small.assign(**{odd: small["device"]})
    options = dict(
        month="2026-10", conversion="booking_completed", funnel=FUNNEL, min_users=5, timing=False
    )
    plain = find(events, sample_stage_map(), segments=["device", odd], **options).table
    arrow = events.astype({"timestamp": pd.ArrowDtype(pa.timestamp("ns", tz="UTC"))})
    again = find(arrow, sample_stage_map(), segments=["device", odd], **options).table
    pd.testing.assert_frame_equal(plain, again)
    by_name = plain.loc[plain["dimension"] == odd, ["step", "segment", "reached", "value"]]
    by_device = plain.loc[plain["dimension"] == "device", ["step", "segment", "reached", "value"]]
    assert by_name.values.tolist() == by_device.values.tolist()


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["u1", "u2", "u3", "u10"]),
            st.integers(0, 4),  # few distinct times: many ties
            st.sampled_from(["a", "b", "c"]),
            st.sampled_from(["x", "y", None]),
        ),
        min_size=1,
        max_size=40,
    )
)
@settings(max_examples=150, deadline=None)
def test_entry_rows_by_codes_are_the_pandas_definition(rows):
    from journeylab.maps.finding_steps import (
        _downstream_share,
        _entry_rows,
        _progress,
        _segments_at_entry,
        _Step,
    )

    frame = pd.DataFrame(rows, columns=["user_id", "minute", "event", "device"])
    frame["timestamp"] = pd.Timestamp("2026-10-01", tz="UTC") + pd.to_timedelta(
        frame.pop("minute"), unit="min"
    )
    step = _Step("a → b", "funnel", ("a",), ("b",), "a", "b")
    coded = frame.astype({"user_id": "str", "event": "category", "device": "str"})
    plain = frame.astype({"user_id": object})  # Python-object ids: the row-by-row definition
    progress = _progress(plain, step)
    assume(not progress.empty)  # the search skips a step nobody reached
    by_code = _progress(coded, step, codes=True)
    assert by_code["user_code"].notna().all()
    assert sorted(by_code.index) == sorted(progress.index)
    want, want_at = _entry_rows(plain, step, progress)
    for users in (progress, by_code):  # ids looked up as text, or found by their numbers
        got, got_at = _entry_rows(coded, step, users)
        # each step user's position points at the user's own entry row
        assert all(got.index[i] == u for u, i in zip(users.index, got_at, strict=True) if i >= 0)
        assert {u for u, i in zip(users.index, got_at, strict=True) if i >= 0} == {
            u for u, i in zip(progress.index, want_at, strict=True) if i >= 0
        }
        got = got.sort_index()
        want = want.sort_index()
        assert got.index.tolist() == want.index.tolist()
        assert got["timestamp"].tolist() == want["timestamp"].tolist()
        assert got["device"].astype(object).where(got["device"].notna(), None).tolist() == (
            want["device"].astype(object).where(want["device"].notna(), None).tolist()
        )
    # each step user's segment, found by number, is the one found by looking the ids up
    segments = {}
    for users in (progress, by_code):
        entry, at_entry = _entry_rows(coded, step, users)
        found = _segments_at_entry(
            coded, entry, ["device"], None, cache={}, progress=users, at_entry=at_entry
        )["device"]
        segments[len(segments)] = found.astype(object).where(found.notna(), None).sort_index()
    assert segments[0].to_dict() == segments[1].to_dict()
    # the share of the step's users who convert: by the users' numbers as by their ids
    for conversions in (("c",), ("b", "c"), ("x",)):
        share = _downstream_share(coded, step, conversions)
        assert share == _downstream_share(plain, step, conversions)
        made = set(plain.loc[plain["event"] == "b", "user_id"])
        converted = set(plain.loc[plain["event"].isin(conversions), "user_id"])
        assert share == (
            1.0 if "b" in conversions else len(made & converted) / len(made) if made else 0.0
        )
