"""Uplift: whom a campaign actually moves, from an experiment with a randomised holdout.

A propensity model says who will convert; an uplift model says who converts
*because* of the campaign. From a randomised test (treated vs a holdout that
got nothing) :func:`fit_uplift` estimates each person's incremental effect
``τ(x) = P(y=1 | x, treated) − P(y=1 | x, control)`` and checks the ranking on
held-out people. The rules, in order:

1. **Data**: one row per person with the arm column (``variant``), a 0/1
   ``outcome`` and the ``features``. Rows of ``control`` are the holdout, rows
   of the ``treatment`` labels (default: every other variant) are treated;
   rows of other variants are left out and counted. A missing or non-0/1
   outcome and a missing feature value are errors naming the column and rows.
2. **Split**: a seeded random ``test_size`` share of *each arm* is held out;
   the models are fitted on the rest and every metric is computed on the test
   rows only.
3. **Design**: numeric features enter as they are; text/categorical features
   become dummies against their most frequent training level; levels unseen in
   training count as the reference level.
4. **Two-model (T-learner)**: one maximum-likelihood logit (statsmodels) per
   arm; ``τ(x) = p_treated(x) − p_control(x)``.
5. **Class transformation** (Jaskowski & Jaroszewicz 2012; the binary case of
   Athey & Imbens' transformed outcome): ``z = 1`` for treated responders and
   control non-responders. With half the people treated,
   ``P(z=1 | x) = (1 + τ(x)) / 2``. For other shares the rows are weighted
   ``1 / (2e)`` (treated) and ``1 / (2(1 − e))`` (control), ``e`` the treated
   share in training, which restores that identity exactly; one weighted logit,
   ``τ(x) = 2 P(z=1 | x) − 1``, with a sandwich covariance.
6. **Ranking** by predicted uplift, highest first. The Qini and uplift curves
   group tied predictions (a tie group enters at once, so row order cannot
   move them); deciles and the top share cut the ordered rows, ties keeping
   the test rows' order.
7. **Curves and coefficient** (Radcliffe 2007; Gutierrez & Gérardy 2017):
   after targeting the first ``t`` people, with ``Y_T, Y_C`` responders and
   ``N_T, N_C`` people treated/control among them, the Qini curve is
   ``g(t) = Y_T − Y_C · N_T / N_C`` (``Y_C · N_T / N_C`` taken as 0 while
   ``N_C = 0``) and the uplift curve ``f(t) = (Y_T/N_T − Y_C/N_C)(N_T + N_C)``
   (a rate with no people counts 0). The **Qini coefficient** is the area
   between the Qini curve and the random-targeting line from ``(0, 0)`` to
   ``(N, g(N))`` (trapezoids between tie-group ends), divided by ``N²`` so that
   both axes are shares of the evaluated people: incremental responders per
   person, averaged over every targeting depth. 0 is no better than random.
   Its interval is a percentile bootstrap (seeded, ``n_boot`` resamples of
   the test rows within each arm, predictions fixed): it measures how sure we
   are of the ranking's value on people like the test set, not model refits.
8. **Deciles and recommendation**: per decile (1 = highest predicted uplift)
   the treated/control counts and response rates and the observed uplift with
   a Newcombe hybrid-score interval (statsmodels ``confint_proportions_2indep``);
   the recommendation compares the observed uplift in the top ``top_share`` of
   the ranking with the uplift of sending to everyone, per 1,000 people sent.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from journeylab.core.errors import (
    DataError,
    NotComputableError,
    ParameterError,
    check_range,
    did_you_mean,
    require_columns,
)
from journeylab.core.results import Result, fmt_ci, fmt_num, fmt_pct, fmt_pp

__all__ = [
    "fit_uplift",
    "UpliftResult",
    "TwoModelUplift",
    "ClassTransformationUplift",
    "qini_curve",
    "uplift_curve",
    "qini_coefficient",
    "uplift_by_decile",
    "top_share_uplift",
    "MODELS",
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


# --------------------------------------------------------------------------- evaluation formulas
def _ordered(uplift: np.ndarray) -> np.ndarray:
    """Row order by predicted uplift, highest first; ties keep the rows' order."""
    return np.argsort(-np.asarray(uplift, dtype=float), kind="stable")


