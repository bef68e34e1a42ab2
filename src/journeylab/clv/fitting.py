"""Shared plumbing of the CLV models: input checks, unique histories, fitted-model bases.

:mod:`journeylab.clv.models` (BG/NBD, Gamma-Gamma) and :mod:`journeylab.clv.alternatives`
(MBG/NBD, Pareto/NBD) build on the classes here:

1. ``_FittedModel``: parameters on the natural scale with delta-method standard
   errors, the summary/HTML plumbing, and the fit diagnostics of
   :mod:`journeylab.core.model_checks` (``status``, ``warnings``, a
   :class:`~journeylab.core.errors.ModelWarning` on fit, withheld quantities).
2. ``_PurchaseModel``: the shared fitting steps of the purchase-count models
   (validate the histories, collapse them to unique rows with weights, rescale
   time so the longest ``T`` is 1, maximise from several starts, diagnose).
3. ``withhold_dropout`` / ``dropout_reading``: what a BG-type model withholds
   when its dropout parameters are at their boundary, and the sentences that
   say so.
"""

from __future__ import annotations

import html
import textwrap
import warnings
from typing import Literal

import numpy as np
import pandas as pd

from journeylab.clv.likelihoods import LOG_BOUND, MaximumLikelihoodFit, fit_log_params
from journeylab.core.errors import (
    DataError,
    ModelWarning,
    NotComputableError,
    ParameterError,
    check_range,
    require_columns,
)
from journeylab.core.model_checks import (
    Direction,
    ModelDiagnostics,
    diagnose_likelihood,
    single_directions,
)
from journeylab.core.results import Result, fmt_ci, fmt_num, fmt_pct
from journeylab.customers.purchases import describe_left_out

Freq = Literal["D", "W", "h"]
#: Periods per month used to step CLV month by month (the lifetimes convention).
PERIODS_PER_MONTH = {"D": 30.0, "W": 4.345, "h": 720.0}
_UNIT_NAMES = {"D": "day", "W": "week", "h": "hour"}


def _column(summary: pd.DataFrame, name: str) -> np.ndarray:
    for candidate in (name, f"{name}_cal"):
        if candidate in summary.columns:
            return summary[candidate].to_numpy(dtype=float)
    require_columns(summary, [name], what="RFM summary")
    raise AssertionError  # pragma: no cover


def _arrays(frequency, recency=None, T=None, *, what="BetaGeo"):
    """Accept a summary frame or three arrays; return float arrays and the index (if any)."""
    index = None
    if isinstance(frequency, pd.DataFrame):
        frame = frequency
        index = frame.index
        return _column(frame, "frequency"), _column(frame, "recency"), _column(frame, "T"), index
    if recency is None or T is None:
        raise ParameterError(
            f"{what} needs an RFM summary frame, or frequency, recency and T arrays."
        )
    if isinstance(frequency, pd.Series):
        index = frequency.index
    return (
        np.asarray(frequency, dtype=float),
        np.asarray(recency, dtype=float),
        np.asarray(T, dtype=float),
        index,
    )


def _wrap(values: np.ndarray, index, name: str):
    return pd.Series(values, index=index, name=name) if index is not None else values


