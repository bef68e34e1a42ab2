"""Trust checks across periods and strata: Simpson's guard and novelty / primacy.

When the traffic split changed across periods (or strata) the lift is also
estimated within them and combined (:func:`stratified_lift`, with the
Cochran-Mantel-Haenszel test); a trend of the per-period lift over time is
tested by :func:`trend_check`. See :mod:`journeylab.experiments.checks`.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from journeylab.core.results import fmt_num, fmt_p, fmt_pct
from journeylab.experiments.checks import SRM_THRESHOLD, Check
from journeylab.experiments.frequentist import critical_value, interval, p_value

__all__ = [
    "period_index",
    "split_change_check",
    "stratified_lift",
    "cmh_test",
    "trend_check",
]


def period_index(periods: pd.Series) -> pd.Series:
    """Return each period's position in time: days since the first for datetimes, else ranks."""
    if pd.api.types.is_datetime64_any_dtype(periods):
        first = periods.min()
        return ((periods - first) / pd.Timedelta(days=1)).astype(float)
    order = {p: i for i, p in enumerate(sorted(periods.dropna().unique()))}
    return periods.map(order).astype(float)


def split_change_check(
    data: pd.DataFrame,
    variant: str,
    period: str,
    *,
    threshold: float = SRM_THRESHOLD,
    what: str = "periods",
) -> Check:
    """Did the traffic split change across periods (or strata)? (chi-square of variant × period).

    ``what`` names the strata in the check's name and message ("periods",
    "strata").

    Examples
    --------
    >>> frame = pd.DataFrame({"variant": ["a", "b"] * 50, "day": [1] * 50 + [2] * 50})
    >>> split_change_check(frame, "variant", "day").status
    'ok'
    """
    name = f"split change across {what}"
    one = what.removesuffix("s") if what != "strata" else "stratum"
    table = pd.crosstab(data[period], data[variant])
    if table.shape[0] < 2 or table.shape[1] < 2:
        return Check(name, "skipped", f"Fewer than two {what}.")
    chi2, p, dof, _ = stats.chi2_contingency(table.to_numpy(), correction=False)
    shares = table.div(table.sum(axis=1), axis=0)
    spread = {c: (float(shares[c].min()), float(shares[c].max())) for c in shares.columns}
    described = ", ".join(f"{c} {fmt_pct(lo)}–{fmt_pct(hi)}" for c, (lo, hi) in spread.items())
    details = {"shares": shares, "counts": table}
    if p < threshold:
        return Check(
            name,
            "flagged",
            f"The traffic split changed across {what} (share per {one}: {described}; "
            f"chi-square {fmt_p(p, with_p=True)}). Pooled lifts mix {what} with different baselines "
            f"(Simpson's paradox risk): the {one}-stratified estimates lead the results.",
            float(chi2),
            float(p),
            details,
        )
    return Check(
        name,
        "ok",
        f"The traffic split was stable across {table.shape[0]} {what} ({fmt_p(p, with_p=True)}).",
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


def _stratum_counts(values: pd.Series, is_treatment: pd.Series, strata: pd.Series) -> pd.DataFrame:
    """Per stratum and arm: users, sum, mean and variance (ddof=1) of the metric."""
    frame = pd.DataFrame(
        {
            "y": values.astype(float).to_numpy(),
            "t": np.asarray(is_treatment, dtype=bool),
            "s": strata.to_numpy(),
        }
    ).dropna(subset=["y", "s"])
    g = frame.groupby(["s", "t"], sort=True, observed=True)["y"].agg(
        ["sum", "mean", "var", "count"]
    )
    g = g.unstack("t")
    out = pd.DataFrame(index=g.index)
    for arm, flag in (("control", False), ("treatment", True)):
        for stat, name in (("count", "n"), ("sum", "x"), ("mean", "mean"), ("var", "var")):
            out[f"{name}_{arm}"] = g[(stat, flag)] if (stat, flag) in g.columns else np.nan
    out[["n_control", "n_treatment"]] = out[["n_control", "n_treatment"]].fillna(0)
    return out


def stratified_lift(
    values: pd.Series,
    is_treatment: pd.Series,
    periods: pd.Series,
    *,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    kind: Literal["binary", "continuous"] | None = None,
) -> dict[str, Any]:
    """Lift within strata (periods, segments), combined across them.

    - **rates** (``kind="binary"``): the Mantel-Haenszel risk difference,
      stratum weights ``n_c n_t / (n_c + n_t)``, with Sato's (1989)
      variance, which holds for many small strata as for few large ones (SAS
      PROC FREQ ``COMMONRISKDIFF``; epiR ``epi.2by2``). Every stratum with at
      least one user in each arm counts.
    - **means**: the traffic-weighted (post-stratified) difference, stratum
      weights ``n / N`` (its share of the users), with the Neyman variance
      ``sum w^2 (s_c^2 / n_c + s_t^2 / n_t)``; it equals the treatment
      coefficient of OLS ``y ~ t * C(stratum)`` with centred stratum dummies
      and its HC2 standard error. Strata need two users in each arm.

    ``kind=None`` takes 0/1 values as rates. Returns a dict with
    ``abs_lift``, ``ci_low``, ``ci_high``, ``p_value`` (z-test, one-sided
    for ``alternative="larger"``/``"smaller"``), ``periods`` (strata used),
    ``users_left_out`` (users in strata without enough users in both arms)
    and ``method``.

    Examples
    --------
    >>> y = pd.Series([0, 1, 0, 1, 1, 1, 0, 0])
    >>> t = pd.Series([False, True] * 4)
    >>> round(stratified_lift(y, t, pd.Series([1, 1, 1, 1, 2, 2, 2, 2]))["abs_lift"], 3)
    0.5
    """
    y = pd.Series(values).astype(float)
    if kind is None:
        kind = "binary" if y.dropna().isin([0.0, 1.0]).all() else "continuous"
    table = _stratum_counts(y, pd.Series(is_treatment), pd.Series(periods))
    nan = float("nan")
    need = 1 if kind == "binary" else 2
    used = table[(table["n_control"] >= need) & (table["n_treatment"] >= need)]
    left_out = int(
        (table["n_control"] + table["n_treatment"]).sum()
        - (used["n_control"] + used["n_treatment"]).sum()
    )
    if kind == "binary":
        method = "Mantel-Haenszel risk difference (weights n_c n_t / n; Sato variance)"
    else:
        method = "traffic-weighted difference of means (weights n / N; Neyman variance)"
    out: dict[str, Any] = {
        "abs_lift": nan,
        "ci_low": nan,
        "ci_high": nan,
        "p_value": nan,
        "periods": int(len(used)),
        "users_left_out": left_out,
        "method": method,
    }
    if used.empty:
        return out
    nc, nt = used["n_control"].to_numpy(float), used["n_treatment"].to_numpy(float)
    if kind == "binary":
        xc, xt = used["x_control"].to_numpy(float), used["x_treatment"].to_numpy(float)
        n = nc + nt
        w = nc * nt / n
        est = float((w * (xt / nt - xc / nc)).sum() / w.sum())
        # Sato (1989), as SAS PROC FREQ documents it (row 1 = treatment, row 2 = control)
        p_sum = ((nt**2 * xc - nc**2 * xt + nt * nc * (nc - nt) / 2) / n**2).sum()
        q_sum = ((xt * (nc - xc) + xc * (nt - xt)) / (2 * n)).sum()
        var = float((est * p_sum + q_sum) / w.sum() ** 2)
    else:
        w = (nc + nt) / (nc + nt).sum()
        lift = used["mean_treatment"].to_numpy(float) - used["mean_control"].to_numpy(float)
        est = float((w * lift).sum())
        var = float(
            (
                w**2
                * (
                    used["var_control"].to_numpy(float) / nc
                    + used["var_treatment"].to_numpy(float) / nt
                )
            ).sum()
        )
    out["abs_lift"] = est
    if not var > 0:
        return out
    se = math.sqrt(var)
    low, high = interval(est, critical_value(alpha, alternative) * se, alternative)
    out.update(ci_low=low, ci_high=high, p_value=p_value(est / se, alternative), std_error=se)
    return out


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
