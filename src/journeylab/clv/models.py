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

Every fit ends with diagnostics (:mod:`journeylab.core.model_checks`): ``status``
(``"ok"``, ``"boundary"``, ``"not_converged"``, ``"not_identified"``),
plain-language ``warnings``, a :class:`~journeylab.core.errors.ModelWarning` on fit,
and a first summary line saying whether the fit can be trusted. Quantities that
rest on a suspect parameter (the dropout probability when the dropout
parameter is at its boundary, the total expected value) are withheld from the
summaries with the reason. MBG/NBD and Pareto/NBD live in
:mod:`journeylab.clv.alternatives`, the calibration/holdout comparison in
:mod:`journeylab.clv.holdout`.

References
----------
Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", Marketing
Science 24(2). Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, hyp2f1

from journeylab.clv.fitting import (  # noqa: F401 -- the shared plumbing stays importable from here
    _UNIT_NAMES,
    DROPOUT_MEANINGS,
    PERIODS_PER_MONTH,
    Freq,
    _arrays,
    _column,
    _FittedModel,
    _param_table,
    _PurchaseModel,
    _unique_rows,
    _validate_histories,
    _wrap,
    dropout_reading,
    withhold_dropout,
)
from journeylab.clv.likelihoods import bgnbd_loglik, fit_log_params, gamma_gamma_loglik
from journeylab.clv.rfm import rfm_summary
from journeylab.core.errors import (
    DataError,
    NotComputableError,
    ParameterError,
    check_in,
    check_range,
)
from journeylab.core.model_checks import Direction, single_directions
from journeylab.core.results import fmt_money, fmt_num

__all__ = [
    "rfm_summary",
    "BetaGeo",
    "GammaGamma",
    "customer_lifetime_value",
]


