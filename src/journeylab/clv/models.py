"""Customer lifetime value: RFM summaries, BG/NBD, Gamma-Gamma and CLV by acquisition channel.

The workflow reads like lifetimes': transactions → :func:`rfm_summary` →
:class:`BetaGeo` (how many purchases, is the customer still alive) and
:class:`GammaGamma` (how much per purchase) → :func:`customer_lifetime_value`
→ :func:`~journeylab.clv.channels.clv_by_channel` (with CLV:CAC when a spend table is given).

:func:`~journeylab.clv.channels.clv_by_channel` and its result live in
:mod:`journeylab.clv.channels`, which builds on this module; both modules' public
names are importable from :mod:`journeylab.clv`.

Both models are fitted by maximum likelihood on the log scale of their
parameters with analytic gradients (see :mod:`journeylab.clv.likelihoods`),
on the unique customer histories with weights, and report standard errors from
the inverse Hessian (delta method back to the natural scale). Parameter names
and the RFM conventions follow lifetimes so results can be compared directly:

- ``frequency``: number of *repeat* purchase periods (periods of ``freq`` with
  at least one purchase, minus the first one);
- ``recency``: time between the first and the last purchase period;
- ``T``: time between the first purchase period and the end of observation;
- ``monetary_value``: mean value of the repeat purchase periods (0 when none).

References
----------
Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", Marketing
Science 24(2). Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value".
"""

from __future__ import annotations

import html
import warnings
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import expit, hyp2f1

from journeylab.clv.likelihoods import (
    MaximumLikelihoodFit,
    bgnbd_loglik,
    fit_log_params,
    gamma_gamma_loglik,
)
from journeylab.core.errors import (
    DataError,
    NotComputableError,
    ParameterError,
    check_in,
    check_range,
    require_columns,
)
from journeylab.core.results import Result, fmt_ci, fmt_money, fmt_num, fmt_pct
from journeylab.core.timeparse import naive_utc, to_utc_timestamp
from journeylab.customers.retention import (
    as_frame,
    describe_left_out,
    period_codes,
    purchase_rows,
)

__all__ = [
    "rfm_summary",
    "BetaGeo",
    "GammaGamma",
    "customer_lifetime_value",
    "plot_calibration_purchases_vs_holdout_purchases",
]

Freq = Literal["D", "W", "h"]
#: Periods per month used to step CLV month by month (the lifetimes convention).
PERIODS_PER_MONTH = {"D": 30.0, "W": 4.345, "h": 720.0}
_UNIT_NAMES = {"D": "day", "W": "week", "h": "hour"}


# --------------------------------------------------------------------------- RFM summary
def _period_summary(purchases: pd.DataFrame, end_code: int) -> pd.DataFrame:
    """Frequency / recency / T / monetary_value from (customer, code, value) purchase rows."""
    per = purchases.groupby(["customer", "code"], sort=True)["value"].sum(min_count=1).reset_index()
    grouped = per.groupby("customer", sort=True)
    stats = grouped["code"].agg(first="min", last="max", periods="size")
    first_value = grouped["value"].first()  # sorted by code: the first purchase period
    value_sum = grouped["value"].sum()
    valued = grouped["value"].count()
    first_valued = first_value.notna().astype(int)
    out = pd.DataFrame(index=stats.index)
    out["frequency"] = (stats["periods"] - 1).astype(float)
    out["recency"] = (stats["last"] - stats["first"]).astype(float)
    out["T"] = (end_code - stats["first"]).astype(float)
    repeat_valued = valued - first_valued
    repeat_sum = value_sum - first_value.fillna(0)
    out["monetary_value"] = np.where(
        repeat_valued > 0, repeat_sum / repeat_valued.clip(lower=1), 0.0
    )
    return out


