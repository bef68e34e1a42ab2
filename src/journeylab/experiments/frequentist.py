"""Frequentist comparisons of one variant against the control.

Each method is pinned and named, because the usual choices change the
numbers by more than rounding:

- proportions: the p-value comes from the two-proportion z-test with the
  *pooled* standard error (R ``prop.test(..., correct=FALSE)``); the interval
  of the difference is Newcombe's hybrid score interval (default) or the
  unpooled Wald interval; Yates' continuity correction only when asked;
- means: Welch's t-test (unequal variances, Welch–Satterthwaite df), the
  interval from the same t distribution (R ``t.test``);
- ratios (revenue per session ...): the ratio of sums per arm with the
  delta-method variance, a Wald z-test;
- relative lift ``treatment / control - 1``: its own interval and p-value by
  the delta method (a different estimand from the absolute lift, with a
  different p-value);
- one-sided tests use statsmodels' naming: ``alternative="larger"`` tests
  H1: treatment - control > 0 (statsmodels ``proportions_ztest([x_t, x_c],
  ..., alternative="larger")``, ``ttest_ind(treatment, control,
  alternative="larger", usevar="unequal")``), ``"smaller"`` the reverse. The
  interval is then one-sided at level ``1 - alpha``, with an infinite end
  (as statsmodels' ``tconfint_diff``); a one-sided Newcombe bound is the
  two-sided bound at level ``1 - 2 alpha``.

A comparison that cannot be computed (zero variance, no conversions in
either arm, too few users) gets a ``status`` that says why and NaN
estimates, never a number such as ``p = 0`` or ``p = 1``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep

from journeylab.core.errors import ParameterError, check_in, check_range

__all__ = [
    "ALTERNATIVES",
    "Comparison",
    "compare_proportions",
    "compare_means",
    "compare_mean_stats",
    "compare_ratios",
    "relative_lift",
    "welch_test",
    "prop_test",
    "OK",
]

#: The status of a comparison whose numbers are all computable.
OK = "ok"

CiMethod = Literal["newcombe", "wald"]
Alternative = Literal["two-sided", "larger", "smaller"]
ALTERNATIVES = ("two-sided", "larger", "smaller")
NAN = float("nan")
INF = float("inf")

#: How each alternative reads in a method description.
ALTERNATIVE_TEXT = {
    "two-sided": "two-sided",
    "larger": "one-sided (H1: treatment > control)",
    "smaller": "one-sided (H1: treatment < control)",
}


def check_alternative(alternative: str) -> None:
    """Refuse an alternative other than "two-sided", "larger" or "smaller"."""
    check_in("alternative", alternative, list(ALTERNATIVES))


def p_value(statistic: float, alternative: str = "two-sided", df: float | None = None) -> float:
    """p-value of a z (``df`` None) or t statistic of ``treatment - control``.

    Examples
    --------
    >>> round(p_value(-1.3109241984234394, "larger"), 6)
    0.905058
    """
    dist = stats.norm if df is None else stats.t(df)
    if alternative == "larger":
        return float(dist.sf(statistic))
    if alternative == "smaller":
        return float(dist.cdf(statistic))
    return float(2 * dist.sf(abs(statistic)))


def critical_value(alpha: float, alternative: str = "two-sided", df: float | None = None) -> float:
    """Return the normal (``df`` None) or t quantile of a ``1 - alpha`` interval, one- or two-sided."""
    tail = alpha / 2 if alternative == "two-sided" else alpha
    return float(stats.norm.ppf(1 - tail) if df is None else stats.t.ppf(1 - tail, df))


def interval(
    estimate: float, half_width: float, alternative: str = "two-sided"
) -> tuple[float, float]:
    """``estimate ± half_width``; one-sided alternatives keep one bound and open the other."""
    if alternative == "larger":
        return estimate - half_width, INF
    if alternative == "smaller":
        return -INF, estimate + half_width
    return estimate - half_width, estimate + half_width


@dataclass
class Comparison:
    """One variant against the control on one metric.

    ``abs_*`` is the difference ``treatment - control``; ``rel_*`` the
    relative lift ``treatment / control - 1`` with its own delta-method
    interval and p-value. ``p_value`` belongs to the absolute difference.
    ``status`` is ``"ok"`` or a sentence beginning with ``"not computable"``
    or ``"relative lift not computable"`` that says why. ``alternative`` is
    the hypothesis the p-values and intervals belong to (``"two-sided"``,
    ``"larger"``: treatment > control, ``"smaller"``).
    """

    kind: str
    n_control: int
    n_treatment: int
    control_mean: float = NAN
    treatment_mean: float = NAN
    abs_lift: float = NAN
    abs_ci_low: float = NAN
    abs_ci_high: float = NAN
    rel_lift: float = NAN
    rel_ci_low: float = NAN
    rel_ci_high: float = NAN
    p_value: float = NAN
    rel_p_value: float = NAN
    statistic: float = NAN
    df: float = NAN
    std_error: float = NAN
    method: str = ""
    status: str = OK
    alternative: str = "two-sided"
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Return the fields as a plain dict (for a DataFrame row)."""
        out = asdict(self)
        out["notes"] = "; ".join(self.notes)
        return out

    @property
    def computable(self) -> bool:
        """Whether the absolute difference and its p-value are computable."""
        return not self.status.startswith("not computable")

    def _blank(self, reason: str) -> Comparison:
        for name in (
            "abs_lift",
            "abs_ci_low",
            "abs_ci_high",
            "rel_lift",
            "rel_ci_low",
            "rel_ci_high",
            "p_value",
            "rel_p_value",
            "statistic",
            "df",
            "std_error",
        ):
            setattr(self, name, NAN)
        self.status = f"not computable: {reason}"
        return self