def _validate_histories(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    checks = [
        (
            ~np.isfinite(x) | ~np.isfinite(t_x) | ~np.isfinite(T),
            "missing or infinite values",
            "frequency",
        ),
        (x < 0, "negative frequency", "frequency"),
        (
            x != np.round(x),
            "non-integer frequency (number of repeat purchase periods)",
            "frequency",
        ),
        (t_x < 0, "negative recency", "recency"),
        (t_x > T + 1e-9, "recency larger than T", "recency"),
        ((x == 0) & (t_x != 0), "non-zero recency with zero frequency", "recency"),
    ]
    for mask, what, column in checks:
        if np.any(mask):
            raise DataError(
                f"{int(mask.sum())} customer(s) have {what}.",
                column=column,
                rows=list(np.flatnonzero(mask)[:5]),
                hint="build the summary with journeylab.clv.rfm_summary(transactions).",
            )


def _unique_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Distinct rows of the columns (sorted), how many times each occurs, and the map back."""
    frame = pd.DataFrame({f"c{j}": np.asarray(c, dtype=float) for j, c in enumerate(columns)})
    grouped = frame.groupby(list(frame.columns), sort=True)
    inverse = grouped.ngroup().to_numpy()
    counts = np.bincount(inverse).astype(float)
    first = np.full(len(counts), -1)
    first[inverse[::-1]] = np.arange(len(inverse))[::-1]  # first row of each group
    unique = frame.to_numpy()[first]
    return [unique[:, j] for j in range(unique.shape[1])], counts, inverse


def _param_table(names, fit: MaximumLikelihoodFit, z: float = 1.959963984540054) -> pd.DataFrame:
    params = fit.params
    se = fit.standard_errors if np.all(np.isfinite(fit.log_cov)) else np.full(len(names), np.nan)
    # intervals on the log scale (positive parameters), mapped back
    log_se = np.sqrt(np.clip(np.diag(fit.log_cov), 0, None))
    return pd.DataFrame(
        {
            "coef": params,
            "se(coef)": se,
            "lower 95% bound": params * np.exp(-z * log_se),
            "upper 95% bound": params * np.exp(z * log_se),
        },
        index=pd.Index(names, name="parameter"),
    )


class _FittedModel(Result):
    """Summary/HTML plumbing and fit diagnostics shared by the models."""

    _names: tuple[str, ...] = ()
    _short = "model"
    fit_: MaximumLikelihoodFit | None = None
    diagnostics_: ModelDiagnostics | None = None

    @property
    def status(self) -> str:
        """``"ok"``, ``"boundary"``, ``"not_converged"`` or ``"not_identified"`` (see model_checks)."""
        self._check_fitted()
        return self.diagnostics_.status

    @property
    def warnings(self) -> list[str]:
        """Plain-language reasons not to trust the fit as is (empty when ``status == "ok"``)."""
        self._check_fitted()
        return list(self.diagnostics_.warnings)

    def _directions(self) -> list[Direction]:
        """Edges of the parameter space probed by the boundary check."""
        return single_directions(self._names)

    def _withhold(self) -> None:
        """Register the quantities that rest on suspect parameters (model-specific)."""

    def _diagnose(self, loglik_value) -> None:
        """Classify the fit, withhold what rests on suspect parameters, warn once."""
        fit = self.fit_
        k = len(self._names)
        information = fit.information if fit.information is not None else np.full((k, k), np.nan)
        self.diagnostics_ = diagnose_likelihood(
            loglik_value,
            fit.log_params,
            self._names,
            log_information=information,
            gradient=fit.gradient,
            directions=self._directions(),
            log_bound=LOG_BOUND,
        )
        self._withhold()
        self.diagnostics_.emit(type(self).__name__, stacklevel=4)

    def withheld(self, quantity: str) -> str | None:
        """Return why ``quantity`` is not shown (e.g. ``"total_value"``), or None."""
        self._check_fitted()
        return self.diagnostics_.reason(quantity)

    def _check_fitted(self) -> None:
        if self.fit_ is None:
            raise NotComputableError(
                f"{type(self).__name__} is not fitted yet: call .fit(summary) first."
            )

    @property
    def params_(self) -> pd.Series:
        """Return the fitted parameters (lifetimes names)."""
        self._check_fitted()
        return pd.Series(self._natural_params(), index=list(self._names), dtype=float)

    @property
    def standard_errors_(self) -> pd.Series:
        """Return the standard errors from the inverse Hessian (delta method)."""
        self._check_fitted()
        return self.to_frame()["se(coef)"]

    @property
    def variance_matrix_(self) -> pd.DataFrame:
        """Return the covariance of the parameters on the natural scale."""
        self._check_fitted()
        d = np.diag(self._natural_params())
        cov = d @ self.fit_.log_cov @ d
        return pd.DataFrame(cov, index=list(self._names), columns=list(self._names))

    @property
    def log_likelihood_(self) -> float:
        """Maximised log-likelihood in the data's own units (time, money)."""
        self._check_fitted()
        return self.fit_.log_likelihood + self._ll_shift

    def _natural_params(self) -> np.ndarray:
        return self.fit_.params

    def to_frame(self) -> pd.DataFrame:
        """Return the numbers as a tidy DataFrame."""
        self._check_fitted()
        table = _param_table(self._names, self.fit_)
        table["coef"] = self._natural_params()
        scale = self._natural_params() / self.fit_.params
        for col in ("se(coef)", "lower 95% bound", "upper 95% bound"):
            table[col] = table[col] * scale
        return table

    def display_frame(self) -> pd.DataFrame:
        """Return the table formatted for readers."""
        table = self.to_frame()
        return pd.DataFrame(
            {
                "estimate": table["coef"].map(fmt_num),
                "SE": table["se(coef)"].map(fmt_num),
                "95% CI": [
                    fmt_ci(lo, hi)
                    for lo, hi in zip(
                        table["lower 95% bound"], table["upper 95% bound"], strict=True
                    )
                ],
            },
            index=table.index,
        )

    def _param_lines(self) -> list[str]:
        table = self.to_frame()
        suspect = self.diagnostics_.suspect if self.diagnostics_ is not None else frozenset()
        return [
            f"  {name:<6} {fmt_num(row['coef']):>9}  (SE {fmt_num(row['se(coef)'])}, 95% CI "
            f"{fmt_ci(row['lower 95% bound'], row['upper 95% bound'])})"
            + ("  <- not identified by the data" if name in suspect else "")
            for name, row in table.iterrows()
        ]

    def _repr_html_(self) -> str:
        if self.fit_ is None:
            return f"<p>{html.escape(type(self).__name__)} (not fitted)</p>"
        return super()._repr_html_()

    def __repr__(self) -> str:
        if self.fit_ is None:
            return f"<{type(self).__name__} (not fitted)>"
        return super().__repr__()


# --------------------------------------------------------------------------- purchase models
#: What reaching an edge of the BG/NBD (and MBG/NBD) parameter space means.
DROPOUT_MEANINGS = {
    "a → 0": "the data show no dropout after purchases",
    "b → ∞": "the data show no dropout after purchases",
    "b → 0": "every customer would drop out at the next purchase",
    "r → 0": "purchase rates would be infinitely dispersed across customers",
}
NO_DROPOUT = (
    "the dropout parameter is at its boundary ({edges}): the data show no dropout, so the "
    "model would treat every customer as alive forever. Check it against a holdout period "
    "(journeylab.clv.holdout.calibration_and_holdout) and try MBG/NBD or Pareto/NBD."
)


class _PurchaseModel(_FittedModel):
    """Shared fitting steps of the purchase-count models (BG/NBD, MBG/NBD, Pareto/NBD).

    Subclasses set ``_names``, ``_short`` (e.g. ``"BG/NBD"``), ``_time_params``
    (indices of the parameters in time units, rescaled for the optimiser) and
    implement ``_loglik(theta, x, t_x, T, w, x_index)`` and ``_starts(mean_x)``.
    """

    _time_params: tuple[int, ...] = (1,)

    def __init__(self, penalizer_coef: float = 0.0) -> None:
        self.penalizer_coef = penalizer_coef
        self.fit_ = None

    def _loglik(self, theta, x, t_x, T, w, x_index):  # pragma: no cover - abstract
        raise NotImplementedError

    def _loglik_value(self, theta, x, t_x, T, w, x_index) -> float:
        """Log-likelihood only (the diagnostics need no gradient)."""
        return self._loglik(theta, x, t_x, T, w, x_index)[0]

    def _starts(self, mean_x: float) -> list[np.ndarray]:
        return [
            np.zeros(4),
            np.log([0.5, max(0.5 / max(mean_x, 0.05), 0.05), 1.0, 3.0]),
            np.log([0.2, 0.1, 0.5, 1.0]),
        ]

    def fit(self, frequency, recency=None, T=None, *, weights=None, freq: str | None = None):
        """Fit by maximum likelihood on the unique (frequency, recency, T) rows.

        Parameters
        ----------
        frequency : DataFrame or array-like
            An :func:`rfm_summary` (``frequency``/``recency``/``T`` or their
            ``_cal`` versions), or the frequency array with ``recency`` and ``T``.
        weights : array-like, optional
            Customers per row when the rows are already aggregated.
        freq : str, optional
            Time unit of the data (taken from the summary's ``attrs`` otherwise).

        Returns
        -------
        self
            Fitted, with ``params_``, ``standard_errors_``, ``status`` and ``warnings``.
        """
        check_range("penalizer_coef", self.penalizer_coef, low=0, low_inclusive=True)
        if isinstance(frequency, pd.DataFrame):
            freq = freq or frequency.attrs.get("freq")
            self.left_out_ = {k: v for k, v in frequency.attrs.items() if k != "freq"}
        else:
            self.left_out_ = {}
        x, t_x, T, _ = _arrays(frequency, recency, T, what=type(self).__name__)
        if x.size == 0:
            raise DataError("The RFM summary is empty: there are no customers to fit.")
        _validate_histories(x, t_x, T)
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
        (ux, ut, uT), counts, inverse = _unique_rows(x, t_x, T)
        if weights is not None:
            counts = np.bincount(inverse, weights=w)
        n_customers = float(counts.sum())
        repeaters = float(counts[ux > 0].sum())
        if repeaters == 0:
            raise NotComputableError(
                f"No repeat purchases among {n_customers:,.0f} customers: the {self._short} cannot separate "
                "how often customers buy from how often they drop out. Use a longer observation "
                "period, check that purchases on different days are not merged (freq='D'), or "
                "report the repeat-purchase rate (0) instead."
            )
        if repeaters < 10:
            warnings.warn(
                f"only {repeaters:.0f} customers made a repeat purchase: "
                f"{self._short} estimates will be very uncertain.",
                ModelWarning,
                stacklevel=2,
            )
        if np.max(uT) <= 0:
            raise NotComputableError(
                "Every customer has T == 0 (all first purchases in the last period)."
            )
        # rescale time so the longest T is 1: the optimiser then sees O(1) parameters
        self._scale = 1.0 / float(np.max(uT))
        sx, st, sT = ux, ut * self._scale, uT * self._scale
        mean_x = float(np.sum(counts * ux) / n_customers)
        x_index = np.unique(sx, return_inverse=True)

        def loglik(theta):
            return self._loglik(theta, sx, st, sT, counts, x_index)

        self.fit_ = fit_log_params(
            loglik,
            self._starts(mean_x),
            n_obs=n_customers,
            penalizer=self.penalizer_coef,
            # a second start confirms the optimum when that is cheap
            confirm=2 if len(ux) <= 50_000 else 1,
        )
        # the likelihood of event times carries the time unit: undo the rescaling
        self._ll_shift = float(np.dot(counts, ux)) * np.log(self._scale)
        self.freq_ = freq or "D"
        self.n_customers_ = int(round(n_customers))
        self.n_repeat_customers_ = int(round(repeaters))
        self._diagnose(lambda theta: self._loglik_value(theta, sx, st, sT, counts, x_index))
        return self

    def _natural_params(self) -> np.ndarray:
        params = self.fit_.params.copy()
        params[list(self._time_params)] /= self._scale
        return params

    def _unpack(self):
        self._check_fitted()
        return tuple(self._natural_params())

    def _horizon(self) -> float:
        return 365.0 if self.freq_ == "D" else (52.0 if self.freq_ == "W" else 24 * 365.0)

    def _header(self, reference: str) -> list[str]:
        unit = _UNIT_NAMES.get(self.freq_, self.freq_)
        return [
            self.diagnostics_.headline(),
            f"{self._short} ({reference}), maximum likelihood on {self.n_customers_:,} customers "
            f"({self.n_repeat_customers_:,} with repeat purchases); time unit: {unit}.",
            *self._param_lines(),
            f"Log-likelihood {fmt_num(self.log_likelihood_, 7)}.",
        ]

    def _footer(self) -> list[str]:
        lines = []
        if self.left_out_.get("rows_without_id") or self.left_out_.get("refund_rows"):
            lines.append(describe_left_out(self.left_out_))
        return lines

    def _expected_purchases_line(self) -> str:
        reason = self.withheld("expected_purchases")
        if reason:
            same = reason == self.withheld("dropout_probability")
            return "Expected repeat purchases of a new customer in a year: " + (
                "not shown, for the same reason." if same else reason
            )
        value = float(self.expected_number_of_purchases_up_to_time(self._horizon()))
        return f"Expected repeat purchases of a new customer in a year: {fmt_num(value)}."

    def plot(self, ax=None):
        """Plot the expected cumulative repeat purchases of a new customer over time."""
        from journeylab.core.viz import new_axes

        self._check_fitted()
        ax = new_axes(ax)
        horizon = 365 if self.freq_ == "D" else (52 if self.freq_ == "W" else 24 * 90)
        t = np.linspace(0, horizon, 200)
        ax.plot(t, self.expected_number_of_purchases_up_to_time(t))
        ax.set_xlabel(f"{_UNIT_NAMES.get(self.freq_, self.freq_)}s since first purchase")
        ax.set_ylabel("expected repeat purchases")
        ax.set_title(f"{self._short}: expected repeat purchases of a new customer")
        reason = self.withheld("expected_purchases")
        if reason:
            # the caveat sits on the figure itself, so it travels with any copy of it
            text = "NOT TO BE TRUSTED AS IS: " + reason.removeprefix("not shown: ")
            ax.text(
                0.98,
                0.04,
                "\n".join(textwrap.wrap(text, 70)),
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=8,
                color="#b00020",
                bbox={"facecolor": "white", "edgecolor": "#b00020", "alpha": 0.9},
            )
        return ax


def withhold_dropout(diagnostics: ModelDiagnostics, dropout=("a", "b")) -> None:
    """Withhold what rests on the dropout (and purchase-rate) parameters of a BG-type model."""
    edges = [e for e in diagnostics.boundary if e.split(" ")[0] in dropout]
    because = NO_DROPOUT.format(edges=", ".join(edges)) if edges else None
    everything = ("r", "alpha", *dropout)
    diagnostics.withhold("purchase_rate", ("r", "alpha"))
    diagnostics.withhold("dropout_probability", dropout, because)
    for quantity in ("p_alive", "expected_purchases", "total_value"):
        diagnostics.withhold(quantity, everything, because if edges else None)


def dropout_reading(model: _PurchaseModel, r, alpha, dropout, when: str, formula: str) -> list[str]:
    """Say how often customers buy and how often they leave, or why that is withheld."""
    unit = _UNIT_NAMES.get(model.freq_, model.freq_)
    rate = model.withheld("purchase_rate")
    lines = [
        f"Purchase rate of a new customer while alive: {rate}"
        if rate
        else f"Reading: a new customer buys about {fmt_num(r / alpha)} times per {unit} while alive (r/alpha)."
    ]
    reason = model.withheld("dropout_probability")
    lines.append(
        f"Dropout probability {when}: {reason}"
        if reason
        else f"They drop out {when} with probability {fmt_pct(dropout)} ({formula})."
    )
    return lines