def rfm_summary(
    transactions: pd.DataFrame,
    *,
    customer_id_col: str = "user_id",
    datetime_col: str = "timestamp",
    monetary_value_col: str | None = "value",
    observation_period_end: str | pd.Timestamp | None = None,
    freq: Freq = "D",
    calibration_period_end: str | pd.Timestamp | None = None,
    refunds: Literal["drop", "keep"] = "drop",
) -> pd.DataFrame:
    """One row per customer: frequency, recency, T and monetary value (lifetimes conventions).

    Purchases are collapsed to periods of ``freq`` first: several purchases on
    the same day count once with ``freq="D"`` (their values are summed).

    Parameters
    ----------
    transactions : DataFrame
        Purchase rows.
    customer_id_col, datetime_col, monetary_value_col : str
        Column roles (canonical names by default). ``monetary_value_col=None``
        leaves out ``monetary_value``.
    observation_period_end : date-like, optional
        End of observation (default: the last transaction); later rows are ignored.
    freq : {"D", "W", "h"}
        Time unit of the summary: day, ISO week (Monday start) or hour.
    calibration_period_end : date-like, optional
        Split into a calibration period (``frequency_cal``, ``recency_cal``,
        ``T_cal``, ``monetary_value_cal``, summarised exactly as above) and a
        holdout period up to ``observation_period_end`` (``frequency_holdout``:
        purchase periods in the holdout, ``monetary_value_holdout``: their mean
        value (lifetimes averages the raw rows instead), ``duration_holdout``).
        Only customers acquired in the
        calibration period are kept. A period belongs to the calibration when
        it starts on or before ``calibration_period_end``.
    refunds : {"drop", "keep"}
        ``"drop"`` (default): rows with value <= 0 are refunds, not purchases,
        and are left out. ``"keep"``: every row is a purchase and values are
        netted per period (what lifetimes does with such rows).

    Returns
    -------
    DataFrame
        Indexed by customer id. ``.attrs`` holds ``freq`` and the counts of rows
        left out (``rows_without_id``, ``refund_rows``, ``rows_after_end``).

    Examples
    --------
    >>> summary = rfm_summary(tx, freq="D")                 # doctest: +SKIP
    >>> BetaGeo().fit(summary).params_                      # doctest: +SKIP
    """
    check_in("freq", freq, list(PERIODS_PER_MONTH))
    purchases, left_out = purchase_rows(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        value_col=monetary_value_col,
        refunds=refunds,
    )
    all_times = naive_utc(as_frame(transactions)[0][datetime_col], datetime_col)
    if observation_period_end is None:
        end_time = all_times.max()
    else:
        end_time = to_utc_timestamp(observation_period_end, "observation_period_end").tz_localize(None)
    end_code = int(period_codes(pd.Series([end_time]), freq)[0])
    purchases["code"] = period_codes(purchases["time"], freq)
    after = purchases["code"].to_numpy() > end_code
    left_out["rows_after_end"] = int(after.sum())
    purchases = purchases[~after]
    if purchases.empty:
        raise DataError(
            "No purchases with a customer id before the end of observation.",
            column=customer_id_col,
            hint="check the id and value columns and observation_period_end.",
        )
    if calibration_period_end is None:
        out = _period_summary(purchases, end_code)
        if monetary_value_col is None:
            out = out.drop(columns="monetary_value")
    else:
        cal_time = to_utc_timestamp(calibration_period_end, "calibration_period_end").tz_localize(None)
        cal_code = int(period_codes(pd.Series([cal_time]), freq)[0])
        if cal_code >= end_code:
            raise ParameterError(
                f"calibration_period_end == {calibration_period_end!r} leaves no holdout period before "
                f"the end of observation ({end_time:%Y-%m-%d %H:%M}).",
            )
        calibration = purchases[purchases["code"] <= cal_code]
        if calibration.empty:
            raise DataError(
                f"No purchases on or before calibration_period_end == {calibration_period_end!r}."
            )
        out = _period_summary(calibration, cal_code)
        out.columns = [f"{c}_cal" for c in out.columns]
        holdout = purchases[purchases["code"] > cal_code]
        per = (
            holdout.groupby(["customer", "code"], sort=True)["value"]
            .sum(min_count=1)
            .groupby(level=0)
        )
        out["frequency_holdout"] = per.size().reindex(out.index).fillna(0).astype(float)
        out["monetary_value_holdout"] = per.mean().reindex(out.index).fillna(0.0)
        out["duration_holdout"] = float(end_code - cal_code)
        if monetary_value_col is None:
            out = out.drop(columns=["monetary_value_cal", "monetary_value_holdout"])
    out.index.name = customer_id_col
    out.attrs = {"freq": freq, **left_out}
    return out


