"""Logistic regression for propensity models: design, time split, fit, AUC and calibration.

The maximum-likelihood fit is statsmodels' ``Logit`` after a Newton pre-fit on
standardised predictors that detects separation; :func:`_fit_ridge` is the weak
ridge refit used when the maximum does not exist. :func:`auc_delong` gives the
holdout AUC with its DeLong interval and :func:`_calibration` the decile table.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from journeylab.core.errors import (
    NotComputableError,
    ParameterError,
    SchemaError,
    check_range,
    did_you_mean,
    require_columns,
)
from journeylab.core.results import fmt_pct
from journeylab.core.timeparse import to_utc_timestamp

__all__ = ["auc_delong"]

#: Columns of a feature table that are identifiers, dates or labels, never predictors.
_NOT_PREDICTORS = {"user_id", "as_of", "converted", "churned", "first_touch", "first_purchase"}


def auc_delong(y: Any, score: Any, *, alpha: float = 0.05) -> tuple[float, float, float, float]:
    """AUC with its DeLong standard error and normal interval.

    The AUC is the Mann–Whitney statistic ``U / (n1 n0)`` (ties count one
    half); the variance follows DeLong, DeLong & Clarke-Pearson (1988) with the
    midrank algorithm of Sun & Xu (2014). The interval is clipped to [0, 1].

    Returns
    -------
    tuple of float
        ``(auc, se, ci_low, ci_high)``.

    Examples
    --------
    >>> auc_delong([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])[0]
    0.75
    """
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=float)
    pos, neg = score[y], score[~y]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise NotComputableError(
            f"AUC needs both outcomes; the evaluation rows have {m} positives and {n} negatives."
        )
    tz = stats.rankdata(np.concatenate([pos, neg]))
    tx, ty = stats.rankdata(pos), stats.rankdata(neg)
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    auc = float(v10.mean())
    var = (np.var(v10, ddof=1) / m if m > 1 else 0.0) + (np.var(v01, ddof=1) / n if n > 1 else 0.0)
    se = float(np.sqrt(var))
    z = stats.norm.ppf(1 - alpha / 2)
    return auc, se, max(0.0, auc - z * se), min(1.0, auc + z * se)


def _calibration(y: np.ndarray, p: np.ndarray, bins: int, alpha: float) -> pd.DataFrame:
    from statsmodels.stats.proportion import proportion_confint

    ranks = stats.rankdata(p, method="ordinal")
    decile = np.minimum((ranks - 1) * bins // len(p), bins - 1) + 1
    frame = pd.DataFrame({"bin": decile, "p": p, "y": y})
    cal = frame.groupby("bin").agg(
        n=("y", "size"), predicted=("p", "mean"), observed=("y", "mean"), events=("y", "sum")
    )
    lo, hi = proportion_confint(
        cal["events"].to_numpy(), cal["n"].to_numpy(), alpha=alpha, method="wilson"
    )
    # The Wilson bounds at 0 or n events come out a rounding error beyond the
    # observed rate (1.7e-18 above 0); pin them so low <= observed <= high.
    observed = cal["observed"].to_numpy()
    return cal.assign(
        observed_ci_low=np.minimum(lo, observed), observed_ci_high=np.maximum(hi, observed)
    ).reset_index()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(x)


def _design(features: pd.DataFrame, design: dict) -> pd.DataFrame:
    """Build the model matrix for ``features`` from a fitted design (columns, dummy levels)."""
    cols = {"const": np.ones(len(features))}
    for name in design["numeric"]:
        if name not in features.columns:
            raise SchemaError(
                f"The feature table lacks predictor {name!r}{did_you_mean(name, features.columns)}.",
                column=name,
                missing_columns=[name],
            )
        cols[name] = pd.to_numeric(features[name], errors="coerce").astype(float).to_numpy()
    for name, levels in design["categorical"].items():
        values = features[name].astype("object").to_numpy()
        for level in levels:
            cols[f"{name}[{level}]"] = (values == level).astype(float)
    x = pd.DataFrame(cols, index=features.index)
    return x[design["columns"]]


def _choose_predictors(
    features: pd.DataFrame, target: str, predictors: Sequence[str] | None
) -> tuple[list, list]:
    if predictors is None:
        candidates = [c for c in features.columns if c not in _NOT_PREDICTORS and c != target]
    else:
        candidates = list(predictors)
        require_columns(features, candidates, what="features")
    numeric, categorical = [], []
    for c in candidates:
        s = features[c]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            numeric.append(c)
        elif not pd.api.types.is_datetime64_any_dtype(s):
            categorical.append(c)
    return numeric, categorical


def _split(
    features: pd.DataFrame,
    *,
    holdout: str,
    split_date: Any,
    test_size: float,
    seed: int,
    target: str,
):
    n = len(features)
    if holdout == "none":
        mask = np.ones(n, dtype=bool)
        return mask, mask, "in-sample (no holdout: optimistic)"
    if holdout == "random":
        check_range("test_size", test_size, low=0, high=1)
        rng = np.random.default_rng(seed)
        test = rng.random(n) < test_size
        return ~test, test, f"random {fmt_pct(test_size, 0)} of rows (seed {seed})"
    if "as_of" not in features.columns:
        raise SchemaError(
            "A time-based holdout needs the 'as_of' snapshot column of propensity_features/churn_features.",
            column="as_of",
            missing_columns=["as_of"],
            hint="pass holdout='random', or build features with as_of=[...]",
        )
    as_of = pd.to_datetime(features["as_of"], utc=True)
    dates = sorted(as_of.unique())
    if split_date is None:
        if len(dates) < 2:
            raise ParameterError(
                "A time-based holdout needs features at two or more as_of dates (one snapshot only: "
                f"{pd.Timestamp(dates[0]).date()}); pass as_of=[...] to the feature builder, or holdout='random'."
            )
        split = pd.Timestamp(dates[-1])
    else:
        split = to_utc_timestamp(split_date, "split_date")
    horizon = pd.Timedelta(days=float(features.attrs.get("horizon_days", 0.0)))
    # Training labels must be fully observed before the test period begins.
    train = (as_of + horizon <= split).to_numpy()
    test = (as_of >= split).to_numpy()
    if not train.any() or not test.any():
        raise NotComputableError(
            f"The time split at {split.date()} leaves {int(train.sum())} training and {int(test.sum())} test rows "
            f"(training snapshots must end their {horizon.days}-day label window by the split; test snapshots "
            f"start on or after it). Snapshot dates: {[str(pd.Timestamp(d).date()) for d in dates]}."
        )
    return (
        train,
        test,
        f"train snapshots whose label window ends by {split.date()}, test snapshots from {split.date()}",
    )


def _information(z: np.ndarray, p: np.ndarray) -> np.ndarray:
    # einsum rather than a BLAS product: for a few dozen columns it is as fast and does not
    # stall on a busy machine's BLAS threads.
    return np.einsum("ij,i,ik->jk", z, p * (1 - p), z)


def _newton(
    z: np.ndarray, y: np.ndarray, penalty: np.ndarray, *, maxiter: int, limit: float = np.inf
) -> tuple[np.ndarray, bool]:
    """Maximise ``loglik(γ) − ½ Σ penalty_j γ_j²`` by Newton–Raphson with step halving.

    Stops early (not converged) once a slope exceeds ``limit``: a sign of separation.
    """

    def objective(g: np.ndarray) -> float:
        eta = z @ g
        return float(np.sum(y * eta - np.logaddexp(0.0, eta)) - 0.5 * np.sum(penalty * g * g))

    gamma = np.zeros(z.shape[1])
    gamma[0] = np.log(y.mean() / (1 - y.mean()))
    current = objective(gamma)
    for _ in range(maxiter):
        p = _sigmoid(z @ gamma)
        grad = z.T @ (y - p) - penalty * gamma
        step = np.linalg.lstsq(_information(z, p) + np.diag(penalty), grad, rcond=None)[0]
        for _ in range(30):  # step halving keeps every step an ascent step
            candidate = objective(gamma + step)
            if candidate >= current - 1e-12:
                break
            step = step / 2
        gamma, current = gamma + step, candidate
        if np.max(np.abs(step)) < 1e-9:
            return gamma, True
        if np.max(np.abs(gamma[1:]), initial=0.0) > limit:
            return gamma, False
    return gamma, False


def _standardise(x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Standardised design (constant first) and the map ``A`` with ``beta = A @ gamma``."""
    xv = x.to_numpy(float)
    mean = xv[:, 1:].mean(axis=0)
    sd = xv[:, 1:].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = np.column_stack([np.ones(len(xv)), (xv[:, 1:] - mean) / sd])
    a = np.eye(z.shape[1])
    a[1:, 1:] = np.diag(1 / sd)
    a[0, 1:] = -mean / sd
    return z, a


