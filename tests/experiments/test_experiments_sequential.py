"""Always-valid sequential monitoring and the A/A peeking simulation (AB-11)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeylab.experiments import msprt, sequential_test, simulate_aa

REF = json.loads(
    (Path(__file__).parents[1] / "results" / "experiments_reference.json").read_text()
)["AB-11"]


def test_aa_simulation_naive_peeking_inflates_sequential_holds_alpha():
    sim = simulate_aa(
        10_000, looks=20, users_per_look=500, rate=0.10, alpha=REF["alpha"], seed=2026
    )
    lo, hi = REF["naive_range"]
    assert lo <= sim.naive_false_positive_rate <= hi
    assert sim.sequential_false_positive_rate <= REF["alpha"] + 3 * sim.monte_carlo_se
    assert sim.fixed_horizon_false_positive_rate == pytest.approx(0.05, abs=3 * sim.monte_carlo_se)
    by_look = sim.to_frame()
    assert (
        by_look["naive"].is_monotonic_increasing and by_look["sequential"].is_monotonic_increasing
    )
    assert "10,000 A/A experiments (seed 2026), 20 looks" in sim.summary()
    ax = sim.plot()
    ax.figure.savefig("/tmp/exp_aa_simulation.png", bbox_inches="tight")


def test_msprt_formula_single_look():
    diff, var, tau2, alpha = 0.3, 0.01, 0.04, 0.05
    p, lo, hi = msprt([diff], [var], tau2=tau2, alpha=alpha)
    lam = math.sqrt(var / (var + tau2)) * math.exp(tau2 * diff**2 / (2 * var * (var + tau2)))
    assert p[0] == pytest.approx(1 / lam)
    half = math.sqrt(
        var * (var + tau2) / tau2 * (math.log((var + tau2) / var) - 2 * math.log(alpha))
    )
    assert [lo[0], hi[0]] == pytest.approx([diff - half, diff + half])


def test_confidence_sequence_and_p_value_are_dual():
    rng = np.random.default_rng(8)
    diff = np.cumsum(rng.normal(0, 0.05, (500, 15)), axis=1) / np.arange(1, 16)
    var = 0.0025 / np.arange(1, 16) * np.ones((500, 1))
    p, lo, hi = msprt(diff, var, tau2=0.01, alpha=0.05)
    excludes_zero = (lo > 0) | (hi < 0)
    assert np.array_equal(excludes_zero, p < 0.05)
    assert (np.diff(p, axis=1) <= 0).all() and (np.diff(hi - lo, axis=1) <= 1e-15).all()


def _running_test(effect: float, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 6_000
    arm = rng.choice(["control", "short_form"], n)
    day = pd.Timestamp("2026-05-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 20, n), "D")
    booked = rng.random(n) < np.where(arm == "short_form", 0.20 + effect, 0.20)
    return pd.DataFrame({"variant": arm, "assigned_at": day, "booked": booked.astype(int)})


def test_sequential_test_detects_a_real_lift_and_stays_wider_than_naive():
    res = sequential_test(_running_test(0.06), "booked")
    looks = res.to_frame()
    assert len(looks) == 20
    last = looks.iloc[-1]
    assert last["always_valid_p"] < 0.05
    assert last["cs_low"] <= 0.06 <= last["cs_high"]
    assert (
        looks["cs_high"] - looks["cs_low"] >= looks["naive_ci_high"] - looks["naive_ci_low"]
    ).all()
    assert last["n_control"] + last["n_treatment"] == 6_000
    text = res.summary()
    assert "always-valid p-value fell below 0.05 at look" in text
    ax = res.plot()
    ax.figure.savefig("/tmp/exp_sequential.png", bbox_inches="tight")


def test_sequential_test_without_effect_and_fixed_mixture():
    res = sequential_test(_running_test(0.0, seed=9), "booked", mixture_sd=0.02)
    assert res.tau2 == pytest.approx(0.0004)
    assert res.to_frame()["always_valid_p"].iloc[-1] > 0.05
    assert "has not fallen below 0.05" in res.summary()


def test_sequential_display_reads_rates_dates_and_formatted_p_values():
    res = sequential_test(_running_test(0.06), "booked")
    shown = res.display_frame()
    assert list(shown.columns) == [
        "look",
        "period starting",
        "users (control)",
        "users (short_form)",
        "booked: control",
        "booked: short_form",
        "lift",
        "95% confidence sequence",
        "always-valid p",
        "naive p (invalid when peeking)",
    ]
    first, last = res.looks.iloc[0], res.looks.iloc[-1]
    assert shown["period starting"].iloc[0] == "2026-05-01"  # daily looks: a date, no 00:00:00
    assert shown["booked: control"].iloc[-1] == f"{last['control_mean'] * 100:.1f}%"
    assert shown["lift"].iloc[-1] == f"{last['abs_lift'] * 100:+.1f} pp"
    assert shown["95% confidence sequence"].iloc[-1] == (
        f"[{last['cs_low'] * 100:+.1f} pp, {last['cs_high'] * 100:+.1f} pp]"
    )
    assert shown["users (control)"].iloc[0] == f"{int(first['n_control']):,}"
    html = res._repr_html_()
    assert "cs_low" not in html and "abs_lift" not in html and "00:00:00" not in html
    # a continuous metric reads as means and a signed difference
    spend = _running_test(0.06).assign(booked=lambda f: f["booked"] * 3.5)
    cont = sequential_test(spend, "booked").display_frame()
    assert cont["booked: control"].iloc[0].replace(".", "").isdigit()
    assert cont["lift"].iloc[0][0] in "+-"
    assert list(res.to_frame().columns)[:3] == ["time", "n_control", "n_treatment"]
