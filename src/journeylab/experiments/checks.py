"""Trust checks that run before any lift is believed.

- **SRM** (sample ratio mismatch): a chi-square goodness-of-fit test of the
  observed users per variant against the *designed* split (not assumed
  equal: 95/5 designs exist). Flagged below p = 0.001.
- **Pre-period imbalance**: a covariate measured before exposure should not
  differ between arms; Welch test and standardised mean difference.
- **Simpson's guard**: when the traffic split changed across periods, the
  pooled comparison mixes periods with different baselines; the lift is
  also estimated within periods and combined (Cochran–Mantel–Haenszel
  weights ``n_c n_t / (n_c + n_t)``), beside the pooled one.
- **Novelty / primacy**: a weighted regression of the per-period lift on
  time; a significant trend means the average lift is not the long-run one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from journeylab.core.errors import ParameterError
from journeylab.core.results import fmt_num, fmt_p, fmt_pct

__all__ = [
    "Check",
    "srm_check",
    "imbalance_check",
    "period_index",
    "split_change_check",
    "stratified_lift",
    "cmh_test",
    "trend_check",
    "SRM_THRESHOLD",
]

#: SRM p-value threshold: below it the split is flagged (industry convention).
SRM_THRESHOLD = 0.001


@dataclass
class Check:
    """The outcome of one trust check.

    ``status`` is ``"ok"``, ``"flagged"`` or ``"skipped"``; ``message`` says
    in plain words what was found and what it means.
    """

    name: str
    status: str
    message: str
    statistic: float = float("nan")
    p_value: float = float("nan")
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        """Whether the check found a problem."""
        return self.status == "flagged"

    def as_dict(self) -> dict:
        """Name, status, statistic, p-value and message as a dict."""
        return {
            "check": self.name,
            "status": self.status,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "message": self.message,
        }


def _normalise_split(
    variants: list[str], design_split: Mapping[str, float] | None
) -> dict[str, float]:
    if design_split is None:
        return {v: 1 / len(variants) for v in variants}
    unknown = [v for v in design_split if v not in variants]
    missing = [v for v in variants if v not in design_split]
    if unknown or missing:
        raise ParameterError(
            f"design_split must name every variant in the data {variants}; "
            f"unknown {unknown}, missing {missing}."
        )
    shares = np.array([float(design_split[v]) for v in variants])
    if (shares <= 0).any():
        raise ParameterError(f"design_split shares must be > 0; got {dict(design_split)}.")
    shares = shares / shares.sum()
    return dict(zip(variants, shares.tolist(), strict=True))


def srm_check(
    counts: Mapping[str, int],
    design_split: Mapping[str, float] | None = None,
    *,
    threshold: float = SRM_THRESHOLD,
) -> Check:
    """Sample ratio mismatch: chi-square test of users per variant against the design.

    Parameters
    ----------
    counts : mapping variant -> users
    design_split : mapping variant -> share, optional
        The split the experiment was designed with (any positive weights,
        normalised); equal split when None.
    threshold : float
        Flag when the p-value falls below it (0.001 by default).

    Examples
    --------
    >>> check = srm_check({"control": 50_000, "treatment": 51_000})
    >>> round(check.p_value, 9), check.status
    (0.001651899, 'ok')
    """
    variants = [str(v) for v in counts]
    observed = np.array([int(counts[v]) for v in counts], dtype=float)
    split = _normalise_split(variants, design_split)
    expected = observed.sum() * np.array([split[v] for v in variants])
    stat, p = stats.chisquare(observed, expected)
    stat, p = float(stat), float(p)
    shares = observed / observed.sum()
    described = ", ".join(
        f"{v} {int(o):,} ({fmt_pct(s)}; designed {fmt_pct(split[v])})"
        for v, o, s in zip(variants, observed, shares, strict=True)
    )
    details = {
        "observed": dict(zip(variants, observed.astype(int).tolist(), strict=True)),
        "expected": dict(zip(variants, expected.tolist(), strict=True)),
        "design_split": split,
        "threshold": threshold,
    }
    if p < threshold:
        message = (
            f"Sample ratio mismatch: users per variant {described}; chi-square {fmt_p(p, with_p=True)} "
            f"(below {threshold:g}). The assignment or its logging is broken (lost or duplicated "
            "users, bots, a redirect that drops users), so the lifts below are not trustworthy "
            "until the cause is found."
        )
        return Check("sample ratio mismatch", "flagged", message, stat, p, details)
    message = (
        f"No sample ratio mismatch: users per variant {described}; chi-square {fmt_p(p, with_p=True)} "
        f"(flagged below {threshold:g})."
    )
    return Check("sample ratio mismatch", "ok", message, stat, p, details)


def imbalance_check(
    data: pd.DataFrame,
    variant: str,
    control: str,
    covariates: list[str],
    *,
    threshold: float = 0.01,
) -> Check:
    """Check for pre-period imbalance: does a pre-exposure covariate differ between arms.

    Each treatment arm is compared with the control (Welch test); the check is
    flagged when any p-value falls below ``threshold``. The standardised mean
    difference (difference / pooled SD) is reported beside it.

    Examples
    --------
    >>> frame = pd.DataFrame({"variant": ["a", "b"] * 50, "x": range(100)})
    >>> imbalance_check(frame, "variant", "a", ["x"]).status
    'ok'
    """
    rows = []
    ctrl = data.loc[data[variant] == control]
    for cov in covariates:
        x_c = pd.to_numeric(ctrl[cov], errors="coerce").dropna().to_numpy(float)
        for arm, part in data.loc[data[variant] != control].groupby(variant, sort=True):
            x_t = pd.to_numeric(part[cov], errors="coerce").dropna().to_numpy(float)
            if min(x_c.size, x_t.size) < 2 or (x_c.var() + x_t.var()) == 0:
                continue
            t, p = stats.ttest_ind(x_t, x_c, equal_var=False)
            sd = math.sqrt((x_c.var(ddof=1) + x_t.var(ddof=1)) / 2)
            smd = (x_t.mean() - x_c.mean()) / sd if sd > 0 else float("nan")
            rows.append((cov, str(arm), x_c.mean(), x_t.mean(), smd, float(p)))
    table = pd.DataFrame(
        rows, columns=["covariate", "variant", "control_mean", "treatment_mean", "smd", "p_value"]
    )
    if table.empty:
        return Check("pre-period imbalance", "skipped", "No usable covariate to check.")
    worst = table.loc[table["p_value"].idxmin()]
    flagged = table[table["p_value"] < threshold]
    if len(flagged):
        message = (
            "Pre-period imbalance: "
            + "; ".join(
                f"{r.covariate} differs between {r.variant} ({fmt_num(r.treatment_mean)}) and "
                f"control ({fmt_num(r.control_mean)}) before exposure (SMD {r.smd:+.3f}, "
                f"{fmt_p(r.p_value, with_p=True)})"
                for r in flagged.itertuples()
            )
            + ". Randomisation may be compromised, or the arms differ by chance; a "
            "covariate-adjusted (CUPED) estimate removes part of the bias."
        )
        status = "flagged"
    else:
        message = (
            f"Pre-period covariates are balanced ({', '.join(covariates)}; largest |SMD| "
            f"{table['smd'].abs().max():.3f}, smallest {fmt_p(worst.p_value, with_p=True)})."
        )
        status = "ok"
    return Check(
        "pre-period imbalance",
        status,
        message,
        p_value=float(worst.p_value),
        details={"table": table},
    )


def period_index(periods: pd.Series) -> pd.Series:
    """Return each period's position in time: days since the first for datetimes, else ranks."""
    if pd.api.types.is_datetime64_any_dtype(periods):
        first = periods.min()
        return ((periods - first) / pd.Timedelta(days=1)).astype(float)
    order = {p: i for i, p in enumerate(sorted(periods.dropna().unique()))}
    return periods.map(order).astype(float)