def _check_alpha(alpha: float) -> None:
    check_range("alpha", alpha, low=0, high=1)


def relative_lift(
    mean_control: float,
    var_mean_control: float,
    mean_treatment: float,
    var_mean_treatment: float,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> tuple[float, float, float, float]:
    """Relative lift ``t / c - 1`` with its delta-method CI and p-value.

    The two means are independent; their sampling variances are
    ``var_mean_control`` and ``var_mean_treatment``. One-sided alternatives
    give a one-sided p-value and interval.

    Returns
    -------
    (lift, ci_low, ci_high, p_value); NaNs when the control mean is 0.

    Examples
    --------
    >>> lift, lo, hi, p = relative_lift(0.02, 0.02 * 0.98 / 9_999, 0.025, 0.025 * 0.975 / 9_999)
    >>> round(lift, 2), round(lo, 5), round(hi, 5)
    (0.25, 0.02016, 0.47984)
    """
    if mean_control == 0 or not math.isfinite(mean_control):
        return NAN, NAN, NAN, NAN
    with np.errstate(all="ignore"):
        ratio = np.float64(mean_treatment) / np.float64(mean_control)
        var = (var_mean_treatment + ratio**2 * var_mean_control) / np.float64(mean_control) ** 2
    lift = float(ratio - 1.0)
    if not (math.isfinite(lift) and math.isfinite(var)):
        return NAN, NAN, NAN, NAN
    if not var > 0:
        return lift, NAN, NAN, NAN
    se = math.sqrt(var)
    low, high = interval(lift, critical_value(alpha, alternative) * se, alternative)
    return lift, float(low), float(high), p_value(lift / se, alternative)


def _relative_into(comp: Comparison, var_c: float, var_t: float, alpha: float) -> None:
    if comp.control_mean == 0:
        comp.status = (
            "relative lift not computable: the control mean is 0, so a ratio to it is undefined"
        )
        return
    lift, lo, hi, p = relative_lift(
        comp.control_mean,
        var_c,
        comp.treatment_mean,
        var_t,
        alpha=alpha,
        alternative=comp.alternative,
    )
    comp.rel_lift, comp.rel_ci_low, comp.rel_ci_high, comp.rel_p_value = lift, lo, hi, p
    if math.isnan(lift):
        comp.status = "relative lift not computable: the control mean is too close to 0 for a ratio"
    elif math.isnan(lo):
        comp.status = "relative lift not computable: both means have zero sampling variance"


def compare_proportions(
    successes_control: int,
    n_control: int,
    successes_treatment: int,
    n_treatment: int,
    *,
    alpha: float = 0.05,
    ci_method: CiMethod = "newcombe",
    yates: bool = False,
    min_users: int = 2,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """Compare two conversion rates (treatment minus control).

    p-value: two-proportion z-test with pooled SE (= R
    ``prop.test(..., correct=FALSE)``), or with Yates' correction when
    ``yates=True`` (R's default). CI: Newcombe (hybrid score) or unpooled
    Wald; relative lift by the delta method. ``alternative="larger"`` tests
    treatment > control one-sided (= statsmodels ``proportions_ztest([x_t,
    x_c], [n_t, n_c], alternative="larger")``).

    Examples
    --------
    >>> c = compare_proportions(200, 10_000, 250, 10_000, ci_method="wald")
    >>> round(c.statistic, 6), round(c.p_value, 8)
    (2.383995, 0.01712583)
    >>> round(compare_proportions(200, 10_000, 250, 10_000, alternative="larger").p_value, 8)
    0.00856291
    """
    _check_alpha(alpha)
    check_in("ci_method", ci_method, ["newcombe", "wald"])
    check_alternative(alternative)
    xc, nc, xt, nt = (
        int(v) for v in (successes_control, n_control, successes_treatment, n_treatment)
    )
    if min(xc, nc, xt, nt) < 0 or xc > nc or xt > nt:
        raise ParameterError(
            f"successes must lie between 0 and the number of users; got {xc}/{nc} and {xt}/{nt}."
        )
    method = (
        "two-proportion z-test (pooled SE"
        + (", Yates continuity correction" if yates else ", no continuity correction")
        + f"); CI: {'Newcombe hybrid score' if ci_method == 'newcombe' else 'Wald (unpooled SE)'}"
        + "; relative lift: delta method"
        + ("" if alternative == "two-sided" else f"; {ALTERNATIVE_TEXT[alternative]}")
    )
    comp = Comparison("binary", nc, nt, method=method, alternative=alternative)
    if min(nc, nt) < max(min_users, 2):
        return comp._blank(
            f"too few users (control {nc}, treatment {nt}; at least {max(min_users, 2)} per arm "
            "needed)"
        )
    pc, pt = xc / nc, xt / nt
    comp.control_mean, comp.treatment_mean = pc, pt
    pooled = (xc + xt) / (nc + nt)
    if pooled in (0.0, 1.0):
        what = "no conversions" if pooled == 0 else "every user converted"
        return comp._blank(
            f"{what} in either arm ({xc}/{nc} vs {xt}/{nt}): the difference has zero "
            "variance, so no test or interval exists"
        )
    diff = pt - pc
    comp.abs_lift = diff
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nt))
    correction = 0.0
    if yates:
        correction = min(0.5, abs(diff) / (1 / nc + 1 / nt))
    # R prop.test: X^2 = sum((|x - E| - YATES)^2 / E); its root is the corrected z.
    stat = (abs(diff) - correction * (1 / nc + 1 / nt)) / se_pooled
    stat = math.copysign(max(stat, 0.0), diff) if diff != 0 else 0.0
    comp.statistic = stat
    comp.p_value = p_value(stat, alternative)
    se_unpooled = math.sqrt(pc * (1 - pc) / nc + pt * (1 - pt) / nt)
    comp.std_error = se_unpooled
    if ci_method == "wald":
        width = critical_value(alpha, alternative) * se_unpooled + correction * (1 / nc + 1 / nt)
        comp.abs_ci_low, comp.abs_ci_high = interval(diff, width, alternative)
    else:
        # a one-sided 1 - alpha bound is one end of the two-sided 1 - 2 alpha interval
        level = alpha if alternative == "two-sided" else 2 * alpha
        lo, hi = confint_proportions_2indep(
            xt, nt, xc, nc, method="newcomb", compare="diff", alpha=level
        )
        lo, hi = float(lo), float(hi)
        if alternative == "larger":
            hi = INF
        elif alternative == "smaller":
            lo = -INF
        comp.abs_ci_low, comp.abs_ci_high = lo, hi
    # Delta method on the user-level 0/1 values: the sample variance of a
    # mean is p(1 - p) / (n - 1), as for any other user-level metric.
    _relative_into(comp, pc * (1 - pc) / (nc - 1), pt * (1 - pt) / (nt - 1), alpha)
    return comp


