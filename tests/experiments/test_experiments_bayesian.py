"""Exact beta-binomial readout (AB-8) and the normal model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from scipy import integrate, stats

from journeylab.core.errors import ParameterError
from journeylab.experiments import (
    bayes_normal,
    bayes_proportions,
    beta_expected_loss,
    prob_beta_greater,
)

REF = json.loads(
    (Path(__file__).parents[1] / "results" / "experiments_reference.json").read_text()
)["AB-8"]


@pytest.mark.parametrize("case", REF["cases"], ids=lambda c: f"{c['control']}-{c['treatment']}")
def test_prob_to_beat_exact_same_as_R_integrate(case):
    (xa, na), (xb, nb) = case["control"], case["treatment"]
    b = bayes_proportions(xa, na, xb, nb)
    assert b.prob_treatment_better == pytest.approx(case["prob"], rel=1e-9)
    assert b.prior == "Beta(1, 1) on each rate"
    assert "closed form" in b.method


def test_closed_form_agrees_with_quadrature_for_fractional_priors():
    value = prob_beta_greater(2.5, 40.5, 6.5, 36.5)
    check, _ = integrate.quad(
        lambda x: stats.beta(2.5, 40.5).pdf(x) * stats.beta(6.5, 36.5).sf(x), 0, 1
    )
    assert value == pytest.approx(check, rel=1e-8)
    # symmetric sums give complementary answers
    assert prob_beta_greater(11, 91, 21, 81) + prob_beta_greater(21, 81, 11, 91) == pytest.approx(
        1.0
    )


def test_expected_loss_closed_form():
    assert beta_expected_loss(1, 1, 1, 1) == pytest.approx(1 / 6)
    # independent check: E[(X - Y)+] = integral of f_Y(y) E[(X - y)+] dy, with
    # E[(X - y)+] = mean_X P(Beta(a + 1, b) > y) - y P(X > y) for X ~ Beta(a, b)
    a, a1, b = stats.beta(11, 91), stats.beta(12, 91), stats.beta(21, 81)
    check, _ = integrate.quad(
        lambda y: b.pdf(y) * (a.mean() * a1.sf(y) - y * a.sf(y)), 0, 1, points=[0.1, 0.2], limit=200
    )
    assert beta_expected_loss(11, 91, 21, 81) == pytest.approx(check, rel=1e-5)
    out = bayes_proportions(10, 100, 20, 100)
    assert out.expected_loss == pytest.approx(check, rel=1e-5)
    assert out.expected_loss_control > out.expected_loss


def test_credible_interval_of_difference():
    out = bayes_proportions(200, 10_000, 250, 10_000)
    a, b = stats.beta(201, 9_801), stats.beta(251, 9_751)

    def cdf(d):
        return integrate.quad(
            lambda x: a.pdf(x) * b.cdf(x + d), 0.01, 0.04, points=[0.02], limit=200
        )[0]

    assert cdf(out.ci_low) == pytest.approx(0.025, abs=1e-6)
    assert cdf(out.ci_high) == pytest.approx(0.975, abs=1e-6)


def test_normal_model_for_means():
    out = bayes_normal(10.0, 0.04, 10.5, 0.05)
    sd = math.sqrt(0.09)
    assert out.prob_treatment_better == pytest.approx(stats.norm.cdf(0.5 / sd))
    assert out.ci_high - 0.5 == pytest.approx(stats.norm.ppf(0.975) * sd)
    assert "flat" in out.prior
    zero = bayes_normal(1.0, 0.0, 2.0, 0.0)
    assert zero.status.startswith("not computable") and math.isnan(zero.prob_treatment_better)


def test_bad_prior_raises():
    with pytest.raises(ParameterError, match="beta parameters must be > 0"):
        bayes_proportions(1, 10, 2, 10, prior=(0, 1))