def split_change_check(
    data: pd.DataFrame, variant: str, period: str, *, threshold: float = SRM_THRESHOLD
) -> Check:
    """Did the traffic split change across periods? (chi-square of variant × period).

    Examples
    --------
    >>> frame = pd.DataFrame({"variant": ["a", "b"] * 50, "day": [1] * 50 + [2] * 50})
    >>> split_change_check(frame, "variant", "day").status
    'ok'
    """
    table = pd.crosstab(data[period], data[variant])
    if table.shape[0] < 2 or table.shape[1] < 2:
        return Check("split change across periods", "skipped", "Fewer than two periods.")
    chi2, p, dof, _ = stats.chi2_contingency(table.to_numpy(), correction=False)
    shares = table.div(table.sum(axis=1), axis=0)
    spread = {c: (float(shares[c].min()), float(shares[c].max())) for c in shares.columns}
    described = ", ".join(f"{c} {fmt_pct(lo)}–{fmt_pct(hi)}" for c, (lo, hi) in spread.items())
    details = {"shares": shares, "counts": table}
    if p < threshold:
        return Check(
            "split change across periods",
            "flagged",
            f"The traffic split changed across periods (share per period: {described}; "
            f"chi-square {fmt_p(p, with_p=True)}). Pooled lifts mix periods with different baselines "
            "(Simpson's paradox risk): compare them with the period-stratified estimates.",
            float(chi2),
            float(p),
            details,
        )
    return Check(
        "split change across periods",
        "ok",
        f"The traffic split was stable across {table.shape[0]} periods ({fmt_p(p, with_p=True)}).",
        float(chi2),
        float(p),
        details,
    )