def compare_mean_stats(
    mean_control: float,
    var_control: float,
    n_control: int,
    mean_treatment: float,
    var_treatment: float,
    n_treatment: int,
    *,
    alpha: float = 0.05,
    min_users: int = 2,
    kind: str = "continuous",
    method: str | None = None,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """Welch's t-test and CI from per-arm means, variances (ddof=1) and sizes.

    ``alternative="larger"`` is statsmodels' ``ttest_ind(treatment, control,
    alternative="larger", usevar="unequal")`` (R ``t.test(..., alternative =
    "greater")``), with the one-sided interval of ``tconfint_diff``.

    Examples
    --------
    >>> c = compare_mean_stats(0.0, 1.0, 50, 0.5, 1.0, 50)
    >>> round(c.abs_lift, 2)
    0.5
    """
    _check_alpha(alpha)
    check_alternative(alternative)
    nc, nt = int(n_control), int(n_treatment)
    comp = Comparison(
        kind,
        nc,
        nt,
        method=(
            method
            or "Welch t-test (unequal variances, Welch-Satterthwaite df); relative lift: delta method"
        )
        + ("" if alternative == "two-sided" else f"; {ALTERNATIVE_TEXT[alternative]}"),
        alternative=alternative,
    )
    if min(nc, nt) < max(min_users, 2):
        return comp._blank(
            f"too few users (control {nc}, treatment {nt}; at least {max(min_users, 2)} per arm "
            "needed to estimate a variance)"
        )
    comp.control_mean, comp.treatment_mean = float(mean_control), float(mean_treatment)
    vc, vt = var_control / nc, var_treatment / nt
    if not (vc + vt) > 0:
        return comp._blank(
            "zero variance in both arms (every value within each arm is identical), so the "
            "standard error is 0 and no test or interval exists"
        )
    se = math.sqrt(vc + vt)
    # Welch-Satterthwaite df on variance shares (no under/overflow for tiny or huge values)
    share_c, share_t = vc / (vc + vt), vt / (vc + vt)
    df = 1.0 / (share_c**2 / (nc - 1) + share_t**2 / (nt - 1))
    diff = comp.treatment_mean - comp.control_mean
    t = diff / se
    comp.abs_lift, comp.statistic, comp.df, comp.std_error = diff, t, df, se
    comp.p_value = p_value(t, alternative, df)
    comp.abs_ci_low, comp.abs_ci_high = interval(
        diff, critical_value(alpha, alternative, df) * se, alternative
    )
    _relative_into(comp, vc, vt, alpha)
    return comp


def compare_means(
    control: np.ndarray,
    treatment: np.ndarray,
    *,
    alpha: float = 0.05,
    min_users: int = 2,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """Welch's t-test of ``treatment - control`` on raw values (= R ``t.test``).

    Examples
    --------
    >>> c = compare_means([1, 2, 3, 4], [2, 3, 4, 5])
    >>> c.abs_lift
    1.0
    """
    c = np.asarray(control, dtype=float)
    t = np.asarray(treatment, dtype=float)
    c, t = c[~np.isnan(c)], t[~np.isnan(t)]
    var_c = float(c.var(ddof=1)) if c.size > 1 else NAN
    var_t = float(t.var(ddof=1)) if t.size > 1 else NAN
    return compare_mean_stats(
        float(c.mean()) if c.size else NAN,
        var_c,
        c.size,
        float(t.mean()) if t.size else NAN,
        var_t,
        t.size,
        alpha=alpha,
        min_users=min_users,
        alternative=alternative,
    )


def welch_test(
    x: np.ndarray, y: np.ndarray, *, alpha: float = 0.05
) -> tuple[float, float, float, tuple[float, float]]:
    """Welch two-sample t-test of ``mean(x) - mean(y)``, R ``t.test(x, y)`` order.

    Returns ``(t, df, p_value, (ci_low, ci_high))``; raises
    :class:`~journeylab.core.errors.NotComputableError` on zero variance.

    Examples
    --------
    >>> t, df, p, ci = welch_test(range(1, 11), range(7, 21))
    >>> f"{p:.4g}"
    '1.855e-05'
    """
    from journeylab.core.errors import NotComputableError

    comp = compare_means(y, x, alpha=alpha)
    if not comp.computable:
        raise NotComputableError(comp.status)
    return comp.statistic, comp.df, comp.p_value, (comp.abs_ci_low, comp.abs_ci_high)


def compare_ratios(
    numerator_control: np.ndarray,
    denominator_control: np.ndarray,
    numerator_treatment: np.ndarray,
    denominator_treatment: np.ndarray,
    *,
    alpha: float = 0.05,
    min_users: int = 2,
    alternative: Alternative = "two-sided",
) -> Comparison:
    """Compare ratio metrics (sum of numerator / sum of denominator per arm).

    The user is the randomisation unit, so the per-arm ratio's variance comes
    from the delta method on per-user numerator and denominator
    (Deng et al., 2018): ``var(R) = (s_nn - 2 R s_nd + R^2 s_dd) / (n mean_d^2)``.

    Examples
    --------
    >>> c = compare_ratios([1, 2, 0, 3], [1, 2, 1, 2], [2, 2, 1, 3], [1, 2, 1, 2])
    >>> round(c.abs_lift, 3)
    0.333
    """
    _check_alpha(alpha)
    check_alternative(alternative)
    parts = []
    for num, den in (
        (numerator_control, denominator_control),
        (numerator_treatment, denominator_treatment),
    ):
        num = np.asarray(num, dtype=float)
        den = np.asarray(den, dtype=float)
        keep = ~(np.isnan(num) | np.isnan(den))
        parts.append((num[keep], den[keep]))
    (nc_, dc_), (nt_, dt_) = parts
    comp = Comparison(
        "ratio",
        nc_.size,
        nt_.size,
        method="ratio of sums with delta-method variance (user-level), Wald z-test; "
        "relative lift: delta method"
        + ("" if alternative == "two-sided" else f"; {ALTERNATIVE_TEXT[alternative]}"),
        alternative=alternative,
    )
    if min(nc_.size, nt_.size) < max(min_users, 2):
        return comp._blank(
            f"too few users (control {nc_.size}, treatment {nt_.size}; at least "
            f"{max(min_users, 2)} per arm needed)"
        )
    est = []
    for num, den in parts:
        n = num.size
        mean_d = den.mean()
        if mean_d == 0:
            return comp._blank("the denominator sums to 0 in an arm, so the ratio is undefined")
        ratio = num.sum() / den.sum()
        cov = np.cov(num, den, ddof=1)
        var = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / (n * mean_d**2)
        est.append((float(ratio), float(max(var, 0.0))))
    (rc, vc), (rt, vt) = est
    comp.control_mean, comp.treatment_mean = rc, rt
    if not (vc + vt) > 0:
        return comp._blank("zero variance in both arms, so no test or interval exists")
    se = math.sqrt(vc + vt)
    diff = rt - rc
    comp.abs_lift, comp.std_error, comp.statistic = diff, se, diff / se
    comp.p_value = p_value(diff / se, alternative)
    comp.abs_ci_low, comp.abs_ci_high = interval(
        diff, critical_value(alpha, alternative) * se, alternative
    )
    _relative_into(comp, vc, vt, alpha)
    return comp


def prop_test(
    successes: np.ndarray, trials: np.ndarray, *, correct: bool = True
) -> tuple[float, int, float]:
    """Chi-square test that k proportions are equal (= R ``prop.test(x, n)``).

    Yates' correction applies only when k = 2 and ``correct`` is true, as in R.

    Returns ``(chi2, df, p_value)``.

    Examples
    --------
    >>> chi2, df, p = prop_test([83, 90, 129, 70], [86, 93, 136, 82])
    >>> round(chi2, 6), df
    (12.600411, 3)
    """
    x = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    if x.shape != n.shape or x.size < 2:
        raise ParameterError("successes and trials must be equal-length sequences of 2 or more.")
    p = x.sum() / n.sum()
    if p in (0.0, 1.0):
        from journeylab.core.errors import NotComputableError

        raise NotComputableError(
            "all proportions are 0 (or all 1): the chi-square statistic is undefined"
        )
    observed = np.column_stack([x, n - x])
    expected = np.column_stack([n * p, n * (1 - p)])
    yates = 0.0
    if correct and x.size == 2:
        delta = x[0] / n[0] - x[1] / n[1]
        yates = min(0.5, abs(delta) / (1 / n).sum())
    chi2 = float(((np.abs(observed - expected) - yates) ** 2 / expected).sum())
    df = int(x.size - 1)
    return chi2, df, float(stats.chi2.sf(chi2, df))