def _curve_knots(y, treated, uplift, weights=None):
    """Cumulative counts at the end of each tie group of the ranking (the curves' knots)."""
    order = _ordered(uplift)
    u = np.asarray(uplift, dtype=float)[order]
    t = np.asarray(treated, dtype=float)[order]
    r = np.asarray(y, dtype=float)[order]
    w = np.ones_like(r) if weights is None else np.asarray(weights, dtype=float)[..., order]
    ends = np.r_[np.flatnonzero(np.diff(u) != 0), len(u) - 1]
    n_t = np.cumsum(w * t, axis=-1)[..., ends]
    n_c = np.cumsum(w * (1 - t), axis=-1)[..., ends]
    y_t = np.cumsum(w * t * r, axis=-1)[..., ends]
    y_c = np.cumsum(w * (1 - t) * r, axis=-1)[..., ends]
    return n_t, n_c, y_t, y_c


def _ratio(num, den):
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    return np.divide(num, den, out=np.zeros(num.shape), where=den > 0)


def qini_curve(y: Any, treated: Any, uplift: Any) -> pd.DataFrame:
    """Qini curve ``g(t) = Y_T − Y_C · N_T / N_C`` at each tie-group end of the ranking.

    Returns a frame with ``targeted`` (people, starting at 0), ``share``
    (of all people) and ``incremental`` (``g``), as in Radcliffe (2007).

    Examples
    --------
    >>> qini_curve([1, 0, 0, 0], [1, 0, 1, 0], [0.4, 0.3, 0.2, 0.1])["incremental"].tolist()
    [0.0, 1.0, 1.0, 1.0, 1.0]
    """
    n_t, n_c, y_t, y_c = _curve_knots(y, treated, uplift)
    g = y_t - y_c * _ratio(n_t, n_c)
    targeted = n_t + n_c
    return pd.DataFrame(
        {
            "targeted": np.r_[0.0, targeted],
            "share": np.r_[0.0, targeted / targeted[-1]],
            "incremental": np.r_[0.0, g],
        }
    )


def uplift_curve(y: Any, treated: Any, uplift: Any) -> pd.DataFrame:
    """Uplift curve ``f(t) = (Y_T/N_T − Y_C/N_C)(N_T + N_C)`` (Gutierrez & Gérardy 2017).

    Same layout as :func:`qini_curve`.
    """
    n_t, n_c, y_t, y_c = _curve_knots(y, treated, uplift)
    f = (_ratio(y_t, n_t) - _ratio(y_c, n_c)) * (n_t + n_c)
    targeted = n_t + n_c
    return pd.DataFrame(
        {
            "targeted": np.r_[0.0, targeted],
            "share": np.r_[0.0, targeted / targeted[-1]],
            "incremental": np.r_[0.0, f],
        }
    )


def _qini_area(n_t, n_c, y_t, y_c) -> np.ndarray:
    g = y_t - y_c * _ratio(n_t, n_c)
    x = n_t + n_c
    n = x[..., -1:]
    g0 = np.concatenate([np.zeros(g.shape[:-1] + (1,)), g], axis=-1)
    x0 = np.concatenate([np.zeros(x.shape[:-1] + (1,)), x], axis=-1)
    area = np.sum(np.diff(x0, axis=-1) * (g0[..., 1:] + g0[..., :-1]) / 2, axis=-1)
    random = g[..., -1] * n[..., 0] / 2
    return (area - random) / n[..., 0] ** 2


def qini_coefficient(y: Any, treated: Any, uplift: Any) -> float:
    """Area between the Qini curve and the random-targeting line, both axes as shares of people.

    See rule 7 of :mod:`journeylab.customers.uplift`. A constant score (one tie group)
    gives exactly 0.

    Examples
    --------
    >>> qini_coefficient([1, 0, 0, 1], [1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5])
    0.0
    """
    return float(_qini_area(*_curve_knots(y, treated, uplift)))