# --------------------------------------------------------------------------- shared model plumbing
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
                hint="build the summary with journeylab.clv.models.rfm_summary(transactions).",
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
    """Summary/HTML plumbing shared by the two models."""

    _names: tuple[str, ...] = ()
    fit_: MaximumLikelihoodFit | None = None

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
        return [
            f"  {name:<6} {fmt_num(row['coef']):>9}  (SE {fmt_num(row['se(coef)'])}, 95% CI "
            f"{fmt_ci(row['lower 95% bound'], row['upper 95% bound'])})"
            for name, row in table.iterrows()
        ]

    def _boundary_warning(self) -> None:
        if np.any(self.fit_.at_bound):
            names = [n for n, hit in zip(self._names, self.fit_.at_bound, strict=True) if hit]
            warnings.warn(
                f"{type(self).__name__}: parameter(s) {names} ran to 0 or infinity; the data cannot pin "
                "them down (standard errors are not available). Use a longer history, a finer freq=, "
                "or a small penalizer_coef (e.g. 0.001).",
                RuntimeWarning,
                stacklevel=3,
            )

    def _repr_html_(self) -> str:
        if self.fit_ is None:
            return f"<p>{html.escape(type(self).__name__)} (not fitted)</p>"
        return super()._repr_html_()

    def __repr__(self) -> str:
        if self.fit_ is None:
            return f"<{type(self).__name__} (not fitted)>"
        return super().__repr__()