class BetaGeo(_PurchaseModel):
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
    status, warnings : str, list of str
        Whether the fit can be trusted (see :mod:`journeylab.core.model_checks`).

    Examples
    --------
    >>> from journeylab.datasets.sample import make_sample
    >>> tx = make_sample(seed=1, n_users=2000).transactions
    >>> summary = rfm_summary(tx)
    >>> model = BetaGeo().fit(summary)
    >>> model.status, model.params_.round(1).to_dict()
    ('ok', {'r': 1.0, 'alpha': 58.3, 'a': 1.0, 'b': 2.3})
    >>> model.conditional_probability_alive(summary).round(2).head(3).tolist()
    [0.67, 0.35, 1.0]
    """

    title = "BG/NBD repeat-purchase model"
    _names = ("r", "alpha", "a", "b")
    _short = "BG/NBD"

    def _loglik(self, theta, x, t_x, T, w, x_index):
        return bgnbd_loglik(theta, x, t_x, T, w, x_index)

    def _directions(self) -> list[Direction]:
        return [
            *single_directions(self._names, DROPOUT_MEANINGS),
            Direction("a → 0, b → ∞", (0, 0, -1, 1), ("a", "b"), DROPOUT_MEANINGS["a → 0"]),
            Direction(
                "a, b → ∞", (0, 0, 1, 1), (), "every customer has the same dropout probability"
            ),
            Direction("r, alpha → ∞", (1, 1, 0, 0), (), "every customer buys at the same rate"),
        ]

    def _withhold(self) -> None:
        withhold_dropout(self.diagnostics_)

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
        values = _conditional_expected(
            np.asarray(t, dtype=float), x, t_x, T, r=r, alpha=alpha, a=a, b=b
        )
        return _wrap(values, index, "expected_purchases")

    predict = conditional_expected_number_of_purchases_up_to_time

    def summary(self) -> str:
        """Return a short plain-language description of the result (first line: can it be trusted?)."""
        self._check_fitted()
        r, alpha, a, b = self._unpack()
        return "\n".join(
            [
                *self._header("Fader, Hardie & Lee 2005"),
                *dropout_reading(self, r, alpha, a / (a + b), "after a purchase", "a/(a+b)"),
                self._expected_purchases_line(),
                *self._footer(),
            ]
        )


def _conditional_expected(t, x, t_x, T, *, r, alpha, a, b):
    """Equation (10) of Fader, Hardie & Lee (2005), with a transformed 2F1 when it overflows.

    The 2F1 is used as a signed value: for customers without repeat purchases
    its third argument ``a + b - 1`` is negative when ``a + b < 1`` (a fit near
    the no-dropout boundary) and the function is then negative, so it cannot be
    taken in logs. Only where it overflows does Euler's transformation
    ``2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z)`` take over, in logs.
    At ``a = 1`` the closed form is 0/0; the value there is the limit.
    """
    if abs(a - 1.0) < 1e-6:
        # a = 1 is a removable singularity of the closed form (0/0): the mean of the two
        # sides at a = 1 ± 1e-4 is exact to O(1e-8)
        h = 1e-4
        return 0.5 * (
            _conditional_expected(t, x, t_x, T, r=r, alpha=alpha, a=1.0 + h, b=b)
            + _conditional_expected(t, x, t_x, T, r=r, alpha=alpha, a=1.0 - h, b=b)
        )
    _a, _b, _c = r + x, b + x, a + b + x - 1
    z = t / (alpha + T + t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_power = (r + x) * np.log((alpha + T) / (alpha + t + T))
        direct = hyp2f1(_a, _b, _c, z) * np.exp(log_power)
        euler = np.exp(
            np.log(hyp2f1(_c - _a, _c - _b, _c, z)) + (_c - _a - _b) * np.log1p(-z) + log_power
        )
        term = np.where(np.isfinite(direct), direct, euler)
        numerator = (a + b + x - 1) / (a - 1) * (1 - term)
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
    >>> from journeylab.datasets.sample import make_sample
    >>> tx = make_sample(seed=1, n_users=2000).transactions
    >>> summary = rfm_summary(tx)
    >>> gg = GammaGamma(currency="EUR").fit(summary)
    >>> print(gg.summary().splitlines()[-2])
    Population mean spend per purchase p·v/(q-1): €240.
    >>> gg.conditional_expected_average_profit(summary).round(-1).head(3).tolist()
    [290.0, 480.0, 240.0]
    """

    title = "Gamma-Gamma spend model"
    _names = ("p", "q", "v")
    _short = "Gamma-Gamma"

    def __init__(self, penalizer_coef: float = 0.0, *, currency: str = "USD") -> None:
        self.penalizer_coef = penalizer_coef
        self.currency = currency
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

        def loglik(theta):
            return gamma_gamma_loglik(theta, ux, sm, counts, x_index)

        self.fit_ = fit_log_params(
            loglik,
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
        self._diagnose(lambda theta: loglik(theta)[0])
        return self

    def _directions(self) -> list[Direction]:
        return [
            *single_directions(
                self._names,
                {"p → ∞": "each customer would spend the same amount on every purchase"},
            ),
            Direction("q, v → ∞", (0, 1, 1), (), "every customer has the same mean spend"),
        ]

    def _withhold(self) -> None:
        d = self.diagnostics_
        d.withhold("mean_spend", self._names)
        d.withhold("total_value", self._names)
        q = self._natural_params()[1]
        if q <= 1 and "mean_spend" not in d.withheld:
            d.withheld["mean_spend"] = (
                f"not shown: q = {fmt_num(q)} <= 1, so the mean spend does not exist under this fit "
                "(spend too heavy-tailed: check for outliers or wholesale orders)."
            )

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
            self.diagnostics_.headline(),
            f"Gamma-Gamma spend model (Fader & Hardie 2013), maximum likelihood on {self.n_customers_:,} "
            "customers with repeat purchases.",
            *self._param_lines(),
            f"Log-likelihood {fmt_num(self.log_likelihood_, 7)}.",
        ]
        reason = self.withheld("mean_spend")
        if reason:
            lines.append(f"Population mean spend per purchase: {reason}")
        else:
            lines.append(
                f"Population mean spend per purchase p·v/(q-1): "
                f"{fmt_money(self.mean_spend(), self.currency)}."
            )
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
    purchases_model: _PurchaseModel,
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
    >>> from journeylab.datasets.sample import make_sample
    >>> tx = make_sample(seed=1, n_users=2000).transactions
    >>> summary = rfm_summary(tx)
    >>> clv = customer_lifetime_value(BetaGeo().fit(summary), GammaGamma().fit(summary), summary)
    >>> round(float(clv.mean()), -1)
    460.0
    """
    check_range("discount_rate", discount_rate, low=0, low_inclusive=True)
    if int(months) != months or months < 1:
        raise ParameterError(f"months == {months!r}, must be a whole number >= 1.")
    freq = freq or getattr(purchases_model, "freq_", None) or summary.attrs.get("freq", "D")
    check_in("freq", freq, list(PERIODS_PER_MONTH))
    x, t_x, T, index = _arrays(summary)
    (ux, ut, uT), _, inverse = _unique_rows(x, t_x, T)
    if isinstance(purchases_model, BetaGeo):
        discounted_purchases = _discounted_purchases(
            purchases_model._unpack(),
            ux,
            ut,
            uT,
            months=int(months),
            freq=freq,
            discount_rate=discount_rate,
        )[inverse]
    else:  # MBG/NBD, Pareto/NBD: the same sum over their own conditional expectations
        t = np.arange(1, int(months) + 1) * PERIODS_PER_MONTH[freq]
        cumulative = np.asarray(
            purchases_model.conditional_expected_number_of_purchases_up_to_time(
                t[None, :], ux[:, None], ut[:, None], uT[:, None]
            ),
            dtype=float,
        )
        monthly = np.diff(cumulative, axis=1, prepend=0.0)
        discounted_purchases = (monthly @ (1 + discount_rate) ** -np.arange(1, int(months) + 1))[
            inverse
        ]
    if spend_model is None:
        spend = _column(summary, "monetary_value")
    else:
        spend = np.asarray(spend_model.conditional_expected_average_profit(summary), dtype=float)
    return pd.Series(spend * discounted_purchases, index=index, name="clv")
