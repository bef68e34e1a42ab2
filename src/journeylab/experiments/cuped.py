"""CUPED: variance reduction with a pre-period covariate.

The CUPED estimator (Deng, Xu, Kohavi & Walker, 2013) replaces the metric
``Y`` by ``Y - θ (X - mean(X))`` with one *pooled* ``θ = cov(X, Y) / var(X)``
over both arms, then compares the adjusted means. Regression adjustment
(ANCOVA, ``Y ~ T + (X - mean X)``, a within-arm slope) is a different
estimator, available only under its own name, :func:`ancova_lift`.

A covariate measured after exposure is affected by the treatment and biases
the estimate: when measurement times are known, such covariates are refused.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeylab.core.errors import DataError, NotComputableError
from journeylab.core.timeparse import to_utc_series, to_utc_timestamp

__all__ = ["cuped_theta", "cuped_adjust", "cuped_lift", "ancova_lift", "check_pre_exposure"]


def _arrays(y, x) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    if y.shape != x.shape:
        raise DataError(f"metric and covariate differ in length: {y.shape} vs {x.shape}.")
    return y, x


def cuped_theta(y, x) -> float:
    """Pooled CUPED coefficient ``θ = cov(X, Y) / var(X)`` over all users.

    Examples
    --------
    >>> round(cuped_theta([2, 3, 5, 4], [1, 2, 3, 4]), 3)
    0.8
    """
    y, x = _arrays(y, x)
    keep = ~(np.isnan(y) | np.isnan(x))
    y, x = y[keep], x[keep]
    var_x = x.var(ddof=1) if x.size > 1 else 0.0
    if not var_x > 0:
        raise NotComputableError(
            "the covariate has zero variance, so it cannot explain any of the metric's variance"
        )
    return float(np.cov(x, y, ddof=1)[0, 1] / var_x)


def cuped_adjust(y, x, theta: float | None = None) -> tuple[np.ndarray, float]:
    """Return ``(Y - θ (X - mean X), θ)``; θ pooled over all users unless given.

    Examples
    --------
    >>> adjusted, theta = cuped_adjust([2.0, 3.0, 5.0, 4.0], [1.0, 2.0, 3.0, 4.0])
    >>> round(float(adjusted.mean()), 2)
    3.5
    """
    y, x = _arrays(y, x)
    if theta is None:
        theta = cuped_theta(y, x)
    return y - theta * (x - np.nanmean(x)), float(theta)


def cuped_lift(y_control, x_control, y_treatment, x_treatment) -> dict[str, float]:
    """CUPED difference of means with pooled θ, and the variance reduction achieved.

    Returns a dict: ``theta``, ``raw_diff``, ``cuped_diff``,
    ``variance_reduction`` (1 - var(adjusted) / var(raw), within arms).

    Examples
    --------
    >>> out = cuped_lift(range(1, 9), range(1, 9), range(2, 10), range(1, 9))
    >>> round(out["cuped_diff"], 3)
    1.0
    """
    yc, xc = _arrays(y_control, x_control)
    yt, xt = _arrays(y_treatment, x_treatment)
    adjusted, theta = cuped_adjust(np.r_[yc, yt], np.r_[xc, xt])
    ac, at = adjusted[: yc.size], adjusted[yc.size :]
    raw_var = yc.var(ddof=1) / yc.size + yt.var(ddof=1) / yt.size
    adj_var = ac.var(ddof=1) / ac.size + at.var(ddof=1) / at.size
    return {
        "theta": theta,
        "raw_diff": float(yt.mean() - yc.mean()),
        "cuped_diff": float(at.mean() - ac.mean()),
        "variance_reduction": float(1 - adj_var / raw_var) if raw_var > 0 else float("nan"),
    }


def ancova_lift(y, x, treatment) -> float:
    """Treatment coefficient of the regression ``Y ~ T + (X - mean X)`` (ANCOVA).

    A different estimator from CUPED: its slope is the within-arm one.

    Examples
    --------
    >>> round(ancova_lift([1, 2, 3, 4], [1, 2, 1, 2], [0, 0, 1, 1]), 3)
    2.0
    """
    import statsmodels.api as sm

    y, x = _arrays(y, x)
    t = np.asarray(treatment, dtype=float)
    design = sm.add_constant(np.column_stack([t, x - x.mean()]))
    return float(sm.OLS(y, design).fit().params[1])


def check_pre_exposure(
    data: pd.DataFrame,
    covariate: str,
    measured_at: str | pd.Timestamp,
    *,
    exposed_at: str = "assigned_at",
) -> None:
    """Refuse a covariate measured at or after exposure.

    Parameters
    ----------
    data : DataFrame
        User-level table.
    covariate : str
        The covariate's column (for the message).
    measured_at : str or Timestamp
        A column of measurement times per user, or one time for all users
        (the end of the pre-period).
    exposed_at : str
        The column of exposure (assignment) times.

    Raises
    ------
    DataError
        Naming the covariate, the first offending users and what to do.

    Examples
    --------
    >>> frame = pd.DataFrame({"assigned_at": pd.to_datetime(["2026-05-02"]), "x": [1.0]})
    >>> check_pre_exposure(frame, "x", pd.Timestamp("2026-05-01"))
    """
    if exposed_at not in data.columns:
        raise DataError(
            f"cannot check when covariate {covariate!r} was measured: no {exposed_at!r} column.",
            column=exposed_at,
            hint=f"add the exposure time as {exposed_at!r}, or drop covariate_measured_at.",
        )
    exposure = to_utc_series(data[exposed_at], exposed_at)
    if isinstance(measured_at, str) and measured_at in data.columns:
        measured = to_utc_series(data[measured_at], measured_at)
        where = f"column {measured_at!r}"
    else:
        stamp = to_utc_timestamp(measured_at, "covariate_measured_at")
        measured = pd.Series(stamp, index=data.index)
        where = f"{stamp}"
    late = np.flatnonzero((measured >= exposure).to_numpy())
    if late.size:
        raise DataError(
            f"covariate {covariate!r} was measured at or after exposure ({where}) for "
            f"{late.size:,} of {len(data):,} users; a post-exposure covariate can be moved by the "
            "treatment and would bias the CUPED estimate.",
            column=covariate,
            rows=late.tolist(),
            hint="use a covariate measured before assignment (a pre-period metric).",
        )