#: Condition number of the standardised information matrix above which coefficients are
#: treated as not identified (predictors collinear for practical purposes).
MAX_CONDITION = 1e8


def _fit_logit(
    y: np.ndarray, x: pd.DataFrame
) -> tuple[pd.Series | None, pd.DataFrame | None, Any, str | None, str]:
    """Maximum-likelihood Logit (statsmodels): params, cov, results, the reason it failed, and a status.

    A Newton pre-fit on standardised predictors detects separation (coefficients
    that keep growing) and gives statsmodels its starting values. The status
    is ``"ok"``, ``"boundary"`` (separation: the maximum lies at infinity),
    ``"not_converged"`` or ``"not_identified"`` (singular information).
    """
    from statsmodels.discrete.discrete_model import Logit
    from statsmodels.tools.sm_exceptions import (
        ConvergenceWarning,
        HessianInversionWarning,
        PerfectSeparationError,
        PerfectSeparationWarning,
    )

    z, a = _standardise(x)
    gamma, converged = _newton(z, y, np.zeros(z.shape[1]), maxiter=50, limit=15.0)
    xv = x.to_numpy(float)[:, 1:]
    # A log-odds swing above 20 across a predictor's observed range means fitted
    # probabilities of ~1e-9 for some group: the likelihood is still climbing (quasi-separation)
    # even when the Newton steps have become numerically tiny.
    swing = np.abs((a @ gamma)[1:]) * (xv.max(axis=0) - xv.min(axis=0))
    if np.max(swing, initial=0.0) > 20 or np.max(np.abs(gamma[1:]), initial=0.0) > 15:
        return (
            None,
            None,
            None,
            "the outcome is (quasi-)separated by the predictors: the likelihood has no maximum",
            "boundary",
        )
    if not converged:
        return None, None, None, "the maximum-likelihood fit did not converge", "not_converged"
    information = _information(z, _sigmoid(z @ gamma))
    condition = np.linalg.cond(information)
    if not condition < MAX_CONDITION:
        return (
            None,
            None,
            None,
            f"the information matrix is singular (condition number {condition:.2g}): some predictors "
            "are (nearly) collinear, so their coefficients are not identified",
            "not_identified",
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = Logit(y, x).fit(start_params=a @ gamma, method="newton", maxiter=35, disp=0)
        except PerfectSeparationError:
            return (
                None,
                None,
                None,
                "the outcome is perfectly separated by the predictors",
                "boundary",
            )
        except np.linalg.LinAlgError:
            return (
                None,
                None,
                None,
                "the information matrix is singular (collinear predictors)",
                "not_identified",
            )
    kinds = {type(w.message) for w in caught}
    if PerfectSeparationWarning in kinds:
        return None, None, None, "the outcome is perfectly separated by the predictors", "boundary"
    if HessianInversionWarning in kinds or not np.all(np.isfinite(res.bse)):
        return (
            None,
            None,
            None,
            "the information matrix could not be inverted (collinear predictors)",
            "not_identified",
        )
    if ConvergenceWarning in kinds or not res.mle_retvals.get("converged", True):
        return None, None, None, "the maximum-likelihood fit did not converge", "not_converged"
    return res.params, res.cov_params(), res, None, "ok"


def _fit_ridge(y: np.ndarray, x: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Ridge logit on standardised predictors (prior N(0, 1) per SD), mapped back to original units.

    The covariance is the inverse of the penalised information at the optimum.
    """
    z, a = _standardise(x)
    penalty = np.r_[0.0, np.ones(z.shape[1] - 1)]
    gamma, _ = _newton(z, y, penalty, maxiter=200)
    cov_gamma = np.linalg.inv(_information(z, _sigmoid(z @ gamma)) + np.diag(penalty))
    beta = a @ gamma
    cov = a @ cov_gamma @ a.T
    return pd.Series(beta, index=x.columns), pd.DataFrame(cov, index=x.columns, columns=x.columns)