def _per_period(values: pd.Series, is_treatment: pd.Series, periods: pd.Series) -> pd.DataFrame:
    frame = pd.DataFrame({"y": values.astype(float), "t": is_treatment, "period": periods})
    g = frame.groupby(["period", "t"], sort=True, observed=True)["y"].agg(["mean", "var", "count"])
    g = g.unstack("t")
    out = pd.DataFrame(
        {
            "n_control": g[("count", False)],
            "n_treatment": g[("count", True)],
            "control_mean": g[("mean", False)],
            "treatment_mean": g[("mean", True)],
            "var_control": g[("var", False)],
            "var_treatment": g[("var", True)],
        }
    ).dropna()
    out = out[(out["n_control"] >= 2) & (out["n_treatment"] >= 2)]
    out["lift"] = out["treatment_mean"] - out["control_mean"]
    out["var_lift"] = (
        out["var_control"] / out["n_control"] + out["var_treatment"] / out["n_treatment"]
    )
    return out


def stratified_lift(
    values: pd.Series,
    is_treatment: pd.Series,
    periods: pd.Series,
    *,
    alpha: float = 0.05,
) -> dict[str, float]:
    """Lift within periods, combined with CMH weights ``n_c n_t / (n_c + n_t)``.

    Returns a dict with ``abs_lift``, ``ci_low``, ``ci_high``, ``p_value`` and
    ``periods`` (periods used: both arms need at least two users).

    Examples
    --------
    >>> y = pd.Series([0, 1, 0, 1, 1, 1, 0, 0])
    >>> t = pd.Series([False, True] * 4)
    >>> round(stratified_lift(y, t, pd.Series([1, 1, 1, 1, 2, 2, 2, 2]))["abs_lift"], 3)
    0.5
    """
    table = _per_period(values, is_treatment, periods)
    nan = float("nan")
    if table.empty:
        return {"abs_lift": nan, "ci_low": nan, "ci_high": nan, "p_value": nan, "periods": 0}
    w = table["n_control"] * table["n_treatment"] / (table["n_control"] + table["n_treatment"])
    est = float((w * table["lift"]).sum() / w.sum())
    var = float((w**2 * table["var_lift"]).sum() / w.sum() ** 2)
    if not var > 0:
        return {
            "abs_lift": est,
            "ci_low": nan,
            "ci_high": nan,
            "p_value": nan,
            "periods": len(table),
        }
    se = math.sqrt(var)
    z = stats.norm.ppf(1 - alpha / 2)
    return {
        "abs_lift": est,
        "ci_low": est - z * se,
        "ci_high": est + z * se,
        "p_value": float(2 * stats.norm.sf(abs(est) / se)),
        "periods": int(len(table)),
    }


