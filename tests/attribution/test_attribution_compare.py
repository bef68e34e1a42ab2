"""attribute(): result object, bootstrap intervals, ranking uncertainty, economics, figure."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from journeylab.attribution import attribute, read_path_table
from journeylab.attribution.bootstrap import (
    indistinguishable_pairs,
    rank_probabilities,
    resample_counts,
)
from journeylab.core.errors import DataError, ParameterError
from journeylab.datasets import sample_stage_map

D1 = json.loads((Path(__file__).parents[1] / "results" / "attribution_reference.json").read_text())[
    "D1"
]


def d1() -> pd.DataFrame:
    return pd.DataFrame(D1["table"]).assign(value=lambda f: f["conversions"] * 10.0)


def test_resampling_keeps_journey_total_and_is_unbiased():
    t = read_path_table(d1())
    conv, value, null = resample_counts(t, 4000, seed=5)
    np.testing.assert_allclose((conv + null).sum(axis=1), 82)
    np.testing.assert_allclose(conv.mean(axis=0), t.conversions, atol=0.25)
    np.testing.assert_allclose(value, conv * 10.0)


def test_bootstrap_interval_matches_binomial_standard_error():
    # Single-touch paths: credit of A is Binomial(1000, 0.3) under journey resampling,
    # so the 95 % interval is about 300 +- 1.96 * sqrt(1000 * 0.3 * 0.7) = [271.6, 328.4].
    frame = pd.DataFrame(
        {"path": [("A",), ("B",)], "conversions": [300, 100], "non_conversions": [400, 200]}
    )
    f = attribute(
        frame, ["last_touch", "markov"], n_boot=2000, seed=11, value_column=None
    ).to_frame()
    half = 1.96 * np.sqrt(1000 * 0.3 * 0.7)
    assert f.at["A", "last_touch_ci_low"] == pytest.approx(300 - half, abs=4)
    assert f.at["A", "last_touch_ci_high"] == pytest.approx(300 + half, abs=4)
    # Markov credit of single-touch paths equals last touch.
    assert f.at["A", "markov"] == pytest.approx(300)
    assert f.at["A", "markov_ci_low"] == pytest.approx(f.at["A", "last_touch_ci_low"], abs=6)


def test_to_frame_columns_and_intervals_cover_the_estimate():
    res = attribute(d1(), n_boot=300, seed=2)
    f = res.to_frame()
    models = ["first_touch", "last_touch", "linear", "position", "markov", "shapley"]
    assert list(f.columns[:6]) == models
    for m in models:
        assert (f[f"{m}_ci_low"] <= f[m] + 1e-9).all() and (f[m] <= f[f"{m}_ci_high"] + 1e-9).all()
    assert f.index.name == "channel" and list(f.index) == ["A", "B", "C"]
    v = attribute(d1(), ["linear"], value=True).to_frame()
    assert v.at["A", "linear"] == pytest.approx(126.66666667)


def test_rank_probabilities_and_indistinguishable_pairs():
    rng = np.random.default_rng(0)
    reps = np.column_stack(
        [rng.normal(100, 1, 500), rng.normal(50, 5, 500), rng.normal(50, 5, 500)]
    )
    probs = rank_probabilities(reps, ["a", "b", "c"])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert probs.at["a", 1] == 1.0
    assert 0.35 < probs.at["b", 2] < 0.65
    pairs = indistinguishable_pairs(reps, ["a", "b", "c"], np.array([100, 50.5, 49.5]))
    assert pairs[["higher", "lower"]].values.tolist() == [["b", "c"]]
    assert 0.3 < pairs.at[0, "p_order"] < 0.7


def test_result_rank_probabilities_need_bootstrap():
    res = attribute(d1(), ["markov"])
    with pytest.raises(ParameterError, match="n_boot=200"):
        res.rank_probabilities("markov")
    res = attribute(d1(), ["markov"], n_boot=100, seed=1)
    assert res.rank_probabilities("markov").shape == (3, 3)


def test_economics_cpa_roas_and_reallocation():
    spend = pd.DataFrame(
        {
            "channel": ["A", "A", "B", "C", "D"],
            "date": pd.to_datetime(["2026-01-01", "2026-01-02"] + ["2026-01-01"] * 3),
            "cost": [100.0, 120.0, 50.0, 300.0, 40.0],
        }
    )
    res = attribute(d1(), ["first_touch", "linear"], spend=spend)
    e = res.economics.set_index(["model", "channel"])
    assert e.at[("first_touch", "A"), "cpa"] == pytest.approx(220 / 22)
    assert e.at[("linear", "B"), "roas"] == pytest.approx(10.666667 * 10 / 50, rel=1e-6)
    assert e.at[("linear", "C"), "conversions_per_1000"] == pytest.approx(
        9.666667 / 300 * 1000, rel=1e-6
    )
    # D has spend but no journeys: listed with 0 credit, no CPA.
    assert res.to_frame().loc["D"].eq(0).all() and np.isnan(e.at[("linear", "D"), "cpa"])
    re = res.reallocation().set_index("model")
    assert re.at["first_touch", "grow"] == "B" and re.at["first_touch", "trim"] == "D"
    text = res.summary()
    assert "constant returns at the margin" in text
    assert "money moved from D to B earns most" in text
    with pytest.raises(DataError, match="negative costs"):
        attribute(d1(), ["linear"], spend=spend.assign(cost=-1.0))


def test_amounts_use_the_currency_given_and_no_sign_without_one():
    spend = pd.DataFrame(
        {"channel": ["A", "B"], "date": pd.to_datetime(["2026-01-01"] * 2), "cost": [100.0, 50.0]}
    )
    plain = attribute(d1(), ["linear"], spend=spend, value=True, n_boot=20)
    euro = attribute(d1(), ["linear"], spend=spend, value=True, n_boot=20, currency="€")
    pound = attribute(d1(), ["linear"], spend=spend, currency="GBP")
    franc = attribute(d1(), ["linear"], spend=spend, currency="CHF")
    for text in (plain.summary(), plain.display_frame().to_string(), plain._repr_html_()):
        assert "$" not in text
    assert "(value 330)" in plain.summary()
    assert "(value €330)" in euro.summary() and "$" not in euro.summary()
    assert euro.display_frame()["linear"].str.startswith("€").all()
    assert "conversions per £1,000 of spend" in pound.summary()
    assert "conversions per CHF 1,000 of spend" in franc.summary()
    # The currency changes words only, never numbers.
    pd.testing.assert_frame_equal(plain.to_frame(), euro.to_frame())


def test_summary_explains_markov_credit_for_null_only_channel():
    frame = pd.DataFrame(
        {
            "path": [("X", "B"), ("B",), ("A",)],
            "conversions": [0, 5, 5],
            "non_conversions": [10, 5, 5],
        }
    )
    res = attribute(frame, ["linear", "markov", "shapley"], value_column=None)
    f = res.to_frame()
    assert f.at["X", "markov"] > 0 and f.at["X", "linear"] == 0 and f.at["X", "shapley"] == 0
    text = res.summary()
    assert "X appears only in non-converting journeys: Markov gives it" in text
    assert "Shapley and the rule-based models give it 0" in text


def test_summary_states_agreement_disagreement_and_uncertainty():
    text = attribute(d1(), n_boot=200, seed=3).summary()
    assert text.startswith("82 journeys over 8 distinct paths and 3 channels: 33 conversions")
    assert "first touch → A; last touch → C" in text
    assert "C: 51.5% of conversions under last touch vs 12.1% under first touch" in text
    assert "closes journeys more often than it opens them" in text
    assert "Markov credit with 95% bootstrap intervals (200 replicates, seed 3)" in text
    assert "Markov: order not distinguishable for A vs B" in text
    assert "removing the transition A > B loses 29.8%" in text


def test_transitions_table_ranked():
    res = attribute(d1(), ["markov"], top_transitions=2)
    assert res.transitions["transition"].tolist() == ["A > B", "B > C"]
    assert res.transitions["removal_effect"].iloc[0] == pytest.approx(0.297982, abs=1e-6)


def test_plot_grouped_bars_with_error_bars(tmp_path):
    res = attribute(d1(), n_boot=100, seed=1)
    ax = res.plot()
    assert len(ax.patches) == 3 * 6
    assert ax.get_ylabel() == "credited conversions"
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["first touch", "last touch"]
    from matplotlib.container import BarContainer, ErrorbarContainer

    assert sum(isinstance(c, BarContainer) for c in ax.containers) == 6
    assert sum(isinstance(c, ErrorbarContainer) for c in ax.containers) == 6
    ax.figure.savefig(tmp_path / "attribution.png")
    assert res.figure_ is ax.figure
    plt.close(ax.figure)


def test_html_has_summary_and_table():
    html = attribute(d1(), ["linear", "markov"], n_boot=50)._repr_html_()
    assert "<h4>Attribution</h4>" in html and "jl-table" in html
    assert "12.7 [" in html  # linear credit of A with its interval


def test_time_decay_bootstrap_from_touches():
    rng = np.random.default_rng(1)
    n = 200
    jid = np.repeat(np.arange(n), 2)
    ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 20, 2 * n), "D")
    touches = pd.DataFrame(
        {
            "journey_id": jid,
            "timestamp": ts,
            "channel": rng.choice(["A", "B"], 2 * n),
            "converted": np.repeat(rng.random(n) < 0.4, 2),
            "value": 10.0,
        }
    )
    touches["conversion_time"] = touches.groupby("journey_id")["timestamp"].transform("max")
    res = attribute(touches, ["time_decay", "linear"], n_boot=100, seed=0)
    f = res.to_frame()
    total = touches.groupby("journey_id")["converted"].first().sum()
    assert f["time_decay"].sum() == pytest.approx(total)
    assert (f["time_decay_ci_low"] < f["time_decay"]).all()
    assert (f["time_decay"] < f["time_decay_ci_high"]).all()


def test_response_curve_recovers_planted_elasticity_and_feeds_marginal_returns():
    from journeylab.attribution.economics import response_curves

    days = pd.date_range("2026-01-01", periods=60, tz="UTC")
    rng = np.random.default_rng(3)
    cost = np.exp(rng.normal(3, 0.5, 60))
    n = np.round(5 * cost**0.6).astype(int)  # planted elasticity 0.6
    jid = np.arange(n.sum())
    touches = pd.DataFrame(
        {
            "journey_id": jid,
            "timestamp": np.repeat(days, n),
            "channel": "A",
            "converted": True,
            "value": 1.0,
        }
    )
    touches["conversion_time"] = touches["timestamp"]
    short = pd.DataFrame({"channel": "B", "date": days[:10], "cost": 5.0})
    spend = pd.concat([pd.DataFrame({"channel": "A", "date": days, "cost": cost}), short])
    curves = response_curves(touches, spend)
    assert curves.at["A", "elasticity"] == pytest.approx(0.6, abs=0.03)
    assert curves.at["A", "ci_low"] < curves.at["A", "elasticity"] < curves.at["A", "ci_high"]
    assert curves.at["B", "status"] == "only 10 days with spend (< 28)"
    res = attribute(touches, ["last_touch"], spend=spend, returns="curve")
    e = res.economics.set_index("channel")
    assert e.at["A", "returns"] == "curve" and e.at["B", "returns"] == "constant"
    b = curves.at["A", "elasticity"]
    assert e.at["A", "conversions_per_1000"] == pytest.approx(1000 * b * n.sum() / cost.sum())
    assert "power response curve" in res.summary()
    with pytest.raises(ParameterError, match="a path table has no dates"):
        attribute(d1(), ["linear"], spend=spend, returns="curve")


# ------------------------------------------------------------------ censoring
def _d1_log() -> pd.DataFrame:
    """Events whose journeys are table D1; every non-converting journey is still open.

    Each D1 row becomes users who touch the row's channels an hour apart, then book
    (converting) or stop (non-converting). The log spans three days, far less than
    the 30-day lookback, so no non-converting journey has ended by the period end.
    """
    rows, user = [], 0
    start = pd.Timestamp("2026-06-01", tz="UTC")
    for path, conv, null in zip(
        D1["table"]["path"], D1["table"]["conversions"], D1["table"]["non_conversions"], strict=True
    ):
        steps = [c.strip() for c in path.split(">")]
        for converts in [True] * conv + [False] * null:
            user += 1
            t0 = start + pd.Timedelta(minutes=user)
            for k, channel in enumerate(steps):
                rows.append((f"u{user}", t0 + pd.Timedelta(hours=k), "site_visit", channel, np.nan))
            if converts:
                rows.append(
                    (
                        f"u{user}",
                        t0 + pd.Timedelta(hours=len(steps)),
                        "booking_completed",
                        None,
                        100.0,
                    )
                )
    return pd.DataFrame(rows, columns=["user_id", "timestamp", "event", "channel", "value"])


MODELS6 = ["first_touch", "last_touch", "linear", "position", "markov", "shapley"]


def test_censoring_that_leaves_no_non_converting_journey_makes_markov_and_shapley_not_identifiable():
    from journeylab.journeys.build import build_journeys, path_table

    log = _d1_log()
    paths = path_table(
        log, stage_map=sample_stage_map(), conversion="booking_completed"
    )  # the API default: open journeys are left out
    c = paths.attrs["censoring"]
    assert (c["open_journeys"], c["left_out"]) == (D1["total_non_conversions"], 49)
    assert paths["non_conversions"].sum() == 0 and paths["conversions"].sum() == 33
    assert c["identifiable"] is False and c["rule"] == "left out"
    assert "49 journeys were still open at the period end" in c["message"]
    assert "That leaves no non-converting journeys" in c["message"]
    res = attribute(paths, MODELS6, n_boot=20)
    for model in ("markov", "shapley"):
        assert res.status[model].startswith("not identifiable: 49 journeys still open")
    assert res.to_frame()[["markov", "shapley"]].isna().all().all()
    assert res.to_frame().attrs["status"] == res.status
    assert res.chain is None and res.transitions is None
    # rule-based models still report, on the converting journeys
    assert res.to_frame()["first_touch"].to_dict() == pytest.approx(D1["first_touch"])
    assert res.to_frame()["last_touch"].to_dict() == pytest.approx(D1["last_touch"])
    text = res.summary()
    assert "49 journeys were still open at the period end" in text
    assert "are left out (censored)" in text
    assert "Markov and Shapley are not identifiable: 49 journeys still open" in text
    assert (res.display_frame()["Markov"] == "not identifiable").all()
    with pytest.raises(ParameterError, match="'markov' gives no credit here: not identifiable"):
        res.rank_probabilities("markov")
    res.plot().figure.savefig("/tmp/attribution_not_identifiable.png", bbox_inches="tight")
    plt.close("all")
    # Journeys in, same rule and the same verdict
    assert (
        attribute(
            build_journeys(log, stage_map=sample_stage_map(), conversion="booking_completed"),
            MODELS6,
        ).status
        == res.status
    )
    # Counting open journeys as not converted gives back table D1 and its Markov credit
    counted = path_table(
        log, include_censored=True, stage_map=sample_stage_map(), conversion="booking_completed"
    )
    assert counted.attrs["censoring"]["left_out"] == 0
    assert counted.attrs["censoring"]["identifiable"] is True
    full = attribute(counted, MODELS6)
    assert set(full.status.values()) == {"ok"}
    ref = D1["markov_order1"]["credit"]
    assert full.to_frame()["markov"].to_dict() == pytest.approx(ref, rel=1e-6)
    assert full.to_frame()["shapley"].to_dict() == pytest.approx(D1["shapley"], rel=1e-6)
    assert "they count as not (yet) converted (include_censored=True)" in full.summary()


def test_a_table_without_censoring_record_and_without_non_conversions_is_credited_with_a_caution():
    # e.g. a ChannelAttribution table without a null column: Markov runs, the summary warns
    table = d1().drop(columns="non_conversions")
    res = attribute(table, ["linear", "markov"], non_conversions=None)
    assert res.status == {"linear": "ok", "markov": "ok"} and res.censoring is None
    assert res.to_frame()["markov"].sum() == pytest.approx(33)
    assert "The table has no non-converting journeys: Markov and Shapley credit then only" in (
        res.summary()
    )
