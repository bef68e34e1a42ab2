"""Power, sample size and minimum detectable effect.

The formulas are R's, so a number here can be checked against R:

- two proportions: ``power.prop.test`` (normal approximation, pooled variance
  under H0, unpooled under H1; the far tail ignored unless ``strict=True``);
- two means: ``power.t.test`` (noncentral t with ``2 (n - 1)`` df, equal
  groups);
- Cohen's *h* (arcsine) power is a *different* method and is only available
  under its own name, :func:`arcsine_power`.

Solvers (for n, the effect, or the power) use Brent's method and check the
answer; when the target cannot be reached inside the search range they
raise :class:`~journeylab.core.errors.NotComputableError` with what to change,
never returning the edge of the bracket as if it were a solution.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import optimize, stats

from journeylab.core.errors import NotComputableError, ParameterError, check_in, check_range
from journeylab.core.results import Result, fmt_num, fmt_pct, fmt_pp

__all__ = [
    "prop_power",
    "t_power",
    "arcsine_power",
    "power_prop_test",
    "power_t_test",
    "power_calculator",
    "PowerCalculation",
]

Alternative = Literal["two-sided", "one-sided"]
_N_MAX = 1e12
_METHOD_PROP = "R power.prop.test formula (normal approximation, pooled variance under H0)"
_METHOD_T = "R power.t.test formula (two-sample noncentral t, equal groups)"
_METHOD_ARCSINE = "arcsine transformation (Cohen's h), normal approximation"


def _tails(alternative: str) -> int:
    check_in("alternative", alternative, ["two-sided", "one-sided"])
    return 2 if alternative == "two-sided" else 1


def prop_power(
    n: float,
    p1: float,
    p2: float,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    strict: bool = False,
) -> float:
    """Power of the two-proportion test with ``n`` users per arm (R ``power.prop.test``).

    Examples
    --------
    >>> round(prop_power(50, 0.5, 0.75), 7)
    0.7401659
    """
    tside = _tails(alternative)
    q = stats.norm.isf(alpha / tside)
    pbar = (p1 + p2) / 2
    num = math.sqrt(n) * abs(p1 - p2)
    h0 = q * math.sqrt((p1 + p2) * (1 - pbar))
    sd1 = math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    power = stats.norm.cdf((num - h0) / sd1)
    if strict and tside == 2:
        power += stats.norm.sf((num + h0) / sd1)
    return float(power)


def t_power(
    n: float,
    delta: float,
    *,
    sd: float = 1.0,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    strict: bool = False,
) -> float:
    """Power of the two-sample t-test with ``n`` users per arm (R ``power.t.test``).

    Examples
    --------
    >>> round(t_power(20, 1.0), 7)
    0.8689528
    """
    tside = _tails(alternative)
    nu = (n - 1) * 2
    ncp = math.sqrt(n / 2) * abs(delta) / sd
    q = stats.t.isf(alpha / tside, nu)
    power = stats.nct.sf(q, nu, ncp)
    if strict and tside == 2:
        power += stats.nct.cdf(-q, nu, ncp)
    return float(power)


def arcsine_power(
    n: float, p1: float, p2: float, *, alpha: float = 0.05, alternative: Alternative = "two-sided"
) -> float:
    """Power by Cohen's *h* (arcsine) approximation; not R's ``power.prop.test``.

    Examples
    --------
    >>> round(arcsine_power(50, 0.5, 0.75), 4)
    0.7447
    """
    tside = _tails(alternative)
    h = abs(2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1)))
    q = stats.norm.isf(alpha / tside)
    power = stats.norm.cdf(h * math.sqrt(n / 2) - q)
    if tside == 2:
        power += stats.norm.cdf(-h * math.sqrt(n / 2) - q)
    return float(power)


def _solve(
    func: Callable[[float], float], target: float, *, low: float, high: float, what: str, hint: str
) -> float:
    """Root of ``func(x) = target`` on [low, high], verified; raises if absent."""
    f_low, f_high = func(low) - target, func(high) - target
    if not (math.isfinite(f_low) and math.isfinite(f_high)) or f_low * f_high > 0:
        raise NotComputableError(
            f"cannot solve for {what}: the power ranges from {func(low):.4g} to "
            f"{func(high):.4g} over {what} in [{low:g}, {high:g}], never reaching "
            f"{target:g}. {hint}"
        )
    root = optimize.brentq(
        lambda x: func(x) - target, low, high, xtol=1e-12, rtol=1e-13, maxiter=500
    )
    if abs(func(root) - target) > 1e-6:
        raise NotComputableError(
            f"cannot solve for {what}: the solver stopped at {root:g} with power "
            f"{func(root):.6g} instead of {target:g}. {hint}"
        )
    return float(root)


@dataclass(repr=False)
class PowerCalculation(Result):
    """A solved power calculation: every quantity filled, the solved one named.

    Attributes
    ----------
    kind : "binary" or "continuous"
    n_per_variant, baseline, treatment, effect, sd, power, alpha, alternative
        The design; ``effect`` is ``treatment - baseline``.
    solved_for : "n_per_variant", "power" or "effect"
    method : str
        The formula used, by name.
    """

    kind: str
    n_per_variant: float
    baseline: float
    treatment: float
    sd: float
    power: float
    alpha: float
    alternative: str
    solved_for: str
    method: str
    variants: int = 2

    title = "Power calculation"

    @property
    def effect(self) -> float:
        """Absolute effect ``treatment - baseline``."""
        return self.treatment - self.baseline

    @property
    def relative_effect(self) -> float:
        """Relative effect ``treatment / baseline - 1`` (NaN for a zero baseline)."""
        return self.treatment / self.baseline - 1 if self.baseline else float("nan")

    @property
    def n_total(self) -> int:
        """Users needed over all variants, rounding each arm up."""
        return math.ceil(self.n_per_variant) * self.variants

    def power_at(self, n: float | np.ndarray) -> np.ndarray:
        """Power at ``n`` users per variant for this design's effect."""
        ns = np.atleast_1d(np.asarray(n, dtype=float))
        options = {"alpha": self.alpha, "alternative": self.alternative}
        if self.kind == "binary":
            return np.array([prop_power(m, self.baseline, self.treatment, **options) for m in ns])
        return np.array([t_power(m, self.effect, sd=self.sd, **options) for m in ns])

    def to_frame(self):
        """One row: the design and the solved quantity."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "kind": self.kind,
                    "n_per_variant": self.n_per_variant,
                    "n_per_variant_rounded": math.ceil(self.n_per_variant),
                    "n_total": self.n_total,
                    "baseline": self.baseline,
                    "treatment": self.treatment,
                    "abs_effect": self.effect,
                    "rel_effect": self.relative_effect,
                    "sd": self.sd,
                    "power": self.power,
                    "alpha": self.alpha,
                    "alternative": self.alternative,
                    "solved_for": self.solved_for,
                    "method": self.method,
                }
            ]
        )

    def display_frame(self):
        """Show the design for readers: one row per quantity, the solved one marked.

        Rates read as percentages and the effect in percentage points for a
        binary metric; users are whole people per variant and in total.
        """
        import pandas as pd

        binary = self.kind == "binary"
        level = fmt_pct if binary else fmt_num
        solved = {self.solved_for: " (solved)"}
        if binary:
            effect = (
                f"{fmt_pp(self.effect)} ({fmt_pct(self.relative_effect, signed=True)} relative)"
            )
        else:
            sign = "" if self.effect < 0 else "+"
            effect = f"{sign}{fmt_num(self.effect)}"
            if self.baseline:
                effect += f" ({fmt_pct(self.relative_effect, signed=True)} relative)"
        rows = [
            (
                "users per variant" + solved.get("n_per_variant", ""),
                f"{math.ceil(self.n_per_variant):,}",
            ),
            (f"users in total ({self.variants} variants)", f"{self.n_total:,}"),
            ("baseline rate" if binary else "baseline mean", level(self.baseline)),
            ("treatment rate" if binary else "treatment mean", level(self.treatment)),
            ("effect" + (" (minimum detectable)" if self.solved_for == "effect" else ""), effect),
        ]
        if not binary:
            rows.append(("standard deviation", fmt_num(self.sd)))
        rows += [
            (
                "power" + solved.get("power", ""),
                fmt_pct(self.power, 0 if round(self.power * 100, 9).is_integer() else 1),
            ),
            ("significance level α", f"{self.alpha:g} ({self.alternative})"),
            ("method", self.method),
        ]
        return pd.DataFrame(rows, columns=["quantity", "value"])

    def summary(self) -> str:
        """Plain-language statement of the design."""
        if self.kind == "binary":
            change = (
                f"a change from {fmt_pct(self.baseline)} to {fmt_pct(self.treatment)} "
                f"({fmt_pp(self.effect)}, {fmt_pct(self.relative_effect, signed=True)} relative)"
            )
        else:
            change = f"a difference in means of {fmt_num(self.effect)} (SD {fmt_num(self.sd)})"
        test = f"α = {self.alpha:g} ({self.alternative})"
        if self.solved_for == "n_per_variant":
            head = (
                f"To detect {change} with {fmt_pct(self.power, 0)} power at {test}, you need "
                f"{math.ceil(self.n_per_variant):,} users per variant "
                f"({self.n_total:,} in total over {self.variants} variants)."
            )
        elif self.solved_for == "power":
            head = (
                f"With {fmt_num(self.n_per_variant)} users per variant, the power to detect "
                f"{change} at {test} is {fmt_pct(self.power)}."
            )
        else:
            head = (
                f"With {fmt_num(self.n_per_variant)} users per variant and "
                f"{fmt_pct(self.power, 0)} power at {test}, the minimum detectable effect is "
                f"{change}."
            )
        return f"{head}\nMethod: {self.method}."

    def plot(self, ax=None):
        """Power curve against users per variant, the design marked."""
        from journeylab.core.viz import PALETTE, new_axes, percent_axis

        ax = new_axes(ax, figsize=(7, 4))
        n0 = max(self.n_per_variant, 2.0)
        grid = np.unique(np.geomspace(max(2.0, n0 / 10), n0 * 4, 200))
        ax.plot(grid, self.power_at(grid), color=PALETTE[0], lw=2)
        ax.axhline(self.power, color="0.5", ls="--", lw=1)
        ax.axvline(self.n_per_variant, color="0.5", ls="--", lw=1)
        ax.plot([self.n_per_variant], [self.power], "o", color=PALETTE[3])
        ax.annotate(
            f"{math.ceil(self.n_per_variant):,} per variant → {fmt_pct(self.power, 0)}",
            (self.n_per_variant, self.power),
            textcoords="offset points",
            xytext=(8, -16),
        )
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        percent_axis(ax, "y")
        ax.set_xlabel("users per variant (log scale)")
        ax.set_ylabel("power")
        ax.set_title("Power curve")
        return ax


def _count_missing(**kwargs) -> str:
    missing = [k for k, v in kwargs.items() if v is None]
    if len(missing) != 1:
        raise ParameterError(
            f"exactly one of {list(kwargs)} must be None (the quantity to solve for); "
            f"got {len(missing)} missing: {missing}."
        )
    return missing[0]


def power_prop_test(
    n: float | None = None,
    p1: float | None = None,
    p2: float | None = None,
    power: float | None = None,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    strict: bool = False,
) -> PowerCalculation:
    """Solve the two-proportion design for the one quantity left as None (R ``power.prop.test``).

    ``n`` is per variant. Solving for ``p2`` searches above ``p1`` (pass
    ``p2`` and leave ``p1`` None to search below a treatment rate).

    Examples
    --------
    >>> round(power_prop_test(p1=0.5, p2=0.75, power=0.9).n_per_variant, 4)
    76.7069
    """
    check_range("alpha", alpha, low=0, high=1)
    what = _count_missing(n=n, p1=p1, p2=p2, power=power)
    for name, value in (("p1", p1), ("p2", p2)):
        if value is not None:
            check_range(name, value, low=0, high=1)
    if power is not None:
        check_range("power", power, low=0, high=1)
    if what != "power" and what != "n" and n is not None:
        check_range("n", n, low=0)

    def pw(m, a, b):
        return prop_power(m, a, b, alpha=alpha, alternative=alternative, strict=strict)

    if what == "power":
        power = pw(n, p1, p2)
    elif what == "n":
        if p1 == p2:
            raise NotComputableError(
                f"p1 == p2 == {p1}: no sample size detects a zero difference; give two different rates."
            )
        n = _solve(
            lambda m: pw(m, p1, p2),
            power,
            low=1e-3,
            high=_N_MAX,
            what="n",
            hint="Ask for less power or a larger difference between p1 and p2.",
        )
    elif what == "p2":
        p2 = _solve(
            lambda b: pw(n, p1, b),
            power,
            low=p1 + 1e-12,
            high=1 - 1e-12,
            what="p2",
            hint="No rate above p1 reaches that power with this n: add users or lower the power.",
        )
    else:
        p1 = _solve(
            lambda a: pw(n, a, p2),
            power,
            low=1e-12,
            high=p2 - 1e-12,
            what="p1",
            hint="No rate below p2 reaches that power with this n: add users or lower the power.",
        )
    return PowerCalculation(
        "binary",
        float(n),
        float(p1),
        float(p2),
        float("nan"),
        float(power),
        alpha,
        alternative,
        {"n": "n_per_variant", "power": "power"}.get(what, "effect"),
        _METHOD_PROP + (", both tails" if strict else ""),
    )


def power_t_test(
    n: float | None = None,
    delta: float | None = None,
    power: float | None = None,
    *,
    sd: float = 1.0,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    strict: bool = False,
    baseline: float = 0.0,
) -> PowerCalculation:
    """Solve the two-sample t-test design for the quantity left as None (R ``power.t.test``).

    Examples
    --------
    >>> round(power_t_test(delta=1, power=0.9).n_per_variant, 4)
    22.0211
    """
    check_range("alpha", alpha, low=0, high=1)
    check_range("sd", sd, low=0)
    what = _count_missing(n=n, delta=delta, power=power)
    if power is not None:
        check_range("power", power, low=0, high=1)

    def pw(m, d):
        return t_power(m, d, sd=sd, alpha=alpha, alternative=alternative, strict=strict)

    if what == "power":
        power = pw(n, delta)
    elif what == "n":
        if delta == 0:
            raise NotComputableError("delta == 0: no sample size detects a zero difference.")
        n = _solve(
            lambda m: pw(m, delta),
            power,
            low=2.0,
            high=_N_MAX,
            what="n",
            hint="Ask for less power or a larger delta (or a smaller sd).",
        )
    else:
        delta = _solve(
            lambda d: pw(n, d),
            power,
            low=1e-12 * sd,
            high=1e3 * sd,
            what="delta",
            hint="Add users or lower the power.",
        )
    return PowerCalculation(
        "continuous",
        float(n),
        float(baseline),
        float(baseline + delta),
        float(sd),
        float(power),
        alpha,
        alternative,
        {"n": "n_per_variant", "power": "power"}.get(what, "effect"),
        _METHOD_T + (", both tails" if strict else ""),
    )


def power_calculator(
    baseline: float,
    *,
    mde: float | None = None,
    relative: bool = False,
    n_per_variant: float | None = None,
    power: float | None = 0.8,
    alpha: float = 0.05,
    kind: Literal["binary", "continuous"] = "binary",
    sd: float | None = None,
    alternative: Alternative = "two-sided",
    variants: int = 2,
) -> PowerCalculation:
    """Sample size, power or minimum detectable effect for an A/B test.

    Give two of ``mde``, ``n_per_variant`` and ``power`` (power defaults to
    0.8, so give ``power=None`` to solve for it); the third is solved.
    ``mde`` is absolute (``0.01`` = +1 pp on a rate) unless ``relative=True``
    (``0.10`` = +10 %). Continuous metrics need ``sd``.

    Examples
    --------
    >>> calc = power_calculator(0.10, mde=0.01)
    >>> calc.n_total
    29502
    """
    check_in("kind", kind, ["binary", "continuous"])
    if variants < 2:
        raise ParameterError(f"variants == {variants}, must be >= 2.")
    given = {"mde": mde, "n_per_variant": n_per_variant, "power": power}
    if sum(v is None for v in given.values()) != 1:
        raise ParameterError(
            "give exactly two of mde, n_per_variant and power (power defaults to 0.8: pass "
            f"power=None to solve for it); got {given}."
        )
    effect = None if mde is None else (mde * baseline if relative else mde)
    if kind == "binary":
        check_range("baseline", baseline, low=0, high=1)
        p2 = None if effect is None else baseline + effect
        if p2 is not None and not 0 < p2 < 1:
            raise ParameterError(
                f"baseline + mde == {p2:g}, must lie strictly between 0 and 1 for a rate."
            )
        if effect is not None and effect < 0:
            calc = power_prop_test(
                n_per_variant, p2, baseline, power, alpha=alpha, alternative=alternative
            )
            calc.baseline, calc.treatment = calc.treatment, calc.baseline
        else:
            calc = power_prop_test(
                n_per_variant, baseline, p2, power, alpha=alpha, alternative=alternative
            )
    else:
        if sd is None:
            raise ParameterError(
                "kind='continuous' needs sd (the standard deviation of the metric)."
            )
        calc = power_t_test(
            n_per_variant,
            effect,
            power,
            sd=sd,
            alpha=alpha,
            alternative=alternative,
            baseline=baseline,
        )
    calc.variants = variants
    return calc
