"""Tests of journeylab.core.model_checks: the status rules on hand-made likelihoods, and not-computable results."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeylab.core.errors import DataError, ModelWarning, NotComputableError
from journeylab.core.model_checks import (
    BOUNDARY_DROP,
    Direction,
    NotComputableResult,
    computable_or_reason,
    diagnose_likelihood,
    single_directions,
)

NAMES = ("a", "b")


def quadratic(center, curvature):
    """log-likelihood -1/2 sum c_j (theta_j - m_j)^2, its information diag(c)."""
    center, curvature = np.asarray(center, float), np.asarray(curvature, float)

    def loglik(theta):
        return float(-0.5 * np.sum(curvature * (np.asarray(theta) - center) ** 2))

    return loglik, np.diag(curvature)


def diagnose(loglik, theta, information, gradient=0.0, directions=None):
    return diagnose_likelihood(
        loglik,
        np.asarray(theta, float),
        NAMES,
        log_information=information,
        gradient=gradient,
        directions=directions or single_directions(NAMES),
    )


def test_a_well_determined_maximum_is_ok():
    loglik, info = quadratic([1.0, -2.0], [50.0, 80.0])
    d = diagnose(loglik, [1.0, -2.0], info)
    assert d.status == "ok" and d.warnings == [] and d.suspect == frozenset()
    assert d.headline().startswith("Status: ok")
    assert d.withhold("anything", NAMES) is None


def test_a_likelihood_flat_toward_zero_is_a_boundary():
    # b only matters through exp(b): as b -> -inf (the parameter -> 0) nothing changes
    def loglik(theta):
        return float(-25 * (theta[0] - 1) ** 2 - 0.01 * np.exp(theta[1]))

    theta = [1.0, -3.0]  # 10 log units up costs 0.01 e^7 = 11; down, almost nothing
    info = np.diag([50.0, 0.01 * np.exp(-3.0)])
    d = diagnose(loglik, theta, info)
    assert d.status == "boundary"
    assert d.boundary == ("b → 0",)
    assert "b" in d.suspect and "a" not in d.suspect
    assert d.headline().startswith("Status: boundary. NOT TO BE TRUSTED AS IS: b → 0")
    reason = d.withhold("rate", ["b"], "the rate parameter is at its boundary")
    assert reason == "not shown: the rate parameter is at its boundary"
    assert d.reason("rate") == reason and d.withhold("level", ["a"]) is None


def test_flat_both_ways_is_not_identified_and_a_composite_edge_is_reported():
    # only a - b matters (a ratio on the natural scale): each alone is flat both ways,
    # and a -> 0 with b -> infinity is where the fit stays as good
    def loglik(theta):
        return float(-np.log1p(np.exp(theta[0] - theta[1])))

    directions = [
        *single_directions(NAMES),
        Direction("a → 0, b → ∞", (-1.0, 1.0), ("a", "b"), "the rate goes to zero"),
    ]
    info = np.full((2, 2), np.nan)
    d = diagnose(loglik, [-12.0, 3.0], info, directions=directions)
    assert d.status == "boundary" and d.boundary == ("a → 0, b → ∞",)
    assert d.unidentified == ("a", "b")
    assert any("not identified by the data: the likelihood is flat" in w for w in d.warnings)


def test_an_identified_ratio_at_infinity_is_a_boundary_that_withholds_nothing():
    # only a - b matters and its best value is 1: a and b can run to infinity together
    def loglik(theta):
        return float(-50 * (theta[0] - theta[1] - 1) ** 2)

    directions = [
        *single_directions(NAMES),
        Direction("a, b → ∞", (1.0, 1.0), (), "no heterogeneity"),
    ]
    info = 100 * np.array([[1.0, -1.0], [-1.0, 1.0]])  # singular along (1, 1) only
    d = diagnose(loglik, [20.0, 19.0], info, directions=directions)
    assert d.status == "boundary" and d.boundary == ("a, b → ∞",)
    assert d.unidentified == () and d.suspect == frozenset()
    assert d.withhold("ratio", NAMES) is None
    assert "a and b together (their ratio fixed)" in d.warnings[0]


def test_the_edge_probe_keeps_a_ratio_inside_the_optimisers_box():
    # at 28 on the log scale only 2 log units are left before the bound of 30: the probe
    # moves both by 2, keeping a - b, rather than clipping one and changing the ratio
    def loglik(theta):
        return float(-50 * (theta[0] - theta[1] - 1) ** 2)

    directions = [Direction("a, b → ∞", (1.0, 1.0), (), "")]
    info = 100 * np.array([[1.0, -1.0], [-1.0, 1.0]])
    d = diagnose_likelihood(
        loglik,
        np.array([29.0, 28.0]),
        NAMES,
        log_information=info,
        gradient=0.0,
        directions=directions,
        log_bound=30.0,
    )
    assert d.boundary == ("a, b → ∞",)


def test_singular_information_is_not_identified():
    loglik, _ = quadratic([0.0, 0.0], [10.0, 10.0])
    info = np.array([[10.0, 10.0], [10.0, 10.0]])  # only a + b is determined
    d = diagnose(loglik, [0.0, 0.0], info)
    assert d.status == "not_identified" and set(d.unidentified) == {"a", "b"}
    assert "singular or nearly so" in d.warnings[0]


def test_a_large_gradient_is_not_converged_and_emits_a_model_warning():
    loglik, info = quadratic([0.0, 0.0], [10.0, 10.0])
    d = diagnose(loglik, [0.0, 0.0], info, gradient=0.3)
    assert d.status == "not_converged"
    with pytest.warns(ModelWarning, match="status 'not_converged'. the optimiser stopped"):
        d.emit("Toy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diagnose(loglik, [0.0, 0.0], info).emit("Toy")  # ok: silent


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-8, 8), min_size=2, max_size=2),
    st.lists(st.floats(1.0, 1e4), min_size=2, max_size=2),
)
def test_any_well_curved_interior_maximum_is_ok(center, curvature):
    # log-scale SE <= 1 and a drop of >= 50 after 10 log units: never a boundary
    loglik, info = quadratic(center, curvature)
    assert diagnose(loglik, center, info).status == "ok"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-8, 8), min_size=2, max_size=2), st.floats(1.0, 1e4), st.integers(0, 1))
def test_a_parameter_the_likelihood_ignores_is_always_flagged(center, curvature, free):
    curv = [curvature, curvature]
    curv[free] = 0.0
    loglik, info = quadratic(center, curv)
    d = diagnose(loglik, center, info)
    assert d.status == "not_identified" and d.unidentified == (NAMES[free],)
    assert BOUNDARY_DROP > 0 and NAMES[free] in d.suspect


def test_computable_or_reason_turns_only_not_computable_into_a_result():
    def impossible():
        raise NotComputableError("Every training row has converted = 0; nothing to learn.")

    res = computable_or_reason(impossible, title="Propensity model")
    assert isinstance(res, NotComputableResult) and res.status == "not_computable"
    assert (
        res.summary() == "Not computable: Every training row has converted = 0; nothing to learn."
    )
    assert "Not computable:" in res._repr_html_() and "Propensity model" in res._repr_html_()
    assert res.to_frame().attrs["reason"].startswith("Every training row")
    assert computable_or_reason(lambda x: x + 1, 1) == 2

    def bad_data():
        raise DataError("3 customer(s) have negative frequency.", column="frequency")

    with pytest.raises(DataError, match="negative frequency"):
        computable_or_reason(bad_data)
    with pytest.raises(ZeroDivisionError):
        computable_or_reason(lambda: 1 / 0)
