"""Alternatives to the BG/NBD: the MBG/NBD and the Pareto/NBD purchase models.

Both follow the estimator shape of :class:`journeylab.clv.BetaGeo`
(``__init__`` stores ``penalizer_coef``, ``fit(summary)`` returns ``self``,
learned attributes end in ``_``), are fitted by maximum likelihood on the
unique ``(frequency, recency, T)`` histories with delta-method standard
errors, and report ``status`` / ``warnings`` like every journeylab model.

- :class:`ModifiedBetaGeo` (MBG/NBD, Batislam, Denizel & Filiztekin 2007): as
  the BG/NBD, but a customer may also drop out right after the *first*
  purchase. When the BG/NBD's dropout collapses to its boundary (a → 0: every
  customer with one purchase counts as alive forever), the MBG/NBD usually
  keeps a finite dropout probability, because one-time buyers now carry
  dropout information too. Formulas as in lifetimes' ``ModifiedBetaGeoFitter``.
- :class:`ParetoNBD` (Schmittlein, Morrison & Colombo 1987): customers buy at
  Poisson rate λ ~ Gamma(r, α) and die after an exponential lifetime with rate
  μ ~ Gamma(s, β), at any time rather than only after a purchase. The
  likelihood is the Fader–Hardie form with the Gauss hypergeometric function
  evaluated on the larger of α and β (so its argument stays in [0, 1)) and the
  difference of its two terms taken in log space
  (:func:`journeylab.clv.likelihoods.pareto_nbd_loglik`); its gradient is
  numerical (five-point differences), as scipy has no derivative of 2F1 in its
  parameters. On the CDNOW sample it gives the published r = 0.55, α = 10.58,
  s = 0.61, β = 11.67 (Fader, Hardie & Lee 2005, MATLAB note).

Compare them on a holdout period with :func:`journeylab.clv.holdout.calibration_and_holdout`.

References
----------
Batislam, E. P., Denizel, M. and Filiztekin, A. (2007), "Empirical validation
and comparison of models for customer base analysis", International Journal of
Research in Marketing 24(3), 201-209.
Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987), "Counting Your
Customers: Who Are They and What Will They Do Next?", Management Science 33(1), 1-24.
Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "A Note on Implementing
the Pareto/NBD Model in MATLAB", http://brucehardie.com/notes/008/.
Fader, P. S. and Hardie, B. G. S. (2005), "A Note on Deriving the Pareto/NBD
Model and Related Expressions", http://brucehardie.com/notes/009/.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, hyp1f1, hyp2f1

from journeylab.clv.fitting import (
    DROPOUT_MEANINGS,
    _arrays,
    _PurchaseModel,
    _wrap,
    dropout_reading,
    withhold_dropout,
)
from journeylab.clv.likelihoods import (
    mbgnbd_loglik,
    pareto_nbd_log_a0,
    pareto_nbd_loglik,
    with_numeric_gradient,
)
from journeylab.core.model_checks import Direction, single_directions

__all__ = ["ModifiedBetaGeo", "ParetoNBD"]


def _log_hyp2f1(a, b, c, z):
    """``ln 2F1(a, b; c; z)``, through Euler's transformation where the direct value overflows.

    When ``a`` is huge and ``z`` small (a purchase-rate fit at r, α → ∞, i.e. one rate
    for everyone) both forms fail; the confluent limit ``2F1(a, b; c; z) → 1F1(b; c; a z)``
    holds there.
    """
    with np.errstate(all="ignore"):
        direct = np.log(hyp2f1(a, b, c, z))
        euler = np.log(hyp2f1(c - a, c - b, c, z)) + (c - a - b) * np.log1p(-z)
        out = np.where(np.isfinite(direct), direct, euler)
        huge = np.broadcast_to(np.asarray(a, dtype=float) > 1e6, np.shape(out))
        if np.any(huge & ~np.isfinite(out)):
            confluent = np.log(hyp1f1(b, c, np.asarray(a, dtype=float) * z))
            out = np.where(huge & ~np.isfinite(out), confluent, out)
    return out


class ModifiedBetaGeo(_PurchaseModel):
    """MBG/NBD model of repeat purchasing (Batislam, Denizel & Filiztekin 2007).

    While alive, a customer buys at Poisson rate λ ~ Gamma(r, α); at each
    purchase, the first included, they drop out with probability p ~ Beta(a, b).

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
    >>> from journeylab.clv.rfm import rfm_summary
    >>> from journeylab.datasets.sample import make_sample
    >>> tx = make_sample(seed=1, n_users=2000).transactions
    >>> summary = rfm_summary(tx)
    >>> model = ModifiedBetaGeo().fit(summary)
    >>> model.conditional_expected_number_of_purchases_up_to_time(90, summary).round(1).head(3).tolist()
    [0.9, 0.5, 0.3]
    """

    title = "MBG/NBD repeat-purchase model"
    _names = ("r", "alpha", "a", "b")
    _short = "MBG/NBD"

    def _loglik(self, theta, x, t_x, T, w, x_index):
        return mbgnbd_loglik(theta, x, t_x, T, w, x_index)

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
        """P(customer still alive | history): ``1 / (1 + a/(b+x) ((α+T)/(α+t_x))^(r+x))``."""
        r, alpha, a, b = self._unpack()
        x, t_x, T, index = _arrays(frequency, recency, T)
        log_odds_dead = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(a / (b + x))
        return _wrap(expit(-log_odds_dead), index, "p_alive")

    def expected_number_of_purchases_up_to_time(self, t):
        """Return the expected repeat purchases of a new customer in ``(0, t]``.

        ``b/(a-1) [1 - 2F1(r, b+1; a+b; t/(α+t)) (α/(α+t))^r]``.
        """
        r, alpha, a, b = self._unpack()
        t = np.asarray(t, dtype=float)
        log_hyp = _log_hyp2f1(r, b + 1, a + b, t / (alpha + t))
        return b / (a - 1) * (1 - np.exp(log_hyp - r * np.log1p(t / alpha)))

    def conditional_expected_number_of_purchases_up_to_time(
        self, t, frequency, recency=None, T=None
    ):
        """Return the expected purchases in the next ``t`` time units given a history.

        ``(a+b+x)/(a-1) [1 - 2F1(r+x, b+x+1; a+b+x; t/(α+T+t)) ((α+T)/(α+T+t))^(r+x)]
        / (1 + a/(b+x) ((α+T)/(α+t_x))^(r+x))``.
        """
        r, alpha, a, b = self._unpack()
        x, t_x, T, index = _arrays(frequency, recency, T)
        t = np.asarray(t, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_hyp = _log_hyp2f1(r + x, b + x + 1, a + b + x, t / (alpha + T + t))
            numerator = (
                (a + b + x) / (a - 1) * (1 - np.exp(log_hyp - (r + x) * np.log1p(t / (alpha + T))))
            )
            denominator = 1 + a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x)
            values = np.where(t == 0, 0.0, numerator / denominator)
        return _wrap(values, index, "expected_purchases")

    predict = conditional_expected_number_of_purchases_up_to_time

    def summary(self) -> str:
        """Return a short plain-language description of the result (first line: can it be trusted?)."""
        self._check_fitted()
        r, alpha, a, b = self._unpack()
        return "\n".join(
            [
                *self._header("Batislam, Denizel & Filiztekin 2007"),
                *dropout_reading(
                    self, r, alpha, a / (a + b), "at each purchase, the first included", "a/(a+b)"
                ),
                self._expected_purchases_line(),
                *self._footer(),
            ]
        )


class ParetoNBD(_PurchaseModel):
    """Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987).

    While alive, a customer buys at Poisson rate λ ~ Gamma(r, α); their
    lifetime is exponential with rate μ ~ Gamma(s, β), independent of λ.

    Parameters
    ----------
    penalizer_coef : float
        L2 penalty on the parameters (lifetimes' convention); 0 = plain maximum likelihood.

    Attributes
    ----------
    params_ : Series
        ``r``, ``alpha``, ``s``, ``beta`` (``alpha`` and ``beta`` in the summary's time unit).
    standard_errors_ : Series
        From the inverse Hessian (numerical, from the numerical gradient), delta method.
    status, warnings : str, list of str
        Whether the fit can be trusted (see :mod:`journeylab.core.model_checks`).

    Examples
    --------
    >>> from journeylab.clv.rfm import rfm_summary
    >>> from journeylab.datasets.sample import make_sample
    >>> tx = make_sample(seed=1, n_users=2000).transactions
    >>> model = ParetoNBD().fit(rfm_summary(tx, freq="W"))
    >>> float(model.params_["r"].round(1)), model.status
    (3.9, 'boundary')
    """

    title = "Pareto/NBD repeat-purchase model"
    _names = ("r", "alpha", "s", "beta")
    _short = "Pareto/NBD"
    _time_params = (1, 3)

    def _loglik(self, theta, x, t_x, T, w, x_index):
        value = with_numeric_gradient(lambda th: pareto_nbd_loglik(th, x, t_x, T, w, x_index))
        return value(theta)

    def _loglik_value(self, theta, x, t_x, T, w, x_index) -> float:
        return pareto_nbd_loglik(theta, x, t_x, T, w, x_index)

    def _starts(self, mean_x: float) -> list[np.ndarray]:
        return [
            np.log([0.5, max(0.5 / max(mean_x, 0.05), 0.05), 0.5, 1.0]),
            np.zeros(4),
            np.log([1.0, 1.0, 0.2, 0.2]),
        ]

    def _directions(self) -> list[Direction]:
        no_dropout = "the data show no dropout"
        return [
            *single_directions(self._names, {"s → 0": no_dropout, "beta → ∞": no_dropout}),
            Direction("s → 0, beta → ∞", (0, 0, -1, 1), ("s", "beta"), no_dropout),
            Direction("s, beta → ∞", (0, 0, 1, 1), (), "every customer has the same dropout rate"),
            Direction("r, alpha → ∞", (1, 1, 0, 0), (), "every customer buys at the same rate"),
        ]

    def _withhold(self) -> None:
        withhold_dropout(self.diagnostics_, dropout=("s", "beta"))

    def _log_a0(self, x, t_x, T):
        return pareto_nbd_log_a0(self._unpack(), x, t_x, T)

    def conditional_probability_alive(self, frequency, recency=None, T=None):
        """P(customer still alive | history): ``1 / (1 + s/(r+s+x) (α+T)^(r+x) (β+T)^s A0)``."""
        r, alpha, s, beta = self._unpack()
        x, t_x, T, index = _arrays(frequency, recency, T)
        with np.errstate(divide="ignore"):
            log_odds_dead = (
                np.log(s)
                - np.log(r + s + x)
                + (r + x) * np.log(alpha + T)
                + s * np.log(beta + T)
                + self._log_a0(x, t_x, T)
            )
        return _wrap(expit(-log_odds_dead), index, "p_alive")

    def expected_number_of_purchases_up_to_time(self, t):
        """Return the expected repeat purchases of a new customer in ``(0, t]``.

        ``r β / (α (s-1)) [1 - (β/(β+t))^(s-1)]`` (its limit ``r β/α ln(1+t/β)`` at ``s = 1``).
        """
        r, alpha, s, beta = self._unpack()
        t = np.asarray(t, dtype=float)
        return r * beta / alpha * _one_minus_power_over(s - 1, np.log1p(t / beta))

    def conditional_expected_number_of_purchases_up_to_time(
        self, t, frequency, recency=None, T=None
    ):
        """Return the expected purchases in the next ``t`` time units given a history.

        ``(r+x)(β+T) / ((α+T)(s-1)) [1 - ((β+T)/(β+T+t))^(s-1)] P(alive)``
        (Fader & Hardie note 009, equation 41).
        """
        r, alpha, s, beta = self._unpack()
        x, t_x, T, index = _arrays(frequency, recency, T)
        t = np.asarray(t, dtype=float)
        alive = np.asarray(self.conditional_probability_alive(x, t_x, T), dtype=float)
        factor = _one_minus_power_over(s - 1, np.log1p(t / (beta + T)))
        values = (r + x) * (beta + T) / (alpha + T) * factor * alive
        return _wrap(values, index, "expected_purchases")

    predict = conditional_expected_number_of_purchases_up_to_time

    def summary(self) -> str:
        """Return a short plain-language description of the result (first line: can it be trusted?)."""
        self._check_fitted()
        r, alpha, s, beta = self._unpack()
        gone = 1 - (beta / (beta + self._horizon())) ** s
        return "\n".join(
            [
                *self._header("Schmittlein, Morrison & Colombo 1987"),
                *dropout_reading(
                    self, r, alpha, gone, "within a year of their first purchase", "1-(β/(β+t))^s"
                ),
                self._expected_purchases_line(),
                *self._footer(),
            ]
        )


def _one_minus_power_over(k, log_ratio):
    """``(1 - exp(-k L)) / k`` with its limit ``L`` at ``k = 0``, without cancellation."""
    log_ratio = np.asarray(log_ratio, dtype=float)
    if abs(k) < 1e-10:
        return log_ratio
    return -np.expm1(-k * log_ratio) / k
