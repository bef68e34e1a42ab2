"""Uplift models: the two-model (T-learner) and class-transformation logits and their design matrix.

Each model is fitted on the training rows of a randomised test by
:func:`journeylab.customers.uplift.fit_uplift` and predicts each person's
incremental effect ``τ(x)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.special import expit

from journeylab.core.errors import DataError, NotComputableError

__all__ = [
    "TwoModelUplift",
    "ClassTransformationUplift",
    "MODELS",
    "ModelName",
]


ModelName = Literal["two_model", "class_transformation"]
#: Model names and their labels in tables and plots.
MODELS = {"two_model": "two-model (T-learner)", "class_transformation": "class transformation"}


# --------------------------------------------------------------------------- design matrix
@dataclass
class _Design:
    """Columns of the model matrix: numeric features and dummy levels fixed on training rows."""

    numeric: list[str]
    levels: dict[str, list[str]]
    reference: dict[str, str]

    @classmethod
    def learn(cls, frame: pd.DataFrame, features: Sequence[str]) -> _Design:
        numeric, levels, reference = [], {}, {}
        for name in features:
            values = frame[name]
            if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
                numeric.append(name)
            else:
                counts = values.astype(str).value_counts(sort=False)
                counts = counts.sort_values(ascending=False, kind="stable")
                reference[name] = str(counts.index[0])
                levels[name] = sorted(str(v) for v in counts.index[1:])
        return cls(numeric, levels, reference)

    @property
    def columns(self) -> list[str]:
        return [
            "const",
            *self.numeric,
            *(f"{c}[{lv}]" for c, lvs in self.levels.items() for lv in lvs),
        ]

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        cols = [np.ones(len(frame))]
        cols += [pd.to_numeric(frame[c]).to_numpy(float) for c in self.numeric]
        for name, lvs in self.levels.items():
            values = frame[name].astype(str).to_numpy()
            cols += [(values == lv).astype(float) for lv in lvs]
        return np.column_stack(cols)

    def describe(self) -> dict[str, Any]:
        return {"columns": self.columns, "reference_levels": dict(self.reference)}


# --------------------------------------------------------------------------- models
def _logit(
    y: np.ndarray,
    x: np.ndarray,
    columns: list[str],
    what: str,
    *,
    weights: np.ndarray | None = None,
):
    """Maximum-likelihood (weighted) logit; returns coefficients, covariance and the method used.

    Unweighted fits are statsmodels ``Logit``; weighted fits are statsmodels
    ``GLM(Binomial, freq_weights=w)`` for the point estimate and a sandwich
    covariance ``A⁻¹ B A⁻¹`` (``A = Σ w p(1−p) x xᵀ``, ``B = Σ w² (y−p)² x xᵀ``),
    since the weights are design weights, not replicate counts. When the
    outcome is (quasi-)separated the likelihood has no maximum; the fit is then
    a weak ridge (a N(0, 1) prior on each standardised coefficient), whose
    covariance uses the penalised information, and the method says so.
    """
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    if y.min() == y.max():
        raise NotComputableError(
            f"Every {what} training row has outcome {int(y[0])}: there is nothing to model. "
            "Use more data or a more common outcome."
        )
    keep = np.r_[True, x[:, 1:].std(axis=0) > 0]
    if not keep.all():
        # A column constant in these rows (a level one arm never has) carries no information
        # here: its coefficient is fixed at 0 with no variance, and the method says so.
        constant = [c for c, k in zip(columns, keep, strict=True) if not k]
        beta, cov, method = _logit(
            y,
            x[:, keep],
            [c for c, k in zip(columns, keep, strict=True) if k],
            what,
            weights=weights,
        )
        full_beta = np.zeros(len(columns))
        full_beta[keep] = beta
        full_cov = np.zeros((len(columns), len(columns)))
        full_cov[np.ix_(keep, keep)] = cov
        return (
            full_beta,
            full_cov,
            f"{method}; constant in these rows, coefficient fixed at 0: {', '.join(constant)}",
        )
    w = np.ones(len(y)) if weights is None else weights
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if weights is None:
                res = sm.Logit(y, x).fit(method="newton", maxiter=100, disp=0)
                converged = bool(res.mle_retvals.get("converged", True))
            else:
                res = sm.GLM(y, x, family=sm.families.Binomial(), freq_weights=weights).fit(
                    maxiter=100
                )
                converged = bool(res.converged)
            beta = np.asarray(res.params, dtype=float)
        except (np.linalg.LinAlgError, ValueError, OverflowError):  # singular or separated designs
            converged, beta = False, None
    kinds = {type(m.message) for m in caught}
    separated = PerfectSeparationWarning in kinds or ConvergenceWarning in kinds or not converged
    # A log-odds swing above 20 across a column's range means fitted probabilities of ~1e-9: the
    # likelihood is still climbing (quasi-separation) even if the optimiser stopped.
    if not separated:
        swing = np.abs(beta[1:]) * (x[:, 1:].max(axis=0) - x[:, 1:].min(axis=0))
        separated = bool(np.max(swing, initial=0.0) > 20)
    if separated:
        beta, penalty = _ridge_logit(y, x, w)
        method = (
            "ridge logit (N(0, 1) prior per standardised coefficient: the outcome is separated)"
        )
    else:
        penalty = np.zeros((len(beta), len(beta)))
        method = "maximum-likelihood logit"
    p = expit(x @ beta)
    a = np.einsum("ij,i,ik->jk", x, w * p * (1 - p), x) + penalty
    a_inv = np.linalg.inv(a)
    if weights is None:
        cov = a_inv
    else:
        b = np.einsum("ij,i,ik->jk", x, (w * (y - p)) ** 2, x)
        cov = a_inv @ b @ a_inv
    if not np.all(np.isfinite(cov)):
        raise NotComputableError(f"The {what} logit has no finite covariance; use fewer features.")
    return beta, cov, method


def _ridge_logit(y: np.ndarray, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted logit with a N(0, 1) prior per standardised coefficient (Newton with step halving).

    Returns the coefficients on the original scale and the penalty matrix on that scale.
    """
    mean, sd = x[:, 1:].mean(axis=0), x[:, 1:].std(axis=0)
    z = np.column_stack([np.ones(len(x)), (x[:, 1:] - mean) / sd])
    pen = np.r_[0.0, np.ones(z.shape[1] - 1)]

    def objective(g):
        eta = z @ g
        return float(np.sum(w * (y * eta - np.logaddexp(0.0, eta))) - 0.5 * np.sum(pen * g * g))

    g = np.zeros(z.shape[1])
    g[0] = np.log(np.average(y, weights=w) / (1 - np.average(y, weights=w)))
    current = objective(g)
    for _ in range(200):
        p = expit(z @ g)
        grad = z.T @ (w * (y - p)) - pen * g
        hess = np.einsum("ij,i,ik->jk", z, w * p * (1 - p), z) + np.diag(pen)
        step = np.linalg.solve(hess, grad)
        for _ in range(30):
            candidate = objective(g + step)
            if candidate >= current - 1e-12:
                break
            step = step / 2
        g, current = g + step, candidate
        if np.max(np.abs(step)) < 1e-10:
            break
    # beta = A g with A mapping standardised to original units; the penalty transforms as A^-T P A^-1.
    a = np.eye(z.shape[1])
    a[1:, 1:] = np.diag(1 / sd)
    a[0, 1:] = -mean / sd
    a_inv = np.linalg.inv(a)
    return a @ g, a_inv.T @ np.diag(pen) @ a_inv