# --------------------------------------------------------------------------- BG/NBD
class BetaGeo(_FittedModel):
    """BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005).

    While alive, a customer buys at Poisson rate λ ~ Gamma(r, α); after each
    purchase they drop out with probability p ~ Beta(a, b).

    Parameters
    ----------
    penalizer_coef : float
        L2 penalty on the parameters (lifetimes' convention); 0 = plain maximum likelihood.

    Attributes
    ----------
    params_ : Series
        ``r``, ``alpha``, ``a``, ``b`` (``alpha`` in the summary's time unit).
    standard_errors_ : Series
        From the inverse Hessian, delta method to the natural scale.

    Examples
    --------
    >>> model = BetaGeo().fit(rfm_summary(tx))                  # doctest: +SKIP
    >>> model.conditional_probability_alive(summary)            # doctest: +SKIP
    """

    title = "BG/NBD repeat-purchase model"
    _names = ("r", "alpha", "a", "b")

    def __init__(self, penalizer_coef: float = 0.0) -> None:
        self.penalizer_coef = penalizer_coef
        self.fit_ = None

    def fit(
        self, frequency, recency=None, T=None, *, weights=None, freq: str | None = None
    ) -> BetaGeo:
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
        BetaGeo
            ``self``, fitted.
        """
        check_range("penalizer_coef", self.penalizer_coef, low=0, low_inclusive=True)
        if isinstance(frequency, pd.DataFrame):
            freq = freq or frequency.attrs.get("freq")
            self.left_out_ = {k: v for k, v in frequency.attrs.items() if k != "freq"}
        else:
            self.left_out_ = {}
        x, t_x, T, _ = _arrays(frequency, recency, T)
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
                f"No repeat purchases among {n_customers:,.0f} customers: the BG/NBD cannot separate "
                "how often customers buy from how often they drop out. Use a longer observation "
                "period, check that purchases on different days are not merged (freq='D'), or "
                "report the repeat-purchase rate (0) instead."
            )
        if repeaters < 10:
            warnings.warn(
                f"only {repeaters:.0f} customers made a repeat purchase: BG/NBD estimates will be very uncertain.",
                RuntimeWarning,
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
        starts = [
            np.zeros(4),
            np.log([0.5, max(0.5 / max(mean_x, 0.05), 0.05), 1.0, 3.0]),
            np.log([0.2, 0.1, 0.5, 1.0]),
        ]
        x_index = np.unique(sx, return_inverse=True)
        self.fit_ = fit_log_params(
            lambda th: bgnbd_loglik(th, sx, st, sT, counts, x_index),
            starts,
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
        self._boundary_warning()
        return self

    def _natural_params(self) -> np.ndarray:
        params = self.fit_.params.copy()
        params[1] /= self._scale
        return params

    def _unpack(self):
        self._check_fitted()
        return tuple(self._natural_params())

    def conditional_probability_alive(self, frequency, recency=None, T=None):
        """P(customer still alive | history): 1 for customers with no repeat purchase.

        ``1 / (1 + a/(b+x-1) ((α+T)/(α+t_x))^(r+x))`` for ``x > 0``.
        """
        r, alpha, a, b = self._unpack()
        x, t_x, T, index = _arrays(frequency, recency, T)
        log_div = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(
            a / (b + np.maximum(x, 1) - 1)
        )
        return _wrap(np.where(x == 0, 1.0, expit(-log_div)), index, "p_alive")

    def expected_number_of_purchases_up_to_time(self, t):
        """Return the expected purchases of a new customer in ``(0, t]`` (equation 7 of the paper)."""
        r, alpha, a, b = self._unpack()
        t = np.asarray(t, dtype=float)
        hyp = hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return (a + b - 1) / (a - 1) * (1 - hyp * (alpha / (alpha + t)) ** r)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t, frequency, recency=None, T=None
    ):
        """Return the expected purchases in the next ``t`` time units given a history (equation 10)."""
        r, alpha, a, b = self._unpack()
        x, t_x, T, index = _arrays(frequency, recency, T)
        values = _conditional_expected(np.asarray(t, dtype=float), x, t_x, T, r=r, alpha=alpha, a=a, b=b)
        return _wrap(values, index, "expected_purchases")

    predict = conditional_expected_number_of_purchases_up_to_time

    def summary(self) -> str:
        """Return a short plain-language description of the result."""
        self._check_fitted()
        r, alpha, a, b = self._unpack()
        unit = _UNIT_NAMES.get(self.freq_, self.freq_)
        horizon = 365.0 if self.freq_ == "D" else (52.0 if self.freq_ == "W" else 24 * 365.0)
        lines = [
            f"BG/NBD (Fader, Hardie & Lee 2005), maximum likelihood on {self.n_customers_:,} customers "
            f"({self.n_repeat_customers_:,} with repeat purchases); time unit: {unit}.",
            *self._param_lines(),
            f"Log-likelihood {fmt_num(self.log_likelihood_, 7)}.",
            f"Reading: a new customer buys about {fmt_num(r / alpha)} times per {unit} while alive "
            f"(r/alpha) and drops out after a purchase with probability {fmt_pct(a / (a + b))} (a/(a+b)); "
            f"expected repeat purchases in a year: {fmt_num(float(self.expected_number_of_purchases_up_to_time(horizon)))}.",
        ]
        if self.left_out_.get("rows_without_id") or self.left_out_.get("refund_rows"):
            lines.append(describe_left_out(self.left_out_))
        return "\n".join(lines)

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
        ax.set_title("BG/NBD: expected repeat purchases of a new customer")
        return ax


def _conditional_expected(t, x, t_x, T, *, r, alpha, a, b):
    """Equation (10) of Fader, Hardie & Lee (2005), with a transformed 2F1 when it overflows."""
    _a, _b, _c = r + x, b + x, a + b + x - 1
    z = t / (alpha + T + t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ln_hyp = np.log(hyp2f1(_a, _b, _c, z))
        # Euler transformation 2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z)
        ln_hyp_alt = np.log(hyp2f1(_c - _a, _c - _b, _c, z)) + (_c - _a - _b) * np.log1p(-z)
        ln_hyp = np.where(np.isfinite(ln_hyp), ln_hyp, ln_hyp_alt)
        numerator = (
            (a + b + x - 1)
            / (a - 1)
            * (1 - np.exp(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + t + T))))
        )
        denominator = 1 + (x > 0) * (a / (b + np.maximum(x, 1) - 1)) * (
            (alpha + T) / (alpha + t_x)
        ) ** (r + x)
    return np.where(t == 0, 0.0, numerator / denominator)


# --------------------------------------------------------------------------- Gamma-Gamma
class GammaGamma(_FittedModel):
    """Gamma-Gamma model of the mean spend per purchase (Fader & Hardie 2013).

    Spend per transaction ~ Gamma(p, ν), ν ~ Gamma(q, v) across customers; it
    assumes spend is independent of purchase frequency (the summary reports
    the correlation among repeat customers so it can be checked).

    Examples
    --------
    >>> gg = GammaGamma().fit(summary)                               # doctest: +SKIP
    >>> gg.conditional_expected_average_profit(summary)              # doctest: +SKIP
    """

    title = "Gamma-Gamma spend model"
    _names = ("p", "q", "v")

    def __init__(self, penalizer_coef: float = 0.0) -> None:
        self.penalizer_coef = penalizer_coef
        self.fit_ = None

    def fit(self, frequency, monetary_value=None, *, weights=None) -> GammaGamma:
        """Fit on customers with at least one repeat purchase (others carry no spend information).

        Parameters
        ----------
        frequency : DataFrame or array-like
            An :func:`rfm_summary` (``frequency``, ``monetary_value``), or the
            frequency array with ``monetary_value``.
        """
        check_range("penalizer_coef", self.penalizer_coef, low=0, low_inclusive=True)
        if isinstance(frequency, pd.DataFrame):
            x, m = _column(frequency, "frequency"), _column(frequency, "monetary_value")
        else:
            if monetary_value is None:
                raise ParameterError(
                    "GammaGamma.fit needs an RFM summary frame, or frequency and monetary_value."
                )
            x, m = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
        repeat = x > 0
        bad = repeat & ~(m > 0)
        if np.any(bad):
            raise DataError(
                f"{int(bad.sum())} repeat customer(s) have a mean spend <= 0 or missing; the Gamma-Gamma "
                "model needs positive amounts.",
                column="monetary_value",
                rows=list(np.flatnonzero(bad)[:5]),
                hint="build the summary with rfm_summary(..., refunds='drop') so refunds are not purchases.",
            )
        if repeat.sum() < 2:
            raise NotComputableError(
                f"{int(repeat.sum())} customer(s) with repeat purchases: the Gamma-Gamma model needs several "
                "repeat customers to separate within- from between-customer spend variation."
            )
        (ux, um), counts, inverse = _unique_rows(x[repeat], m[repeat])
        if weights is not None:
            counts = np.bincount(inverse, weights=w[repeat])
        self._scale = 1.0 / float(np.average(um, weights=counts))
        sm = um * self._scale
        starts = [np.zeros(3), np.log([2.0, 3.0, 2.0]), np.log([5.0, 2.0, 1.0])]
        x_index = np.unique(ux, return_inverse=True)
        self.fit_ = fit_log_params(
            lambda th: gamma_gamma_loglik(th, ux, sm, counts, x_index),
            starts,
            n_obs=float(counts.sum()),
            penalizer=self.penalizer_coef,
            confirm=2 if len(ux) <= 50_000 else 1,
        )
        # the density of the mean spend carries the money unit: undo the rescaling
        self._ll_shift = float(counts.sum()) * np.log(self._scale)
        self.n_customers_ = int(round(counts.sum()))
        self.spend_frequency_correlation_ = (
            float(np.corrcoef(x[repeat], m[repeat])[0, 1]) if repeat.sum() > 2 else np.nan
        )
        self._boundary_warning()
        return self

    def _natural_params(self) -> np.ndarray:
        params = self.fit_.params.copy()
        params[2] /= self._scale
        return params

    def mean_spend(self) -> float:
        """Return the population mean spend per transaction, ``p v / (q - 1)`` (needs ``q > 1``)."""
        p, q, v = self._natural_params()
        if q <= 1:
            raise NotComputableError(
                f"q == {q:.3g}, must be > 1 for the mean spend to exist: spend is too heavy-tailed for the "
                "Gamma-Gamma model (check for outliers or wholesale orders)."
            )
        return p * v / (q - 1)

    def conditional_expected_average_profit(self, frequency, monetary_value=None):
        """Return the expected mean spend per future transaction given ``x`` purchases of mean ``m``.

        ``(p (v + x m)) / (p x + q - 1)``: a weighted average of the population
        mean and the customer's own mean. Customers with ``x = 0`` get the
        population mean.
        """
        self._check_fitted()
        if isinstance(frequency, pd.DataFrame):
            index = frequency.index
            x, m = _column(frequency, "frequency"), _column(frequency, "monetary_value")
        else:
            index = frequency.index if isinstance(frequency, pd.Series) else None
            x, m = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
        p, q, v = self._natural_params()
        self.mean_spend()
        m = np.where(x > 0, m, 0.0)
        return _wrap(p * (v + x * m) / (p * x + q - 1), index, "expected_spend")

    def customer_lifetime_value(
        self,
        transaction_prediction_model: BetaGeo,
        frequency,
        recency=None,
        T=None,
        monetary_value=None,
        time: int = 12,
        discount_rate: float = 0.01,
        freq: str | None = None,
    ):
        """Discounted CLV over ``time`` months (lifetimes' signature); see :func:`customer_lifetime_value`."""
        if isinstance(frequency, pd.DataFrame):
            summary = frequency
        else:
            summary = pd.DataFrame(
                {
                    "frequency": frequency,
                    "recency": recency,
                    "T": T,
                    "monetary_value": monetary_value,
                }
            )
        return customer_lifetime_value(
            transaction_prediction_model,
            self,
            summary,
            months=time,
            discount_rate=discount_rate,
            freq=freq,
        )

    def summary(self) -> str:
        """Return a short plain-language description of the result."""
        self._check_fitted()
        p, q, v = self._natural_params()
        lines = [
            f"Gamma-Gamma spend model (Fader & Hardie 2013), maximum likelihood on {self.n_customers_:,} "
            "customers with repeat purchases.",
            *self._param_lines(),
            f"Log-likelihood {fmt_num(self.log_likelihood_, 7)}.",
        ]
        if q > 1:
            lines.append(
                f"Population mean spend per purchase p·v/(q-1): {fmt_money(self.mean_spend())}."
            )
        else:
            lines.append(f"q = {fmt_num(q)} <= 1: the mean spend does not exist under this fit.")
        corr = self.spend_frequency_correlation_
        if np.isfinite(corr):
            verdict = "fine" if abs(corr) < 0.3 else "questionable: spend and frequency are related"
            lines.append(
                f"Correlation of frequency and mean spend among repeat customers: {corr:+.2f} "
                f"(the model assumes independence: {verdict})."
            )
        return "\n".join(lines)


# --------------------------------------------------------------------------- CLV
def _discounted_purchases(
    params, ux, ut, uT, *, months: int, freq: str, discount_rate: float
) -> np.ndarray:
    r, alpha, a, b = params
    t = np.arange(1, months + 1) * PERIODS_PER_MONTH[freq]
    cumulative = _conditional_expected(
        t[None, :], ux[:, None], ut[:, None], uT[:, None], r=r, alpha=alpha, a=a, b=b
    )
    monthly = np.diff(cumulative, axis=1, prepend=0.0)
    return monthly @ (1 + discount_rate) ** -np.arange(1, months + 1)


def customer_lifetime_value(
    purchases_model: BetaGeo,
    spend_model: GammaGamma | None,
    summary: pd.DataFrame,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
    freq: str | None = None,
) -> pd.Series:
    """Discounted expected value of each customer's purchases over the next ``months`` months.

    ``CLV = Σ_k E[spend] · E[purchases in month k] / (1 + d)^k`` with ``E[spend]``
    from the Gamma-Gamma model (or the customer's own ``monetary_value`` when
    ``spend_model`` is None) and ``d`` the *monthly* discount rate (0.01 ≈ 12.7 %
    a year). A month is 30 days / 4.345 weeks / 720 hours (lifetimes' convention).

    Examples
    --------
    >>> clv = customer_lifetime_value(bgnbd, gg, summary, months=12)  # doctest: +SKIP
    """
    check_range("discount_rate", discount_rate, low=0, low_inclusive=True)
    if int(months) != months or months < 1:
        raise ParameterError(f"months == {months!r}, must be a whole number >= 1.")
    freq = freq or getattr(purchases_model, "freq_", None) or summary.attrs.get("freq", "D")
    check_in("freq", freq, list(PERIODS_PER_MONTH))
    x, t_x, T, index = _arrays(summary)
    (ux, ut, uT), _, inverse = _unique_rows(x, t_x, T)
    params = purchases_model._unpack()
    discounted_purchases = _discounted_purchases(
        params, ux, ut, uT, months=int(months), freq=freq, discount_rate=discount_rate
    )[inverse]
    if spend_model is None:
        spend = _column(summary, "monetary_value")
    else:
        spend = np.asarray(spend_model.conditional_expected_average_profit(summary), dtype=float)
    return pd.Series(spend * discounted_purchases, index=index, name="clv")


def plot_calibration_purchases_vs_holdout_purchases(
    model: BetaGeo,
    calibration_holdout: pd.DataFrame,
    *,
    kind: Literal["frequency_cal", "recency_cal", "T_cal"] = "frequency_cal",
    n: int = 7,
    ax=None,
):
    """Mean actual vs model-predicted holdout purchases by calibration-period group.

    Customers are grouped by ``kind`` (repeat purchases in the calibration
    period by default, the last group ``n+``); the model predicts each
    customer's holdout purchases from their calibration history.

    Examples
    --------
    >>> cal = rfm_summary(tx, calibration_period_end="2011-09-01")                  # doctest: +SKIP
    >>> plot_calibration_purchases_vs_holdout_purchases(BetaGeo().fit(cal), cal)    # doctest: +SKIP
    """
    from journeylab.core.viz import PALETTE, new_axes

    require_columns(
        calibration_holdout,
        ["frequency_cal", "recency_cal", "T_cal", "frequency_holdout", "duration_holdout"],
        what="calibration/holdout summary",
    )
    check_in("kind", kind, ["frequency_cal", "recency_cal", "T_cal"])
    frame = calibration_holdout
    duration = frame["duration_holdout"].to_numpy(dtype=float)
    predicted = model.conditional_expected_number_of_purchases_up_to_time(
        duration,
        frame["frequency_cal"].to_numpy(float),
        frame["recency_cal"].to_numpy(float),
        frame["T_cal"].to_numpy(float),
    )
    if kind == "frequency_cal":
        group = np.minimum(frame[kind].to_numpy(dtype=int), n)
        labels = {g: (f"{g}+" if g == n else str(g)) for g in np.unique(group)}
        xlabel = "repeat purchases in the calibration period"
    else:
        edges = np.unique(np.quantile(frame[kind], np.linspace(0, 1, n + 1)))
        group = np.clip(np.searchsorted(edges, frame[kind], side="right") - 1, 0, len(edges) - 2)
        labels = {g: f"{fmt_num(edges[g])}–{fmt_num(edges[g + 1])}" for g in np.unique(group)}
        xlabel = f"{kind} (quantile groups)"
    table = pd.DataFrame(
        {"group": group, "actual": frame["frequency_holdout"].to_numpy(float), "model": predicted}
    )
    means = table.groupby("group").agg(
        actual=("actual", "mean"), model=("model", "mean"), customers=("actual", "size")
    )
    ax = new_axes(ax, figsize=(8, 4.5))
    pos = np.arange(len(means))
    ax.plot(pos, means["actual"], marker="o", color=PALETTE[0], label="actual")
    ax.plot(
        pos, means["model"], marker="s", linestyle="--", color=PALETTE[1], label="BG/NBD prediction"
    )
    ax.set_xticks(
        pos,
        [f"{labels[g]}\n(n={c:,})" for g, c in zip(means.index, means["customers"], strict=True)],
    )
    ax.set_xlabel(xlabel)
    unit = _UNIT_NAMES.get(getattr(model, "freq_", "D"), "period")
    ax.set_ylabel(f"mean purchases in the holdout ({fmt_num(float(np.median(duration)))} {unit}s)")
    ax.set_title("Holdout purchases: actual vs predicted")
    ax.legend(loc="upper left")
    ax.set_ylim(bottom=0)
    ax.means_ = means
    return ax
