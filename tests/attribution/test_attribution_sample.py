"""Attribution on the seeded sample: the planted channel effects are recovered in order."""

from __future__ import annotations

import pytest

from journeylab.attribution import attribute

pytest.importorskip(
    "journeylab.datasets.sample", reason="journeylab.datasets.sample is not available yet"
)
journeys = pytest.importorskip(
    "journeylab.journeys.build", reason="journeylab.journeys.build is not available"
)


@pytest.fixture(scope="module")
def sample_result(sample):
    paths = journeys.path_table(
        sample.events, stage_map=sample.stage_map, conversion="booking_completed"
    )
    return attribute(
        paths, ["last_touch", "linear", "markov", "shapley"], n_boot=100, seed=1, spend=sample.spend
    ), sample.truth


@pytest.mark.parametrize("model", ["markov", "shapley"])
def test_planted_channel_rank_recovered(sample_result, model):
    res, truth = sample_result
    rank = truth["channel_rank"]
    credit = res.credit[model].reindex(rank)
    assert credit.notna().all()
    assert credit.sort_values(ascending=False, kind="stable").index.tolist() == rank


def test_markov_ranking_is_settled_by_the_bootstrap(sample_result):
    res, truth = sample_result
    pairs = res.indistinguishable("markov")
    rank = truth["channel_rank"]
    adjacent = set(zip(rank, rank[1:], strict=False))
    assert not adjacent & set(zip(pairs["higher"], pairs["lower"], strict=True))


def test_last_touch_misses_the_planted_order(sample_result):
    # Offline phone calls close most journeys, so last touch puts 'phone' first and
    # under-credits paid search, which mostly opens them.
    res, truth = sample_result
    assert res.credit["last_touch"].idxmax() == "phone"
    order = res.credit["last_touch"].reindex(truth["channel_rank"]).sort_values(ascending=False)
    assert order.index.tolist() != truth["channel_rank"]


def test_sample_economics_present_for_paid_channels(sample_result):
    res, _ = sample_result
    e = res.economics
    assert set(e["channel"]) == {"display", "email", "paid_search", "sms", "social"}
    assert (e["cpa"] > 0).all() and (e["roas"] > 0).all()


def test_journeys_object_with_time_decay(small_sample):
    built = journeys.build_journeys(
        small_sample.events, stage_map=small_sample.stage_map, conversion="booking_completed"
    )
    res = attribute(built, ["last_touch", "time_decay", "markov"], value=True, n_boot=20)
    f = res.to_frame()
    closed = built.journeys[~built.journeys["censored"].astype(bool)]
    total_value = closed.loc[closed["converted"].astype(bool), "value"].sum()
    for model in ("last_touch", "time_decay", "markov"):
        assert f[model].sum() == pytest.approx(total_value, rel=1e-9)
    assert (f["time_decay_ci_low"] <= f["time_decay"] + 1e-9).all()