class TwoModelUplift:
    """Two-model (T-learner) uplift: one logit per arm, ``τ(x) = p₁(x) − p₀(x)``.

    Attributes (after :meth:`fit`)
    ------------------------------
    params_ : dict
        ``{"treated": β₁, "control": β₀}`` log-odds coefficients.
    cov_ : dict
        Their covariances (maximum-likelihood).
    """

    name = "two_model"

    def fit(
        self, x: np.ndarray, treated: np.ndarray, y: np.ndarray, columns: list[str]
    ) -> TwoModelUplift:
        """Fit the two logits; ``x`` includes the constant column."""
        t = treated.astype(bool)
        b1, c1, m1 = _logit(y[t], x[t], columns, "treated")
        b0, c0, m0 = _logit(y[~t], x[~t], columns, "control")
        self.params_ = {"treated": b1, "control": b0}
        self.cov_ = {"treated": c1, "control": c0}
        self.methods_ = {"treated": m1, "control": m0}
        self.columns_ = list(columns)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted uplift per row."""
        return expit(x @ self.params_["treated"]) - expit(x @ self.params_["control"])

    def mean_uplift(self, x: np.ndarray) -> tuple[float, float]:
        """Mean predicted uplift over the rows of ``x`` and its delta-method standard error."""
        var = 0.0
        for arm in ("treated", "control"):
            p = expit(x @ self.params_[arm])
            grad = (p * (1 - p)) @ x / len(x)
            var += float(grad @ self.cov_[arm] @ grad)
        return float(self.predict(x).mean()), math.sqrt(var)

    def describe(self) -> dict[str, Any]:
        """Return the method and its coefficients, for manifests."""
        return {
            "method": "two-model uplift: one logit per arm (statsmodels Logit)",
            "fits": dict(self.methods_),
            "coefficients": {
                arm: dict(zip(self.columns_, map(float, beta), strict=True))
                for arm, beta in self.params_.items()
            },
        }


class ClassTransformationUplift:
    """Class-transformation uplift (Jaskowski & Jaroszewicz 2012), weighted for unequal arms.

    ``z = 1`` for treated responders and control non-responders; rows weigh
    ``1/(2e)`` (treated) and ``1/(2(1−e))`` (control) so that
    ``P(z=1 | x) = (1 + τ(x)) / 2`` for any treated share ``e``.

    Attributes (after :meth:`fit`)
    ------------------------------
    params_ : numpy.ndarray
        Log-odds coefficients of ``P(z = 1 | x)``.
    cov_ : numpy.ndarray
        Their sandwich covariance.
    treated_share_ : float
        ``e`` in training.
    """

    name = "class_transformation"

    def fit(
        self, x: np.ndarray, treated: np.ndarray, y: np.ndarray, columns: list[str]
    ) -> ClassTransformationUplift:
        """Fit the weighted logit of the transformed class; ``x`` includes the constant column."""
        t = treated.astype(float)
        e = float(t.mean())
        z = t * y + (1 - t) * (1 - y)
        w = t / (2 * e) + (1 - t) / (2 * (1 - e))
        self.params_, self.cov_, self.method_ = _logit(
            z, x, columns, "transformed-class", weights=w
        )
        self.treated_share_ = e
        self.columns_ = list(columns)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted uplift per row."""
        return 2 * expit(x @ self.params_) - 1

    def mean_uplift(self, x: np.ndarray) -> tuple[float, float]:
        """Mean predicted uplift over the rows of ``x`` and its delta-method standard error."""
        p = expit(x @ self.params_)
        grad = 2 * (p * (1 - p)) @ x / len(x)
        return float(self.predict(x).mean()), math.sqrt(float(grad @ self.cov_ @ grad))

    def describe(self) -> dict[str, Any]:
        """Return the method and its coefficients, for manifests."""
        return {
            "method": (
                "class transformation: weighted logit of z = treated responder or control non-responder "
                "(statsmodels GLM Binomial, sandwich covariance); uplift = 2 P(z=1|x) - 1"
            ),
            "fit": self.method_,
            "treated_share": self.treated_share_,
            "coefficients": dict(zip(self.columns_, map(float, self.params_), strict=True)),
        }


_MODEL_CLASSES = {"two_model": TwoModelUplift, "class_transformation": ClassTransformationUplift}


# --------------------------------------------------------------------------- helpers shared with fitting
def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _check_complete(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    for c in columns:
        bad = frame[c].isna().to_numpy()
        if bad.any():
            raise DataError(
                f"The {what} table has {int(bad.sum()):,} missing value(s) in feature {c!r}.",
                column=c,
                rows=[int(i) + 1 for i in np.flatnonzero(bad)],
                hint="fill or drop those rows, or leave the feature out.",
            )
