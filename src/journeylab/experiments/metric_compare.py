"""One metric, one variant against the control: the frequentist comparison and its Bayesian readout.

A step of :func:`journeylab.experiments.analyze`; anything that cannot be
computed carries a status that says why, never a number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import ParameterError
from journeylab.experiments.frequentist import (
    Comparison,
    compare_mean_stats,
    compare_proportions,
    compare_ratios,
)
from journeylab.experiments.metrics import Metric


def _covariate_map(covariates, metrics: list[Metric]) -> dict[str, str]:
    if covariates is None:
        return {}
    if isinstance(covariates, str):
        return {m.name: covariates for m in metrics if m.kind != "ratio"}
    if isinstance(covariates, Mapping):
        unknown = [k for k in covariates if k not in {m.name for m in metrics}]
        if unknown:
            raise ParameterError(
                f"covariates name unknown metric(s) {unknown}; metrics are {[m.name for m in metrics]}."
            )
        return {str(k): str(v) for k, v in covariates.items()}
    raise ParameterError(
        "covariates must be a column name (used for every metric) or a dict metric -> column."
    )


def _compare(
    metric: Metric,
    frame: pd.DataFrame,
    is_t: np.ndarray,
    *,
    alpha: float,
    ci_method: str,
    yates: bool,
    min_users: int,
    covariate: str | None,
    x: np.ndarray | None,
    theta: float | None,
    alternative: str,
) -> tuple[Comparison, dict[str, Any]]:
    y = frame["y"].to_numpy(float)
    extra: dict[str, Any] = {}
    if metric.kind == "ratio":
        d = frame["d"].to_numpy(float)
        comp = compare_ratios(
            y[~is_t],
            d[~is_t],
            y[is_t],
            d[is_t],
            alpha=alpha,
            min_users=min_users,
            alternative=alternative,
        )
        return comp, extra
    keep = ~np.isnan(y)
    yc, yt = y[keep & ~is_t], y[keep & is_t]
    if covariate is not None and theta is not None:
        adj = y - theta * (x - np.nanmean(x))
        ac, at = adj[keep & ~is_t], adj[keep & is_t]
        raw_var = (
            (yc.var(ddof=1) / yc.size + yt.var(ddof=1) / yt.size)
            if min(yc.size, yt.size) > 1
            else np.nan
        )
        comp = compare_mean_stats(
            float(ac.mean()) if ac.size else np.nan,
            float(ac.var(ddof=1)) if ac.size > 1 else np.nan,
            ac.size,
            float(at.mean()) if at.size else np.nan,
            float(at.var(ddof=1)) if at.size > 1 else np.nan,
            at.size,
            alpha=alpha,
            min_users=min_users,
            kind=metric.kind,
            method=f"CUPED (pooled θ, covariate {covariate}) + Welch t-test on adjusted values; "
            "relative lift: delta method on adjusted means",
            alternative=alternative,
        )
        adj_var = comp.std_error**2
        extra = {
            "cuped_covariate": covariate,
            "cuped_theta": theta,
            "raw_abs_lift": float(yt.mean() - yc.mean()) if min(yc.size, yt.size) else np.nan,
            "variance_reduction": float(1 - adj_var / raw_var)
            if raw_var and raw_var > 0
            else np.nan,
        }
        # show the observed means; the lift is the CUPED estimate
        if comp.computable:
            comp.control_mean, comp.treatment_mean = float(yc.mean()), float(yt.mean())
        return comp, extra
    if metric.kind == "binary":
        comp = compare_proportions(
            int(yc.sum()),
            yc.size,
            int(yt.sum()),
            yt.size,
            alpha=alpha,
            ci_method=ci_method,
            yates=yates,
            min_users=min_users,
            alternative=alternative,
        )
    else:
        comp = compare_mean_stats(
            float(yc.mean()) if yc.size else np.nan,
            float(yc.var(ddof=1)) if yc.size > 1 else np.nan,
            yc.size,
            float(yt.mean()) if yt.size else np.nan,
            float(yt.var(ddof=1)) if yt.size > 1 else np.nan,
            yt.size,
            alpha=alpha,
            min_users=min_users,
            alternative=alternative,
        )
    return comp, extra