def _bootstrap_qini(y, treated, uplift, n_boot: int, *, seed: int, chunk: int = 100) -> np.ndarray:
    """Qini coefficients of ``n_boot`` resamples of the rows within each arm (predictions fixed)."""
    rng = np.random.default_rng(seed)
    treated = np.asarray(treated, dtype=bool)
    arms = [np.flatnonzero(treated), np.flatnonzero(~treated)]
    out = []
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        weights = np.zeros((size, len(treated)))
        for rows in arms:
            draws = rng.integers(0, len(rows), size=(size, len(rows)))
            for b in range(size):
                weights[b] += np.bincount(rows[draws[b]], minlength=len(treated))
        out.append(_qini_area(*_curve_knots(y, treated, uplift, weights)))
    return np.concatenate(out)


def _newcombe(
    y_t: float, n_t: float, y_c: float, n_c: float, *, alpha: float
) -> tuple[float, float]:
    from statsmodels.stats.proportion import confint_proportions_2indep

    if n_t == 0 or n_c == 0:
        return float("nan"), float("nan")
    lo, hi = confint_proportions_2indep(
        int(y_t), int(n_t), int(y_c), int(n_c), method="newcomb", compare="diff", alpha=alpha
    )
    return float(lo), float(hi)


def _group_row(y: np.ndarray, t: np.ndarray, alpha: float) -> dict[str, float]:
    n_t, n_c = float(t.sum()), float((1 - t).sum())
    y_t, y_c = float((y * t).sum()), float((y * (1 - t)).sum())
    rate_t = y_t / n_t if n_t else float("nan")
    rate_c = y_c / n_c if n_c else float("nan")
    lo, hi = _newcombe(y_t, n_t, y_c, n_c, alpha=alpha)
    return {
        "n_treated": int(n_t),
        "n_control": int(n_c),
        "responders_treated": int(y_t),
        "responders_control": int(y_c),
        "rate_treated": rate_t,
        "rate_control": rate_c,
        "uplift": rate_t - rate_c,
        "ci_low": lo,
        "ci_high": hi,
    }


def uplift_by_decile(
    y: Any, treated: Any, uplift: Any, *, bins: int = 10, alpha: float = 0.05
) -> pd.DataFrame:
    """Observed uplift per bin of predicted uplift (bin 1 = highest), with Newcombe intervals.

    Row ``k`` (0-based, in ranking order) falls in bin ``⌊k · bins / N⌋ + 1``.

    Returns
    -------
    pandas.DataFrame
        ``decile``, ``n_treated``, ``n_control``, ``responders_treated``,
        ``responders_control``, ``rate_treated``, ``rate_control``, ``uplift``,
        ``ci_low``, ``ci_high``, ``predicted_uplift`` (mean prediction).
    """
    order = _ordered(uplift)
    y = np.asarray(y, dtype=float)[order]
    t = np.asarray(treated, dtype=float)[order]
    u = np.asarray(uplift, dtype=float)[order]
    decile = np.arange(len(u)) * bins // len(u) + 1
    rows = []
    for d in range(1, bins + 1):
        m = decile == d
        rows.append(
            {"decile": d, **_group_row(y[m], t[m], alpha), "predicted_uplift": float(u[m].mean())}
        )
    return pd.DataFrame(rows)


def top_share_uplift(
    y: Any, treated: Any, uplift: Any, share: float, *, alpha: float = 0.05
) -> dict[str, float]:
    """Observed uplift among the first ``ceil(share · N)`` people of the ranking."""
    check_range("share", share, low=0, high=1, high_inclusive=True)
    order = _ordered(uplift)
    k = math.ceil(share * len(order) - 1e-9)
    top = order[:k]
    return _group_row(np.asarray(y, float)[top], np.asarray(treated, float)[top], alpha) | {
        "targeted": k
    }


