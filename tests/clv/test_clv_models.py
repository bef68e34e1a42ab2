"""Tests of journeylab.clv.alternatives (MBG/NBD, Pareto/NBD) against published CDNOW values and lifetimes."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from journeylab.clv.alternatives import ModifiedBetaGeo, ParetoNBD
from journeylab.clv.likelihoods import (
    Z_QUADRATURE,
    _log_a0_hyp2f1,
    _log_a0_quadrature,
    mbgnbd_loglik,
    pareto_nbd_log_a0,
    pareto_nbd_loglik,
    with_numeric_gradient,
)
from journeylab.clv.models import customer_lifetime_value
from journeylab.core.errors import DataError, ModelWarning, NotComputableError
from test_clv import SIMULATED, lifetimes_dataset

REFERENCE = json.loads((Path(__file__).parents[1] / "results" / "clv_reference.json").read_text())
LIFETIMES = REFERENCE["cdnow_lifetimes_models"]


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(lifetimes_dataset("cdnow_customers_summary.csv"), index_col=0)


@pytest.fixture(scope="module")
def pareto(cdnow) -> ParetoNBD:
    return ParetoNBD().fit(cdnow, freq="W")


@pytest.fixture(scope="module")
def mbg(cdnow) -> ModifiedBetaGeo:
    return ModifiedBetaGeo().fit(cdnow, freq="W")


# --------------------------------------------------------------------------- Pareto/NBD
def test_pareto_nbd_close_to_Fader_Hardie_Lee_2005_cdnow(cdnow, pareto):
    published = REFERENCE["cdnow_published"]["pareto_nbd"]["params"]
    assert len(cdnow) == 2357
    for name, value in published.items():
        assert abs(pareto.params_[name] - value) <= 0.005, name
    assert pareto.status == "ok" and pareto.warnings == []
    assert pareto.summary().startswith("Status: ok")
    assert np.all(np.isfinite(pareto.standard_errors_))


def test_pareto_nbd_cdnow_same_as_lifetimes(cdnow, pareto):
    ref = LIFETIMES["pareto_nbd"]
    # lifetimes stops Nelder-Mead at its default tolerance: agreement to ~1e-4
    pd.testing.assert_series_equal(pareto.params_, pd.Series(ref["params"]), rtol=1e-3)
    assert pareto.log_likelihood_ >= ref["log_likelihood"] - 1e-6  # ours is the (higher) maximum
    assert pareto.log_likelihood_ == pytest.approx(ref["log_likelihood"], abs=1e-3)
    for cid, row in ref["customers"].items():
        x, t_x, T = cdnow.loc[int(cid), ["frequency", "recency", "T"]]
        assert pareto.conditional_probability_alive(x, t_x, T) == pytest.approx(
            row["p_alive"], rel=1e-3
        )
        assert pareto.conditional_expected_number_of_purchases_up_to_time(
            39, x, t_x, T
        ) == pytest.approx(row["expected_purchases_39"], rel=1e-3)
    for t, value in ref["expected_purchases_new_customer"].items():
        assert pareto.expected_number_of_purchases_up_to_time(float(t)) == pytest.approx(
            value, rel=1e-3
        )


def test_pareto_nbd_likelihood_same_as_lifetimes_at_fixed_parameters(cdnow):
    x, t_x, T = (cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    for point in LIFETIMES["loglik_at_fixed_params"]["pareto_nbd"]:
        ours = pareto_nbd_loglik(np.log(point["params"]), x, t_x, T, np.ones_like(x))
        assert ours == pytest.approx(point["loglik"], rel=1e-11), point["params"]
    for point in LIFETIMES["loglik_at_fixed_params"]["mbgnbd"]:
        ours, _ = mbgnbd_loglik(np.log(point["params"]), x, t_x, T, np.ones_like(x))
        assert ours == pytest.approx(point["loglik"], rel=1e-11), point["params"]


def test_live_pareto_nbd_likelihood_same_as_lifetimes(cdnow):
    try:
        from lifetimes import ParetoNBDFitter
    except Exception as exc:  # lifetimes may not import with this pandas/numpy
        pytest.skip(f"lifetimes does not import here: {exc}")
    x, t_x, T = (cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    rng = np.random.default_rng(4)
    for _ in range(5):
        params = np.exp(rng.uniform([-2, 0, -2, 0], [1, 4, 1, 5]))
        theirs = ParetoNBDFitter._conditional_log_likelihood(params, x, t_x, T).sum()
        assert pareto_nbd_loglik(np.log(params), x, t_x, T, np.ones_like(x)) == pytest.approx(
            theirs, rel=1e-10
        )


def a0_by_adaptive_quadrature(r, alpha, s, beta, x, t_x, T) -> float:
    """ln[(r+s+x) ∫ (α+τ)^-(r+x) (β+τ)^-(s+1) dτ] by scipy's adaptive quadrature (an independent route)."""

    def log_f(tau):
        return -(r + x) * np.log(alpha + tau) - (s + 1) * np.log(beta + tau)

    top = max(log_f(t_x), log_f(T))
    value, _ = quad(lambda tau: np.exp(log_f(tau) - top), t_x, T, epsrel=1e-13, epsabs=0, limit=500)
    return float(np.log((r + s + x) * value) + top)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(-3, 2),
    st.floats(-4, 4),
    st.floats(-6, 2),
    st.floats(-4, 4),
    st.integers(0, 150),
    st.floats(0.0, 0.99),
    st.floats(0.05, 1.0),
)
@example(0.0, 0.0, 0.0, 3.0, 98, 0.0, 1.0)  # scipy's 2F1(100, 99; 101; 0.95) is NaN
@example(0.0, 0.0, 0.0, -2.375, 115, 0.0, 1.0)  # whole s: 2F1(117, 2; 118; 0.91) 1.2e-9 off
@example(0.0, 0.0, 0.0, -2.4140625, 134, 0.125, 0.0625)  # and 2F1(136, 2; 137; 0.91) 1e-8
def test_both_routes_to_the_pareto_nbd_integral_agree(
    log_r, log_alpha, log_s, log_beta, x, share, T
):
    r, alpha, s, beta = np.exp([log_r, log_alpha, log_s, log_beta])
    t_x = 0.0 if x == 0 else share * T
    args = [np.array([float(x)]), np.array([t_x]), np.array([T])]
    histories = dict(zip(("x", "t_x", "T"), args, strict=True))
    quadrature = _log_a0_quadrature(r, alpha, s, beta, **histories)[0]
    reference = a0_by_adaptive_quadrature(r, alpha, s, beta, float(x), t_x, T)
    assert quadrature == pytest.approx(reference, rel=1e-9, abs=1e-9)
    # the likelihood's own choice of route
    assert pareto_nbd_log_a0((r, alpha, s, beta), *args)[0] == pytest.approx(
        reference, rel=1e-9, abs=1e-9
    )
    # where scipy's 2F1 returns a number it is right; it can return NaN for large r + x
    # (2F1(100, 99; 101; 0.95) for one), and then the quadrature takes over. With c - a - b
    # an integer (whole s here, as α >= β at these points) it keeps seven or eight digits near
    # z = 1, and the likelihood takes the quadrature there.
    z = abs(alpha - beta) / (max(alpha, beta) + t_x)
    hyp = _log_a0_hyp2f1(r, alpha, s, beta, **histories)[0]
    whole = float(s if alpha >= beta else r).is_integer()
    if z <= Z_QUADRATURE and np.isfinite(hyp):
        assert hyp == pytest.approx(reference, rel=1e-7 if whole else 1e-9, abs=1e-9)


