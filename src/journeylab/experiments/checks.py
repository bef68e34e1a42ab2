"""Trust checks that run before any lift is believed.

- **Unique units**: the analysis counts rows as users, so each unit
  (``user_id``) must appear once and in one variant. Repeated units and units
  seen in more than one variant are counted (rows, units repeated, units in
  more than one variant) and either flagged or, on request, left out.
- **SRM** (sample ratio mismatch): a chi-square goodness-of-fit test of the
  observed users per variant against the *designed* split (not assumed
  equal: 95/5 designs exist). Flagged below p = 0.001.
- **Pre-period imbalance**: a covariate measured before exposure should not
  differ between arms; Welch test and standardised mean difference.
- **Simpson's guard**: when the traffic split changed across periods (or
  strata), the pooled comparison mixes periods with different baselines;
  the lift is also estimated within them and combined (Mantel-Haenszel risk
  difference for rates, traffic-weighted difference for means; see
  :func:`stratified_lift`), beside the pooled one, and leads the readout
  when the split changed.
- **Novelty / primacy**: a weighted regression of the per-period lift on
  time; a significant trend means the average lift is not the long-run one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from journeylab.core.errors import DataError, ParameterError, check_in
from journeylab.core.results import fmt_num, fmt_p, fmt_pct
from journeylab.experiments.frequentist import critical_value, interval, p_value

__all__ = [
    "Check",
    "unit_check",
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


def unit_check(
    data: pd.DataFrame,
    variant: str,
    unit: str | None,
    *,
    duplicates: Literal["flag", "drop"] = "flag",
) -> tuple[Check, pd.DataFrame]:
    """Check that each unit appears once, in one variant; flag or drop the others.

    Parameters
    ----------
    data : DataFrame
        The user-level table.
    variant : str
        The variant column.
    unit : str or None
        The unit (randomisation) id column; None skips the check, saying that
        every row is counted as one user.
    duplicates : {"flag", "drop"}
        ``"flag"`` keeps every row and flags the check; ``"drop"`` leaves out
        every row of a unit that appears more than once (its outcome and its
        arm are ambiguous), and counts them.

    Returns
    -------
    (Check, DataFrame)
        The check (``details``: ``rows``, ``units``, ``repeated_units``,
        ``repeated_rows``, ``cross_variant_units``, ``dropped_rows``,
        ``dropped_units``, ``examples`` and ``first_rows``) and the table the
        analysis goes on with.

    Examples
    --------
    >>> frame = pd.DataFrame({"user_id": [1, 2, 2, 3], "variant": ["a", "a", "b", "b"]})
    >>> check, kept = unit_check(frame, "variant", "user_id", duplicates="drop")
    >>> check.details["cross_variant_units"], len(kept)
    (1, 2)
    """
    check_in("duplicates", duplicates, ["flag", "drop"])
    name = "unique units"
    n_rows = len(data)
    if unit is None:
        return (
            Check(
                name,
                "skipped",
                f"No unit id column (user_id): each of the {n_rows:,} rows is counted as one "
                "user. Pass unit= to check that every unit appears once, in one variant.",
                details={"rows": n_rows},
            ),
            data,
        )
    ids = data[unit]
    if ids.isna().any():
        rows = np.flatnonzero(ids.isna().to_numpy())
        raise DataError(
            f"{rows.size:,} rows have no {unit}, so they cannot be counted as units.",
            column=unit,
            rows=rows.tolist(),
            hint="drop the rows without an id, or fill them from the assignment log.",
        )
    per_unit = ids.value_counts(sort=False)
    repeated = per_unit[per_unit > 1]
    in_repeated = ids.isin(repeated.index).to_numpy()
    arms = data.loc[in_repeated].groupby(unit, sort=False)[variant].nunique()
    cross = int((arms > 1).sum())
    first_rows = np.flatnonzero(in_repeated)[:10].tolist()
    examples = [str(u) for u in ids.iloc[np.flatnonzero(in_repeated)].drop_duplicates().head(5)]
    details: dict[str, Any] = {
        "unit": unit,
        "rows": n_rows,
        "units": int(per_unit.size),
        "repeated_units": int(repeated.size),
        "repeated_rows": int(in_repeated.sum()),
        "cross_variant_units": cross,
        "dropped_rows": 0,
        "dropped_units": 0,
        "examples": examples,
        "first_rows": first_rows,
        "duplicates": duplicates,
    }
    if repeated.empty:
        message = f"Each of the {n_rows:,} units ({unit}) appears once, in one variant."
        return Check(name, "ok", message, details=details), data
    found = (
        f"{n_rows:,} rows hold {per_unit.size:,} distinct {unit}: {repeated.size:,} {unit} "
        f"appear more than once ({int(in_repeated.sum()):,} rows; e.g. {', '.join(examples)}; "
        f"first rows {first_rows[:5]}), {cross:,} of them in more than one variant"
    )
    if duplicates == "drop":
        details["dropped_rows"] = int(in_repeated.sum())
        details["dropped_units"] = int(repeated.size)
        kept = data.loc[~in_repeated]
        message = (
            f"Repeated units left out: {found}. Every row of those {repeated.size:,} units is "
            f"left out (duplicates='drop'): the analysis counts {len(kept):,} users, one row each."
        )
        return Check(name, "ok", message, details=details), kept
    message = (
        f"Units are not unique: {found}. Each row is counted as a user below, so repeated units "
        "count more than once and units in more than one variant saw both arms. Pass "
        "duplicates='drop' to leave every row of a repeated unit out (counted), or de-duplicate "
        "the assignments first (journeylab.load_assignments reports them)."
    )
    return Check(name, "flagged", message, details=details), data


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