# --------------------------------------------------------------------------- result
@dataclass(repr=False, eq=False)
class UpliftResult(Result):
    """Fitted uplift models and their evaluation on held-out people.

    Attributes
    ----------
    models : dict
        Fitted :class:`TwoModelUplift` / :class:`ClassTransformationUplift` by name.
    predictions : pandas.DataFrame
        The test rows: ``user_id`` when present, ``treated``, ``y`` and one
        ``uplift_<model>`` column per model.
    deciles : pandas.DataFrame
        :func:`uplift_by_decile` per model (column ``model``).
    qini : pandas.DataFrame
        One row per model: ``qini``, ``qini_ci_low``, ``qini_ci_high`` and the
        top-share figures (``top_uplift`` with its interval, ``all_uplift``
        with its interval, ``top_share_of_incremental``).
    best : str
        The model with the highest Qini coefficient on the test rows.
    """

    models: dict[str, Any]
    predictions: pd.DataFrame
    deciles: pd.DataFrame
    qini: pd.DataFrame
    data: pd.DataFrame
    design: _Design
    settings: dict[str, Any]
    counts: dict[str, int]
    title: str = "Uplift models"
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> str:
        """The model with the highest Qini coefficient on the test rows."""
        return str(self.qini.sort_values("qini", ascending=False, kind="stable")["model"].iloc[0])

    # -- scoring -----------------------------------------------------------
    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        features = self.settings["features"]
        require_columns(frame, features, what="people")
        _check_complete(frame, features, "people")
        return self.design.matrix(frame)

    def predict(self, frame: pd.DataFrame, model: str | None = None) -> pd.Series:
        """Predicted uplift (incremental probability of the outcome) for each row of ``frame``."""
        model = self._model_name(model)
        return pd.Series(
            self.models[model].predict(self._matrix(frame)), index=frame.index, name="uplift"
        )

    def decile_of(self, frame: pd.DataFrame, model: str | None = None) -> pd.Series:
        """Decile of each row's predicted uplift (1 = most moved), cut at the test rows' deciles."""
        model = self._model_name(model)
        bins = self.settings["bins"]
        test = self.predictions[f"uplift_{model}"].to_numpy()
        # Upper quantiles of the test predictions: decile 1 holds the highest tenth.
        cuts = np.quantile(test, 1 - np.arange(1, bins) / bins)
        score = self.predict(frame, model).to_numpy()
        decile = 1 + np.sum(score[:, None] < cuts[None, :], axis=1)
        return pd.Series(decile.astype(int), index=frame.index, name="uplift_decile")

    def _model_name(self, model: str | None) -> str:
        model = model or self.best
        if model not in self.models:
            raise ParameterError(
                f"model == {model!r}, must be one of {list(self.models)}{did_you_mean(model, self.models)}."
            )
        return model

    def segment_uplift(self, column: str, *, rows: Literal["test", "all"] = "test") -> pd.DataFrame:
        """Uplift per level of ``column``: observed (Newcombe interval) and each model's mean prediction.

        Parameters
        ----------
        column : str
            A column of the data given to :func:`fit_uplift` (a feature or not).
        rows : {"test", "all"}
            Evaluate on the held-out rows (default) or on every row.

        Returns
        -------
        pandas.DataFrame
            One row per level: counts, rates, observed ``uplift`` with ``ci_low``/``ci_high``,
            and per model ``<model>_uplift`` with ``<model>_ci_low``/``<model>_ci_high``
            (delta method, from the coefficients' covariance).
        """
        require_columns(self.data, [column], what="experiment")
        frame = self.data if rows == "all" else self.data[self.data["_test"]]
        x = self.design.matrix(frame)
        z = stats.norm.ppf(1 - self.settings["alpha"] / 2)
        out = []
        for level, idx in frame.groupby(frame[column].astype(str), sort=True).indices.items():
            part = frame.iloc[idx]
            row = {
                column: level,
                **_group_row(
                    part["_y"].to_numpy(float), part["_t"].to_numpy(float), self.settings["alpha"]
                ),
            }
            for name, model in self.models.items():
                mean, se = model.mean_uplift(x[idx])
                row |= {
                    f"{name}_uplift": mean,
                    f"{name}_ci_low": mean - z * se,
                    f"{name}_ci_high": mean + z * se,
                }
            out.append(row)
        return pd.DataFrame(out)

    # -- the Result convention --------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """Return the uplift-by-decile table of every model (tidy: one row per model and decile)."""
        return self.deciles.copy()

    def qini_frame(self) -> pd.DataFrame:
        """Qini coefficient with its bootstrap interval and the top-share figures, one row per model."""
        return self.qini.copy()

    def display_frame(self) -> pd.DataFrame:
        """Return the decile table of the best model, formatted for readers."""
        d = self.deciles[self.deciles["model"] == self.best]
        return pd.DataFrame(
            {
                "decile": d["decile"],
                "treated / control": [
                    f"{a:,} / {b:,}" for a, b in zip(d["n_treated"], d["n_control"], strict=True)
                ],
                "rate treated": d["rate_treated"].map(fmt_pct),
                "rate control": d["rate_control"].map(fmt_pct),
                "uplift": d["uplift"].map(fmt_pp),
                f"{1 - self.settings['alpha']:.0%} CI": [
                    f"[{fmt_pp(lo)}, {fmt_pp(hi)}]"
                    for lo, hi in zip(d["ci_low"], d["ci_high"], strict=True)
                ],
                "predicted": d["predicted_uplift"].map(fmt_pp),
            }
        ).set_index("decile")

    def recommendation(self, model: str | None = None) -> str:
        """Plain-language targeting advice: the top share vs sending to everyone, per 1,000 people."""
        model = self._model_name(model)
        q = self.qini.set_index("model").loc[model]
        share, outcome = self.settings["top_share"], self.settings["outcome"]

        def per_k(v: float) -> str:
            return f"{1000 * v:+.1f}"

        text = (
            f"Send to the top {fmt_pct(share, 0)} ranked by the {MODELS[model]} model: "
            f"{per_k(q['top_uplift'])} extra '{outcome}' per 1,000 people sent "
            f"[{per_k(q['top_ci_low'])}, {per_k(q['top_ci_high'])}], vs {per_k(q['all_uplift'])} "
            f"[{per_k(q['all_ci_low'])}, {per_k(q['all_ci_high'])}] per 1,000 when everyone is sent; "
            f"the top {fmt_pct(share, 0)} would bring {fmt_pct(q['top_share_of_incremental'], 0)} of the "
            "extra responses of sending to everyone."
        )
        if q["qini_ci_low"] > 0:
            return (
                text
                + " The ranking is better than random targeting (the Qini interval lies above 0)."
            )
        return text + (
            " But the ranking is not detectably better than random targeting (the Qini interval includes 0): "
            "prefer sending to everyone, or test a better model before targeting."
        )

    def summary(self) -> str:
        """Describe the Qini coefficient of each model with its interval, and the recommendation."""
        s, c = self.settings, self.counts
        level = f"{1 - s['alpha']:.0%}"
        lines = [
            f"Uplift of '{s['outcome']}' for {', '.join(map(str, s['treatment']))} vs {s['control']}: "
            f"trained on {c['train_treated']:,} treated / {c['train_control']:,} control, "
            f"evaluated on {c['test_treated']:,} / {c['test_control']:,} held-out people "
            f"(seed {s['seed']}).",
        ]
        for _, r in self.qini.iterrows():
            lines.append(
                f"{_upper_first(MODELS[r['model']])}: Qini coefficient {fmt_num(r['qini'])} "
                f"{fmt_ci(r['qini_ci_low'], r['qini_ci_high'])} ({level}, {s['n_boot']:,} bootstrap resamples; "
                "0 = no better than random)."
            )
        lines.append(self.recommendation())
        lines += self.notes
        return "\n".join(lines)

    def plot(self, ax=None):
        """Qini curves of every model with the random-targeting line (incremental responders per person)."""
        return self._plot_curves(
            ax, qini_curve, "Qini curve", "incremental responders (share of people)"
        )

    def plot_uplift_curve(self, ax=None):
        """Uplift curves ``f(t)`` of every model (incremental responders per person)."""
        return self._plot_curves(
            ax, uplift_curve, "Uplift curve", "incremental responders, f(t) (share of people)"
        )

    def _plot_curves(self, ax, curve, title: str, ylabel: str):
        from journeylab.core.viz import PALETTE, new_axes, percent_axis

        ax = new_axes(ax, figsize=(7.2, 4.8))
        p = self.predictions
        n = len(p)
        end = 0.0
        for i, name in enumerate(self.models):
            c = curve(p["y"], p["treated"], p[f"uplift_{name}"])
            q = self.qini.set_index("model").loc[name, "qini"]
            ax.plot(
                c["share"],
                c["incremental"] / n,
                color=PALETTE[i],
                lw=2,
                label=f"{MODELS[name]} (Qini {fmt_num(q)})",
            )
            end = float(c["incremental"].iloc[-1]) / n
        ax.plot([0, 1], [0, end], color="0.5", ls="--", lw=1.2, label="random targeting")
        share = self.settings["top_share"]
        ax.axvline(share, color="0.3", ls=":", lw=1)
        ax.annotate(
            f"top {fmt_pct(share, 0)}",
            (share, ax.get_ylim()[0]),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=9,
        )
        percent_axis(ax, "x")
        percent_axis(ax, "y", decimals=1)
        ax.set_xlabel("people targeted, highest predicted uplift first")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title} — '{self.settings['outcome']}' on held-out people")
        ax.legend(loc="lower right")
        return ax

    def plot_deciles(self, ax=None, model: str | None = None):
        """Observed uplift per decile of predicted uplift, with intervals, beside the predictions."""
        from journeylab.core.viz import PALETTE, new_axes

        model = self._model_name(model)
        d = self.deciles[self.deciles["model"] == model]
        ax = new_axes(ax, figsize=(7.2, 4.4))
        x = d["decile"].to_numpy()
        ax.bar(x, 100 * d["uplift"], color=PALETTE[0], alpha=0.8, label="observed uplift")
        ax.errorbar(
            x,
            100 * d["uplift"],
            yerr=[100 * (d["uplift"] - d["ci_low"]), 100 * (d["ci_high"] - d["uplift"])],
            fmt="none",
            ecolor="0.25",
            capsize=3,
            lw=1,
        )
        ax.plot(
            x, 100 * d["predicted_uplift"], "o-", color=PALETTE[1], label="mean predicted uplift"
        )
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xticks(x)
        ax.set_xlabel("decile of predicted uplift (1 = highest)")
        ax.set_ylabel(f"uplift, percentage points ({1 - self.settings['alpha']:.0%} interval)")
        ax.set_title(f"Uplift by decile — {MODELS[model]}")
        ax.legend(loc="upper right")
        return ax


