"""Uplift evaluation: Qini and uplift curves, the Qini coefficient, uplift by decile and top share.

Everything here ranks people by predicted uplift (tie groups enter at once) and
counts observed outcomes of the treated and control rows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from journeylab.core.errors import check_range

__all__ = [
    "qini_curve",
    "uplift_curve",
    "qini_coefficient",
    "uplift_by_decile",
    "top_share_uplift",
]


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