def cmh_test(values: pd.Series, is_treatment: pd.Series, periods: pd.Series) -> dict[str, float]:
    """Cochran–Mantel–Haenszel test of a 0/1 metric across periods (statsmodels StratifiedTable).

    Returns ``cmh_odds_ratio`` (Mantel–Haenszel pooled odds ratio, treatment
    vs control) and ``cmh_p_value`` (test of a common odds ratio of 1, no
    continuity correction); NaN when fewer than one usable period.

    Examples
    --------
    >>> y = pd.Series([1, 0, 1, 1, 0, 0, 1, 0] * 10)
    >>> t = pd.Series([True, False] * 40)
    >>> round(cmh_test(y, t, pd.Series([1] * 40 + [2] * 40))["cmh_odds_ratio"], 3)
    9.0
    """
    from statsmodels.stats.contingency_tables import StratifiedTable

    frame = pd.DataFrame({"y": values.astype(float), "t": is_treatment.to_numpy(), "p": periods})
    counts = frame.groupby(["p", "t"], observed=True)["y"].agg(["sum", "count"]).unstack("t")
    counts = counts.dropna()
    nan = float("nan")
    if counts.empty:
        return {"cmh_odds_ratio": nan, "cmh_p_value": nan}
    xt, nt = counts[("sum", True)].to_numpy(), counts[("count", True)].to_numpy()
    xc, nc = counts[("sum", False)].to_numpy(), counts[("count", False)].to_numpy()
    tables = np.stack([[xt, nt - xt], [xc, nc - xc]]).transpose(2, 0, 1)
    # strata without both outcomes carry no information on the odds ratio
    informative = (tables[:, :, 0].sum(axis=1) > 0) & (tables[:, :, 1].sum(axis=1) > 0)
    tables = tables[informative]
    if not len(tables):
        return {"cmh_odds_ratio": nan, "cmh_p_value": nan}
    with np.errstate(all="ignore"):
        strat = StratifiedTable(np.moveaxis(tables, 0, -1))
        return {
            "cmh_odds_ratio": float(strat.oddsratio_pooled),
            "cmh_p_value": float(strat.test_null_odds(correction=False).pvalue),
        }


def trend_check(
    values: pd.Series,
    is_treatment: pd.Series,
    periods: pd.Series,
    *,
    label: str = "",
    threshold: float = 0.01,
) -> Check:
    """Novelty / primacy: weighted regression of the per-period lift on time.

    The per-period lift is regressed on the period's position (days since
    the first period for datetimes) with weights 1 / its variance; the
    slope's t-test decides. A slope against the direction of the average
    lift is a fading effect (novelty); one with it is a growing effect
    (primacy: users needed time to adapt).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> day = pd.Series(np.repeat(np.arange(10), 200))
    >>> t = pd.Series(np.tile([False, True], 1000))
    >>> y = pd.Series(rng.normal(size=2000) + t * 1.0)
    >>> trend_check(y, t, day).status
    'ok'
    """
    import statsmodels.api as sm

    table = _per_period(values, is_treatment, period_index(periods))
    table = table[table["var_lift"] > 0]
    name = "novelty / primacy trend"
    if len(table) < 3:
        return Check(name, "skipped", f"{label}fewer than three periods with data in both arms.")
    x = table.index.to_numpy(float)
    fit = sm.WLS(
        table["lift"].to_numpy(), sm.add_constant(x), weights=1 / table["var_lift"].to_numpy()
    ).fit()
    slope, p = float(fit.params[1]), float(fit.pvalues[1])
    mean_lift = float(np.average(table["lift"], weights=1 / table["var_lift"]))
    details = {"table": table, "slope": slope, "intercept": float(fit.params[0])}
    if p < threshold:
        fading = np.sign(slope) != np.sign(mean_lift)
        kind = "novelty effect (the lift fades)" if fading else "primacy effect (the lift grows)"
        return Check(
            name,
            "flagged",
            f"{label}the lift trends by {fmt_num(slope)} per period ({fmt_p(p, with_p=True)}): a {kind}. "
            "The average lift is not the long-run lift; read the later periods or run longer.",
            float(fit.tvalues[1]),
            p,
            details,
        )
    return Check(
        name,
        "ok",
        f"{label}no trend in the lift over {len(table)} periods (slope {fmt_num(slope)} per "
        f"period, {fmt_p(p, with_p=True)}).",
        float(fit.tvalues[1]),
        p,
        details,
    )
