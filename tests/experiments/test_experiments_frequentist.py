"""Frequentist comparisons against R (AB-1, AB-2, AB-3, AB-7, AB-9)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from journeylab.core.errors import NotComputableError, ParameterError
from journeylab.experiments import (
    adjust_p_values,
    compare_means,
    compare_proportions,
    compare_ratios,
    prop_test,
    relative_lift,
    welch_test,
)

REF = json.loads((Path(__file__).parents[1] / "results" / "experiments_reference.json").read_text())


def test_k_sample_prop_test_same_as_R_prop_test():
    ref = REF["AB-1"]
    chi2, df, p = prop_test(ref["successes"], ref["trials"])
    assert chi2 == pytest.approx(ref["chi2"], rel=1e-6)
    assert df == ref["df"]
    assert p == pytest.approx(ref["p_value"], rel=1e-6)


def test_pooled_z_and_wald_ci_same_as_R_prop_test():
    ref = REF["AB-2"]
    (xc, nc), (xt, nt) = ref["input"]["control"], ref["input"]["treatment"]
    comp = compare_proportions(xc, nc, xt, nt, ci_method="wald")
    # R reports z for A - B; we report treatment - control
    assert comp.statistic == pytest.approx(-ref["z_control_minus_treatment"], rel=1e-6)
    assert comp.p_value == pytest.approx(ref["p_value"], rel=1e-6)
    assert [comp.abs_ci_low, comp.abs_ci_high] == pytest.approx(ref["wald_ci"], rel=1e-6)
    assert comp.abs_lift == pytest.approx(0.005)
    assert "pooled SE" in comp.method and "Wald" in comp.method


def test_newcombe_ci_same_as_statsmodels():
    ref = REF["AB-2"]
    comp = compare_proportions(200, 10_000, 250, 10_000)  # Newcombe is the default
    assert [comp.abs_ci_low, comp.abs_ci_high] == pytest.approx(ref["newcombe_ci"], rel=1e-6)
    assert "Newcombe" in comp.method
    # the p-value is the pooled z-test whatever the interval
    assert comp.p_value == pytest.approx(ref["p_value"], rel=1e-6)


def test_yates_only_when_asked_same_as_R_default():
    ref = REF["AB-2"]
    comp = compare_proportions(200, 10_000, 250, 10_000, yates=True)
    assert comp.statistic**2 == pytest.approx(ref["yates_chi2"], rel=1e-6)
    assert comp.p_value == pytest.approx(ref["yates_p_value"], rel=1e-6)
    assert "Yates" in comp.method
    chi2, _, p = prop_test([200, 250], [10_000, 10_000])  # R's default is corrected
    assert chi2 == pytest.approx(ref["yates_chi2"], rel=1e-6)
    assert p == pytest.approx(ref["yates_p_value"], rel=1e-6)


def test_relative_lift_has_its_own_ci_and_p_value():
    ref = REF["AB-2"]
    comp = compare_proportions(200, 10_000, 250, 10_000)
    assert comp.rel_lift == pytest.approx(ref["rel_lift"])
    assert [comp.rel_ci_low, comp.rel_ci_high] == pytest.approx(ref["rel_ci"], abs=5e-6)
    assert comp.rel_p_value == pytest.approx(ref["rel_p_value"], rel=2e-4)
    # the two estimands give different p-values: 0.033 vs 0.017
    assert comp.rel_p_value > 1.9 * comp.p_value
    se = math.sqrt(0.02 * 0.98 / 9_999 + 0.025 * 0.975 / 9_999)
    assert 2 * stats.norm.sf(0.005 / se) == pytest.approx(ref["abs_unpooled_p_value"], rel=2e-4)


def test_welch_t_same_as_R_t_test_on_sleep():
    ref = REF["AB-3"]
    t, df, p, ci = welch_test(ref["g1"], ref["g2"])
    assert t == pytest.approx(ref["t"], rel=1e-6)
    assert df == pytest.approx(ref["df"], rel=1e-6)
    assert p == pytest.approx(ref["p_value"], rel=1e-6)
    assert list(ci) == pytest.approx(ref["ci"], rel=1e-6)


def test_welch_t_same_as_R_t_test_help_examples():
    ref = REF["AB-3"]
    assert welch_test(range(1, 11), range(7, 21))[2] == pytest.approx(ref["p_value_7_20"], rel=1e-6)
    assert welch_test(range(1, 11), [*range(7, 21), 200])[2] == pytest.approx(
        ref["p_value_7_20_200"], rel=1e-6
    )


def test_compare_means_is_treatment_minus_control():
    ref = REF["AB-3"]
    comp = compare_means(ref["g1"], ref["g2"])
    assert comp.abs_lift == pytest.approx(2.33 - 0.75, abs=1e-12)
    assert comp.statistic == pytest.approx(-ref["t"], rel=1e-6)
    assert comp.rel_lift == pytest.approx(2.33 / 0.75 - 1, rel=1e-12)
    assert "Welch" in comp.method


def test_relative_lift_delta_method_by_hand():
    lift, lo, hi, p = relative_lift(10.0, 0.25, 12.0, 0.36)
    se = math.sqrt(0.36 / 100 + 144 * 0.25 / 10_000)
    assert lift == pytest.approx(0.2)
    assert hi - lift == pytest.approx(stats.norm.ppf(0.975) * se)
    assert p == pytest.approx(2 * stats.norm.sf(0.2 / se))


def test_ratio_metric_delta_method_matches_linearisation():
    rng = np.random.default_rng(3)
    den_c, den_t = rng.poisson(3, 400) + 1, rng.poisson(3, 500) + 1
    num_c, num_t = rng.gamma(2, 5, 400) * den_c, rng.gamma(2, 6, 500) * den_t
    comp = compare_ratios(num_c, den_c, num_t, den_t)
    r_c, r_t = num_c.sum() / den_c.sum(), num_t.sum() / den_t.sum()
    assert comp.abs_lift == pytest.approx(r_t - r_c)
    # delta method = variance of the linearised per-user values (num - R den) / mean(den)
    lin_c = (num_c - r_c * den_c) / den_c.mean()
    lin_t = (num_t - r_t * den_t) / den_t.mean()
    se = math.sqrt(lin_c.var(ddof=1) / 400 + lin_t.var(ddof=1) / 500)
    assert comp.std_error == pytest.approx(se, rel=1e-10)
    assert comp.status == "ok"


def test_multiple_testing_same_as_R_p_adjust():
    ref = REF["AB-7"]
    bh = adjust_p_values(ref["p"], "fdr_bh")
    assert bh[:5] == pytest.approx(ref["bh_first"], rel=1e-6)
    for method, rejections in ref["rejections_at_0.05"].items():
        assert int((adjust_p_values(ref["p"], method) < 0.05).sum()) == rejections
    holm = adjust_p_values(ref["p"], "holm")
    assert holm[:3] == pytest.approx([0.0015, 0.0056, 0.0247], rel=1e-6)  # R p.adjust(p, "holm")
    assert np.isnan(adjust_p_values([0.01, np.nan], "holm")[1])
    assert adjust_p_values([0.01, np.nan], "holm")[0] == pytest.approx(0.01)  # NaN not counted
    with pytest.raises(ParameterError, match="correction == 'hochberg'"):
        adjust_p_values([0.1], "hochberg")


def test_zero_variance_is_not_computable_not_p_zero():
    ref = REF["AB-9"]["zero_variance"]
    comp = compare_means(ref["control"], ref["treatment"])
    assert comp.status.startswith("not computable: zero variance")
    assert math.isnan(comp.p_value) and math.isnan(comp.abs_lift) and math.isnan(comp.abs_ci_low)
    assert comp.control_mean == 1 and comp.treatment_mean == 2  # the data are still described
    with pytest.raises(NotComputableError, match="zero variance"):
        welch_test(ref["treatment"], ref["control"])


def test_zero_conversions_in_control_keeps_difference_refuses_ratio():
    (xc, nc), (xt, nt) = REF["AB-9"]["zero_control"].values()
    comp = compare_proportions(xc, nc, xt, nt)
    assert comp.status.startswith("relative lift not computable")
    assert math.isnan(comp.rel_lift) and math.isnan(comp.rel_ci_low)
    # the difference is computable: pooled z, Newcombe interval that is not [0, 0]
    assert comp.abs_lift == pytest.approx(0.012)
    assert comp.p_value == pytest.approx(stats.chi2.sf(12.0722, 1), rel=1e-3)
    assert comp.abs_ci_low > 0 and comp.abs_ci_high > comp.abs_ci_low


def test_no_conversions_in_either_arm_is_not_computable():
    (xc, nc), (xt, nt) = REF["AB-9"]["zero_both"].values()
    comp = compare_proportions(xc, nc, xt, nt)
    assert comp.status.startswith("not computable: no conversions in either arm (0/100 vs 0/100)")
    assert math.isnan(comp.p_value) and math.isnan(comp.abs_ci_high)


def test_too_few_users_is_not_computable():
    comp = compare_means([1.0], [2.0, 3.0])
    assert comp.status.startswith("not computable: too few users (control 1, treatment 2")
    comp = compare_proportions(1, 5, 2, 5, min_users=10)
    assert "too few users" in comp.status and math.isnan(comp.p_value)


def test_bad_counts_raise():
    with pytest.raises(ParameterError, match="successes must lie between 0"):
        compare_proportions(11, 10, 1, 10)
    with pytest.raises(ParameterError, match="alpha == 1.5, must be < 1"):
        compare_proportions(1, 10, 1, 10, alpha=1.5)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400), st.integers(0, 400), st.integers(1, 400), st.integers(0, 400))
def test_swapping_arms_negates_lift_and_keeps_p_value_proportions(n1, x1, n2, x2):
    x1, x2 = min(x1, n1), min(x2, n2)
    a = compare_proportions(x1, n1, x2, n2, min_users=1)
    b = compare_proportions(x2, n2, x1, n1, min_users=1)
    assert a.status.startswith("not computable") == b.status.startswith("not computable")
    if a.computable:
        assert b.abs_lift == pytest.approx(-a.abs_lift, abs=1e-15)
        assert b.p_value == pytest.approx(a.p_value, rel=1e-9, abs=1e-300)
        assert b.abs_ci_low == pytest.approx(-a.abs_ci_high, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=30),
    st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=30),
)
def test_swapping_arms_negates_lift_and_keeps_p_value_means(x, y):
    a, b = compare_means(x, y), compare_means(y, x)
    assert (
        a.status == b.status or a.status.startswith("relative") or b.status.startswith("relative")
    )
    if a.computable:
        assert b.abs_lift == pytest.approx(-a.abs_lift, rel=1e-9, abs=1e-9)
        assert b.p_value == pytest.approx(a.p_value, rel=1e-9, abs=1e-300)


# ------------------------------------------------------------------ one-sided (AB-12)
def test_one_sided_proportions_same_as_statsmodels_proportions_ztest():
    ref = REF["AB-12"]
    (xc, nc), (xt, nt) = ref["a_input"]["control"], ref["a_input"]["treatment"]
    larger = compare_proportions(xc, nc, xt, nt, alternative="larger", ci_method="wald")
    assert larger.statistic == pytest.approx(ref["a_z"], rel=1e-9)
    assert larger.p_value == pytest.approx(ref["a_p_larger"], rel=1e-9)
    assert larger.abs_ci_low == pytest.approx(ref["b_wald_low"], rel=1e-9)
    assert larger.abs_ci_high == math.inf and larger.alternative == "larger"
    assert "one-sided (H1: treatment > control)" in larger.method
    smaller = compare_proportions(xc, nc, xt, nt, alternative="smaller")
    assert smaller.p_value == pytest.approx(ref["a_p_smaller"], rel=1e-9)
    assert smaller.abs_ci_low == -math.inf
    newcombe = compare_proportions(xc, nc, xt, nt, alternative="larger")
    assert newcombe.abs_ci_low == pytest.approx(ref["b_newcombe_low"], rel=1e-9)
    yates = compare_proportions(xc, nc, xt, nt, alternative="larger", yates=True)
    assert yates.p_value == pytest.approx(ref["c_yates_p_larger"], rel=1e-6)
    # the one-sided relative lift: same delta-method z, one tail
    two = compare_proportions(xc, nc, xt, nt)
    assert larger.rel_p_value == pytest.approx(two.rel_p_value / 2, rel=1e-12)
    assert larger.rel_ci_high == math.inf and larger.rel_ci_low > two.rel_ci_low
    with pytest.raises(ParameterError, match="alternative"):
        compare_proportions(xc, nc, xt, nt, alternative="greater")


def test_one_sided_welch_same_as_statsmodels_ttest_ind_and_tconfint_diff():
    ref, sleep = REF["AB-12"], REF["AB-3"]
    for alternative in ("larger", "smaller"):
        comp = compare_means(sleep["g1"], sleep["g2"], alternative=alternative)
        assert comp.statistic == pytest.approx(ref["d_t"], rel=1e-9)
        assert comp.df == pytest.approx(ref["d_df"], rel=1e-9)
        assert comp.p_value == pytest.approx(ref[f"d_p_{alternative}"], rel=1e-9)
        expected = [float(v) for v in ref[f"d_ci_{alternative}"]]
        assert [comp.abs_ci_low, comp.abs_ci_high] == pytest.approx(expected, rel=1e-9)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(-50, 50, allow_nan=False), min_size=3, max_size=30),
    st.lists(st.floats(-50, 50, allow_nan=False), min_size=3, max_size=30),
    st.floats(0.01, 0.2),
)
def test_one_sided_p_values_split_the_two_sided_one_and_bounds_match_level_2_alpha(c, t, alpha):
    two = compare_means(c, t, alpha=alpha)
    if not two.computable:
        return
    larger = compare_means(c, t, alpha=alpha, alternative="larger")
    smaller = compare_means(c, t, alpha=alpha, alternative="smaller")
    assert larger.p_value + smaller.p_value == pytest.approx(1.0, abs=1e-12)
    assert two.p_value == pytest.approx(2 * min(larger.p_value, smaller.p_value), abs=1e-12)
    wider = compare_means(c, t, alpha=2 * alpha)
    assert larger.abs_ci_low == pytest.approx(wider.abs_ci_low, rel=1e-9, abs=1e-12)
    assert smaller.abs_ci_high == pytest.approx(wider.abs_ci_high, rel=1e-9, abs=1e-12)
    ratio = compare_ratios(c, np.ones(len(c)), t, np.ones(len(t)), alternative="larger")
    if ratio.computable:
        both = compare_ratios(c, np.ones(len(c)), t, np.ones(len(t)))
        assert ratio.p_value == pytest.approx(stats.norm.sf(both.statistic), abs=1e-12)
