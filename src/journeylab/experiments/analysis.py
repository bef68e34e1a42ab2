"""The experiment analysis: :func:`analyze` on a user-level table.

``analyze`` takes a user-level table (one row per user: the variant and the
metric columns), runs the trust checks first (unique units: each user once,
in one variant; sample ratio mismatch against
the designed split; pre-period imbalance when a covariate is given; a
split-change / Simpson's-paradox guard and a novelty / primacy trend test
when a period column is given), then compares every variant with the
control on every metric, adjusts the p-values across the family, and adds a
Bayesian readout. Anything that cannot be computed carries a status that
says why, never a number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from journeylab.core.errors import (
    NotComputableError,
    ParameterError,
    SchemaError,
    check_in,
    check_range,
    did_you_mean,
    require_columns,
)
from journeylab.experiments.bayesian import bayes_normal, bayes_proportions
from journeylab.experiments.checks import (
    SRM_THRESHOLD,
    Check,
    imbalance_check,
    srm_check,
    unit_check,
)
from journeylab.experiments.cuped import check_pre_exposure, cuped_adjust
from journeylab.experiments.frequentist import check_alternative, prop_test
from journeylab.experiments.metric_compare import _compare, _covariate_map
from journeylab.experiments.metrics import Metric, coerce_metrics, prepare_values
from journeylab.experiments.multiple import CORRECTION_NAMES, adjust_p_values
from journeylab.experiments.period_checks import (
    cmh_test,
    split_change_check,
    stratified_lift,
    trend_check,
)
from journeylab.experiments.period_guards import _combine_trends, _simpson_check, _strata
from journeylab.experiments.readout import FRAME_COLUMNS, STRAT_COLUMNS, ExperimentResult

__all__ = [
    "analyze",
]


def analyze(
    data: pd.DataFrame,
    variant: str = "variant",
    control: str = "control",
    metrics: Iterable[Metric | Mapping[str, Any] | str] | None = None,
    *,
    alpha: float = 0.05,
    alternative: Literal["two-sided", "larger", "smaller"] = "two-sided",
    design_split: Mapping[str, float] | None = None,
    covariates: str | Mapping[str, str] | None = None,
    covariate_measured_at: str | pd.Timestamp | Mapping[str, Any] | None = None,
    exposed_at: str = "assigned_at",
    period: str | None = None,
    strata: str | Sequence[str] | None = None,
    correction: Literal["holm", "fdr_bh", "bonferroni"] | None = "holm",
    ci_method: Literal["newcombe", "wald"] = "newcombe",
    yates: bool = False,
    bayesian: bool = True,
    prior: tuple[float, float] = (1.0, 1.0),
    min_users: int = 2,
    srm_threshold: float = SRM_THRESHOLD,
    unit: str | None = None,
    duplicates: Literal["flag", "drop"] = "flag",
) -> ExperimentResult:
    """Analyse an A/B/n experiment on a user-level table.

    Parameters
    ----------
    data : DataFrame
        One row per user: the variant column and the metric columns (see
        :func:`journeylab.experiments.user_metrics`).
    variant, control : str
        The variant column and the control's label; every other variant is
        compared with the control.
    metrics : list of Metric, dict or column name
        ``{"name": "booked", "kind": "binary"}``, ``Metric("revenue",
        winsorize=0.99)``, ``{"name": "rps", "kind": "ratio", "numerator":
        "revenue", "denominator": "sessions"}``. Defaults to the metrics
        recorded by ``user_metrics``.
    alpha : float
        Level of tests and intervals.
    alternative : {"two-sided", "larger", "smaller"}
        The alternative hypothesis, in statsmodels' naming: ``"larger"``
        tests treatment > control (``proportions_ztest([x_t, x_c], [n_t,
        n_c], alternative="larger")``, ``ttest_ind(treatment, control,
        alternative="larger", usevar="unequal")``), ``"smaller"`` treatment <
        control. p-values (pooled, stratified, relative) and intervals are
        then one-sided, the intervals open at one end (±inf); the Bayesian
        readout is unchanged.
    design_split : mapping variant -> share, optional
        The designed traffic split for the SRM check (equal when None).
    covariates : str or mapping metric -> column, optional
        Pre-period covariate(s) for CUPED (pooled θ); also checked for
        pre-period imbalance.
    covariate_measured_at : column, timestamp or mapping covariate -> either
        When the covariates were measured; any measured at or after
        ``exposed_at`` is refused.
    period : str, optional
        A period column (day, week); enables the split-change /
        Simpson's-paradox guard (period-stratified lifts) and the
        novelty / primacy trend test. Datetimes are floored to days.
    strata : str or list of str, optional
        Column(s) to stratify by (device, country), alone or crossed with
        ``period``. With a period or strata, ``to_frame()`` adds the
        stratified estimate beside the pooled one (``strat_abs_lift``,
        ``strat_ci_low``, ``strat_ci_high``, ``strat_p_value``,
        ``strat_p_value_adjusted``, ``headline_estimate``): the
        Mantel-Haenszel risk difference (Sato variance) for rates, the
        traffic-weighted difference for means (see
        :func:`~journeylab.experiments.stratified_lift`). When the split
        changed across the strata (or the direction reverses within them) the
        stratified estimate leads the summary and the plot
        (``headline_estimate == "stratified"``). Ratio metrics are not
        stratified.
    correction : "holm", "fdr_bh", "bonferroni" or None
        Multiple-testing adjustment across variants × metrics.
    ci_method : "newcombe" or "wald"
        Interval for a difference of proportions (the p-value is the pooled
        z-test either way).
    yates : bool
        Yates' continuity correction for proportions (R's ``prop.test``
        default; off here).
    bayesian : bool
        Add P(beats control), expected loss and credible intervals (exact
        beta-binomial for rates with a Beta ``prior``; normal model otherwise).
    min_users : int
        Fewer users than this in an arm makes a comparison not computable.
    unit : str, optional
        The unit id column (default ``user_id`` when the table has one). Every
        unit must appear once and in one variant; the "unique units" check
        counts the rows, the units repeated and the units in more than one
        variant. Without a unit column every row is counted as one user, and
        the check says so.
    duplicates : {"flag", "drop"}
        What to do with repeated units: flag the check and keep every row
        (default), or leave out every row of a repeated unit (counted in the
        check).

    Returns
    -------
    ExperimentResult

    Examples
    --------
    >>> frame = pd.DataFrame({"variant": ["control", "b"] * 500,
    ...                       "booked": [0, 0, 1, 1] * 250})
    >>> res = analyze(frame, metrics=[{"name": "booked", "kind": "binary"}])
    >>> res.to_frame()[["variant", "abs_lift"]].values.tolist()
    [['b', 0.0]]
    """
    check_range("alpha", alpha, low=0, high=1)
    check_in("correction", correction, list(CORRECTION_NAMES))
    check_alternative(alternative)
    if not isinstance(data, pd.DataFrame):
        raise ParameterError(f"data must be a pandas DataFrame; got {type(data).__name__}.")
    require_columns(data, [variant], what="experiment")
    labels = data[variant]
    if labels.isna().any():
        rows = np.flatnonzero(labels.isna().to_numpy())
        raise SchemaError(
            f"{rows.size:,} users have no variant.",
            column=variant,
            rows=rows.tolist(),
            hint="drop unassigned users before the analysis.",
        )
    if unit is None and "user_id" in data.columns:
        unit = "user_id"
    if unit is not None:
        require_columns(data, [unit], what="experiment")
    units, data = unit_check(data, variant, unit, duplicates=duplicates)
    labels = data[variant]
    control = str(control)
    present = list(dict.fromkeys(labels.astype(str)))
    if control not in present:
        raise ParameterError(
            f"control == {control!r} is not a value of column {variant!r} "
            f"{sorted(present)}{did_you_mean(control, present)}."
        )
    data = data.assign(**{variant: labels.astype(str)})
    if design_split is not None:
        designed = [str(v) for v in design_split]
        undesigned = [v for v in present if v not in designed]
        if undesigned:
            absent = [v for v in designed if v not in present]
            hint = did_you_mean(absent[0], undesigned) if absent else ""
            raise ParameterError(
                f"design_split must name every variant in the data; {undesigned} are not in "
                f"design_split {designed}{hint}."
            )
        # a designed variant with no users at all is kept: the SRM check flags it
        order = designed
    else:
        order = [control] + sorted(v for v in present if v != control)
    treatments = [v for v in order if v != control]
    if not treatments:
        dropped = units.details.get("dropped_rows", 0)
        after = f" after leaving out {dropped:,} rows of repeated units" if dropped else ""
        raise ParameterError(f"only the control {control!r} is present{after}: nothing to compare.")
    metric_list = coerce_metrics(metrics, data)
    cov_map = _covariate_map(covariates, metric_list)
    cov_cols = sorted(set(cov_map.values()))
    require_columns(data, cov_cols, what="experiment")
    if covariate_measured_at is not None:
        for cov in cov_cols:
            when = (
                covariate_measured_at.get(cov)
                if isinstance(covariate_measured_at, Mapping)
                else covariate_measured_at
            )
            if when is not None:
                check_pre_exposure(data, cov, when, exposed_at=exposed_at)

    # ---- trust checks first
    counts = data[variant].value_counts()
    checks = [
        units,
        srm_check({v: int(counts.get(v, 0)) for v in order}, design_split, threshold=srm_threshold),
    ]
    if cov_cols:
        checks.append(imbalance_check(data, variant, control, cov_cols))
    periods, strata_key, where = _strata(data, period, strata)
    if strata_key is not None:
        split_check = split_change_check(
            data.assign(_stratum=strata_key.to_numpy()), variant, "_stratum", what=where
        )
        checks.append(split_check)

    # ---- comparisons
    rows: list[dict[str, Any]] = []
    omnibus = []
    notes: list[str] = []
    trend_checks: list[Check] = []
    for metric in metric_list:
        values, cap_note = prepare_values(metric, data)
        if cap_note:
            notes.append(cap_note)
        covariate = cov_map.get(metric.name)
        x = theta = None
        if covariate is not None:
            x = pd.to_numeric(data[covariate], errors="coerce").to_numpy(float)
            missing = int(np.isnan(x).sum())
            if missing and missing < x.size:
                # a user without the covariate gets no adjustment (x at its mean)
                x = np.where(np.isnan(x), np.nanmean(x), x)
                notes.append(
                    f"{missing:,} users lack {covariate}; their {metric.name} is not CUPED-adjusted"
                )
            try:
                _, theta = cuped_adjust(values["y"].to_numpy(float), x)
            except NotComputableError as err:
                notes.append(f"CUPED skipped for {metric.name}: {err}")
                theta = None
        for arm in treatments:
            mask = (data[variant] == control) | (data[variant] == arm)
            part = values[mask.to_numpy()]
            is_t = (data.loc[mask, variant] == arm).to_numpy()
            comp, extra = _compare(
                metric,
                part,
                is_t,
                alpha=alpha,
                ci_method=ci_method,
                yates=yates,
                min_users=min_users,
                covariate=covariate,
                x=None if x is None else x[mask.to_numpy()],
                theta=theta,
                alternative=alternative,
            )
            row = {"metric": metric.name, "variant": arm, **comp.as_dict(), **extra}
            if cap_note:
                row["method"] += f"; {cap_note}"
            if bayesian and comp.computable:
                if metric.kind == "binary" and theta is None:
                    y = part["y"].to_numpy(float)
                    b = bayes_proportions(
                        int(y[~is_t].sum()),
                        int((~is_t).sum()),
                        int(y[is_t].sum()),
                        int(is_t.sum()),
                        prior=prior,
                        level=1 - alpha,
                    )
                else:
                    b = bayes_normal(0.0, comp.std_error**2, comp.abs_lift, 0.0, level=1 - alpha)
                row.update(
                    prob_beats_control=b.prob_treatment_better,
                    expected_loss=b.expected_loss,
                    credible_low=b.ci_low,
                    credible_high=b.ci_high,
                    bayes_prior=b.prior,
                    bayes_method=b.method,
                )
            if strata_key is not None and metric.kind != "ratio":
                is_treatment = pd.Series(is_t, index=part.index)
                strat = stratified_lift(
                    part["y"],
                    is_treatment,
                    strata_key[mask],
                    alpha=alpha,
                    alternative=alternative,
                    kind=metric.kind,
                )
                row.update(
                    strat_abs_lift=strat["abs_lift"],
                    strat_ci_low=strat["ci_low"],
                    strat_ci_high=strat["ci_high"],
                    strat_p_value=strat["p_value"],
                    strat_method=f"{strat['method']} over {strat['periods']:,} {where}"
                    + (
                        f"; {strat['users_left_out']:,} users in {where} without users in both "
                        "arms left out"
                        if strat["users_left_out"]
                        else ""
                    ),
                )
                if metric.kind == "binary":
                    row.update(cmh_test(part["y"], is_treatment, strata_key[mask]))
            if periods is not None and metric.kind != "ratio" and comp.computable:
                trend_checks.append(
                    trend_check(
                        part["y"],
                        pd.Series(is_t, index=part.index),
                        periods[mask],
                        label=f"{arm} on {metric.name}: ",
                    )
                )
            rows.append(row)
        if metric.kind == "binary" and len(treatments) >= 2:
            y = values["y"]
            grouped = y.groupby(data[variant].to_numpy()).agg(["sum", "count"]).reindex(order)
            grouped = grouped[grouped["count"] > 0]
            try:
                if len(grouped) < 3:
                    raise NotComputableError("fewer than three arms with users")
                chi2, df, p = prop_test(grouped["sum"], grouped["count"], correct=False)
                omnibus.append(
                    {
                        "metric": metric.name,
                        "arms": len(order),
                        "chi2": chi2,
                        "df": df,
                        "p_value": p,
                    }
                )
            except NotComputableError:
                pass
    table = pd.DataFrame(rows)
    table["p_value_adjusted"] = adjust_p_values(table["p_value"].to_numpy(float), correction)
    if strata_key is not None:
        if "strat_abs_lift" not in table.columns:
            for col in ("strat_abs_lift", "strat_ci_low", "strat_ci_high", "strat_p_value"):
                table[col] = np.nan
        table["strat_p_value_adjusted"] = adjust_p_values(
            table["strat_p_value"].to_numpy(float), correction
        )
        reversed_ = np.sign(table["abs_lift"]) != np.sign(table["strat_abs_lift"])
        usable = table["strat_ci_low"].notna() & table["abs_lift"].notna()
        lead = usable & (split_check.flagged | reversed_)
        table["headline_estimate"] = np.where(lead, "stratified", "pooled")
        if any(m.kind == "ratio" for m in metric_list):
            notes.append(f"ratio metrics are compared pooled only (not stratified by {where})")
    leading = FRAME_COLUMNS + [c for c in STRAT_COLUMNS if c in table.columns]
    table = table[leading + [c for c in table.columns if c not in leading]]

    if strata_key is not None:
        checks.append(_simpson_check(table, split_check, where))
    if periods is not None:
        checks.append(_combine_trends(trend_checks))
    return ExperimentResult(
        table,
        checks,
        control,
        alpha,
        correction,
        metric_list,
        pd.DataFrame(omnibus),
        notes,
        alternative=alternative,
    )