def test_numeric_gradient_matches_the_analytic_one():
    x, t_x, T = (SIMULATED[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    w = np.ones_like(x)
    theta = np.log([0.5, 8.0, 0.7, 2.5])
    analytic = mbgnbd_loglik(theta, x, t_x, T, w)[1]
    numeric = with_numeric_gradient(lambda th: mbgnbd_loglik(th, x, t_x, T, w)[0])(theta)[1]
    assert numeric == pytest.approx(analytic, rel=1e-6, abs=1e-6)


# --------------------------------------------------------------------------- MBG/NBD
def test_mbgnbd_cdnow_same_as_lifetimes(cdnow, mbg):
    ref = LIFETIMES["mbgnbd"]
    pd.testing.assert_series_equal(mbg.params_, pd.Series(ref["params"]), rtol=1e-3)
    pd.testing.assert_series_equal(
        mbg.standard_errors_, pd.Series(ref["standard_errors"]), rtol=1e-3, check_names=False
    )
    for cid, row in ref["customers"].items():
        x, t_x, T = cdnow.loc[int(cid), ["frequency", "recency", "T"]]
        assert mbg.conditional_probability_alive(x, t_x, T) == pytest.approx(
            row["p_alive"], rel=1e-3
        )
        assert mbg.conditional_expected_number_of_purchases_up_to_time(
            39, x, t_x, T
        ) == pytest.approx(row["expected_purchases_39"], rel=1e-3)
    for t, value in ref["expected_purchases_new_customer"].items():
        assert mbg.expected_number_of_purchases_up_to_time(float(t)) == pytest.approx(
            value, rel=1e-3
        )
    assert mbg.status == "ok"
    text = mbg.summary()
    assert "They drop out at each purchase, the first included with probability" in text


def test_mbgnbd_lets_one_time_buyers_drop_out(mbg):
    # unlike the BG/NBD, a customer with no repeat purchase is not certainly alive
    p = mbg.conditional_probability_alive(
        np.array([0.0, 0.0]), np.array([0.0, 0.0]), np.array([5.0, 38.0])
    )
    assert 0 < p[1] < p[0] < 1


# --------------------------------------------------------------------------- shared behaviour
@pytest.mark.parametrize("model_class", [ModifiedBetaGeo, ParetoNBD])
def test_estimator_shape_errors_and_clv(model_class, cdnow):
    model = model_class()
    assert model.fit_ is None and "not fitted" in repr(model)
    with pytest.raises(NotComputableError, match="not fitted yet"):
        _ = model.params_
    with pytest.raises(DataError, match="recency larger than T"):
        model_class().fit(
            pd.DataFrame({"frequency": [1.0, 2.0], "recency": [9.0, 1.0], "T": [5.0, 6.0]})
        )
    with pytest.raises(NotComputableError, match="No repeat purchases among 2 customers"):
        model_class().fit(
            pd.DataFrame({"frequency": [0.0, 0.0], "recency": [0.0, 0.0], "T": [5.0, 6.0]})
        )
    fitted = model_class().fit(cdnow.head(800), freq="W")
    assert fitted is not None and set(fitted.params_.index) == set(model_class._names)
    summary = cdnow.head(50).assign(monetary_value=20.0)
    clv = customer_lifetime_value(fitted, None, summary, months=6, discount_rate=0.01)
    short = customer_lifetime_value(fitted, None, summary, months=3, discount_rate=0.01)
    assert (clv >= short).all() and (short >= 0).all()
    ax = fitted.plot()
    assert fitted._short in ax.get_title()
    plt.close(ax.figure)


histories = st.lists(
    st.tuples(st.integers(0, 30), st.floats(0, 1), st.floats(0.5, 60)), min_size=1, max_size=30
)


@settings(max_examples=25, deadline=None)
@given(histories)
def test_p_alive_in_unit_interval_and_expectations_grow_with_time(rows):
    x = np.array([r[0] for r in rows], dtype=float)
    T = np.array([r[2] for r in rows])
    t_x = np.where(x > 0, np.array([r[1] for r in rows]) * T, 0.0)
    for model in FITTED:
        p = model.conditional_probability_alive(x, t_x, T)
        assert np.all((p >= 0) & (p <= 1)), model._short
        e1 = model.conditional_expected_number_of_purchases_up_to_time(10.0, x, t_x, T)
        e2 = model.conditional_expected_number_of_purchases_up_to_time(20.0, x, t_x, T)
        assert np.all(e1 >= 0) and np.all(e2 >= e1 - 1e-12), model._short


with warnings.catch_warnings():
    warnings.simplefilter("ignore", ModelWarning)
    # fits independent of the optional CDNOW data, for the property tests
    FITTED = [ModifiedBetaGeo().fit(SIMULATED, freq="W"), ParetoNBD().fit(SIMULATED, freq="W")]