# --------------------------------------------------------------------------- fitting
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


def fit_uplift(
    data: pd.DataFrame,
    *,
    outcome: str,
    features: Sequence[str],
    variant: str = "variant",
    control: str = "control",
    treatment: str | Sequence[str] | None = None,
    models: Sequence[ModelName] = ("two_model", "class_transformation"),
    test_size: float = 0.3,
    top_share: float = 0.3,
    bins: int = 10,
    n_boot: int = 500,
    alpha: float = 0.05,
    seed: int = 0,
) -> UpliftResult:
    """Estimate each person's incremental effect from a randomised test and check it on held-out people.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per person: the ``variant`` column, the 0/1 ``outcome`` and the
        ``features`` (``user_id`` is carried into the predictions when present).
    outcome : str
        The 0/1 response column (e.g. ``"conversion"``).
    features : sequence of str
        Predictors measured before the treatment; text columns become dummies.
    variant : str
        The arm column.
    control : str
        The holdout's label.
    treatment : str or sequence of str, optional
        Labels counted as treated (pooled); default every label except ``control``.
    models : sequence of {"two_model", "class_transformation"}
        The uplift models to fit and compare.
    test_size : float
        Share of each arm held out for evaluation.
    top_share : float
        Share of people the recommendation targets (0.3: the top 30 %).
    bins : int
        Bins of the uplift table (10: deciles).
    n_boot : int
        Bootstrap resamples of the Qini coefficient's interval.
    alpha : float
        1 − confidence level of every interval.
    seed : int
        Seed of the split and of the bootstrap.

    Returns
    -------
    UpliftResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = 4000
    >>> df = pd.DataFrame({"variant": rng.choice(["control", "mail"], n), "x": rng.normal(size=n)})
    >>> lift = np.where(df["x"] > 0, 0.2, 0.0) * (df["variant"] == "mail")
    >>> df["bought"] = (rng.random(n) < 0.1 + lift).astype(int)
    >>> res = fit_uplift(df, outcome="bought", features=["x"], n_boot=50, seed=1)
    >>> bool(res.qini.set_index("model").loc["two_model", "qini"] > 0)
    True
    """
    if not isinstance(data, pd.DataFrame):
        raise ParameterError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
    features = list(dict.fromkeys(features))
    if not features:
        raise ParameterError(
            "features is empty; name at least one column measured before the treatment."
        )
    require_columns(data, [variant, outcome, *features], what="experiment")
    if outcome in features or variant in features:
        raise ParameterError("The outcome and the variant column cannot be features.")
    models = list(dict.fromkeys(models))
    for name in models:
        if name not in _MODEL_CLASSES:
            raise ParameterError(
                f"models contains {name!r}; known models are {list(_MODEL_CLASSES)}{did_you_mean(name, _MODEL_CLASSES)}."
            )
    if not models:
        raise ParameterError("models is empty; choose from ['two_model', 'class_transformation'].")
    check_range("test_size", test_size, low=0, high=1)
    check_range("top_share", top_share, low=0, high=1, high_inclusive=True)
    check_range("alpha", alpha, low=0, high=1)
    if int(bins) != bins or bins < 2:
        raise ParameterError(f"bins == {bins!r}, must be a whole number >= 2.")
    if int(n_boot) != n_boot or n_boot < 10:
        raise ParameterError(f"n_boot == {n_boot!r}, must be a whole number >= 10.")

    labels = data[variant].astype("object")
    present = sorted({str(v) for v in labels.dropna().unique()})
    if control not in present:
        raise ParameterError(
            f"control == {control!r} is not a variant of the data{did_you_mean(control, present)}; variants: {present}."
        )
    treated_labels = (
        [v for v in present if v != control]
        if treatment is None
        else ([treatment] if isinstance(treatment, str) else list(treatment))
    )
    for label in treated_labels:
        if label not in present or label == control:
            raise ParameterError(
                f"treatment label {label!r} is not a treated variant of the data{did_you_mean(label, present)}; variants: {present}."
            )
    if not treated_labels:
        raise ParameterError(f"The data has no variant besides the control {control!r}.")
    labels_str = labels.astype(str)
    in_test = labels_str.isin([control, *treated_labels]) & labels.notna()
    frame = data.loc[in_test.to_numpy()].copy()
    other = int((~in_test).sum())

    y = pd.to_numeric(frame[outcome], errors="coerce")
    bad = y.isna() | ~y.isin([0, 1])
    if bad.any():
        raise DataError(
            f"The outcome {outcome!r} must be 0 or 1 in every row; {int(bad.sum()):,} row(s) are not.",
            column=outcome,
            rows=[
                int(i) + 1
                for i in np.flatnonzero(in_test.to_numpy())[np.flatnonzero(bad.to_numpy())]
            ],
            hint="map the outcome to 0/1 first (e.g. data[outcome] = (data[outcome] > 0).astype(int)).",
        )
    _check_complete(frame, features, "experiment")
    frame["_y"] = y.astype(float).to_numpy()
    frame["_t"] = (frame[variant].astype(str) != control).astype(float).to_numpy()

    # Rule 2: the same share of each arm is held out.
    rng = np.random.default_rng(seed)
    test = np.zeros(len(frame), dtype=bool)
    for arm in (0.0, 1.0):
        rows = np.flatnonzero(frame["_t"].to_numpy() == arm)
        if len(rows) < 20:
            raise NotComputableError(
                f"The {'treated' if arm else 'control'} arm has {len(rows)} people; at least 20 per arm are needed."
            )
        k = int(round(test_size * len(rows)))
        test[rng.permutation(rows)[:k]] = True
    frame["_test"] = test
    train = frame[~test]
    design = _Design.learn(train, features)
    x_train = design.matrix(train)
    fitted = {
        name: _MODEL_CLASSES[name]().fit(
            x_train, train["_t"].to_numpy(), train["_y"].to_numpy(), design.columns
        )
        for name in models
    }

    held = frame[test]
    x_test = design.matrix(held)
    predictions = pd.DataFrame(
        {"treated": held["_t"].astype(int).to_numpy(), "y": held["_y"].astype(int).to_numpy()}
    )
    if "user_id" in held.columns:
        predictions.insert(0, "user_id", held["user_id"].astype(str).to_numpy())
    deciles, qini_rows = [], []
    y_te, t_te = predictions["y"].to_numpy(float), predictions["treated"].to_numpy(float)
    everyone = _group_row(y_te, t_te, alpha)
    for i, (name, model) in enumerate(fitted.items()):
        u = model.predict(x_test)
        predictions[f"uplift_{name}"] = u
        deciles.append(uplift_by_decile(y_te, t_te, u, bins=bins, alpha=alpha).assign(model=name))
        boot = _bootstrap_qini(y_te, t_te, u, n_boot, seed=seed + 1 + i)
        top = top_share_uplift(y_te, t_te, u, top_share, alpha=alpha)
        qini_rows.append(
            {
                "model": name,
                "qini": qini_coefficient(y_te, t_te, u),
                "qini_ci_low": float(np.quantile(boot, alpha / 2)),
                "qini_ci_high": float(np.quantile(boot, 1 - alpha / 2)),
                "top_share": top_share,
                "top_targeted": top["targeted"],
                "top_uplift": top["uplift"],
                "top_ci_low": top["ci_low"],
                "top_ci_high": top["ci_high"],
                "all_uplift": everyone["uplift"],
                "all_ci_low": everyone["ci_low"],
                "all_ci_high": everyone["ci_high"],
                "top_share_of_incremental": (
                    top["targeted"] * top["uplift"] / (len(u) * everyone["uplift"])
                    if everyone["uplift"]
                    else float("nan")
                ),
            }
        )
    deciles_frame = pd.concat(deciles, ignore_index=True)
    deciles_frame = deciles_frame[["model", *[c for c in deciles_frame.columns if c != "model"]]]
    counts = {
        "people": len(frame),
        "other_variants": other,
        "train_treated": int((train["_t"] == 1).sum()),
        "train_control": int((train["_t"] == 0).sum()),
        "test_treated": int(t_te.sum()),
        "test_control": int(len(t_te) - t_te.sum()),
    }
    notes = []
    for name, model in fitted.items():
        fits = model.methods_ if name == "two_model" else {"transformed class": model.method_}
        for what, method in fits.items():
            if method.startswith("ridge"):
                notes.append(
                    f"{_upper_first(MODELS[name])}, {what}: {method}; its intervals are approximate."
                )
            elif "fixed at 0" in method:
                notes.append(f"{_upper_first(MODELS[name])}, {what}: {method.split('; ', 1)[1]}.")
    if other:
        notes.append(f"{other:,} rows of other variants were left out.")
    settings = {
        "outcome": outcome,
        "features": features,
        "variant": variant,
        "control": control,
        "treatment": treated_labels,
        "test_size": test_size,
        "top_share": top_share,
        "bins": int(bins),
        "n_boot": int(n_boot),
        "alpha": alpha,
        "seed": seed,
    }
    return UpliftResult(
        models=fitted,
        predictions=predictions,
        deciles=deciles_frame,
        qini=pd.DataFrame(qini_rows),
        data=frame,
        design=design,
        settings=settings,
        counts=counts,
        notes=notes,
    )
