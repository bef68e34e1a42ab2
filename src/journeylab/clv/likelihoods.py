"""Log-likelihoods, analytic gradients and the maximum-likelihood fitter behind :mod:`journeylab.clv.models`.

Everything here works on plain numpy arrays of *unique* customer histories with
integer weights (the number of customers sharing a history), so a million
customers cost as much as their few thousand distinct ``(frequency, recency, T)``
rows. Parameters are optimised on the log scale (they are all positive) with
SLSQP (bounded, and unlike L-BFGS-B free of BLAS thread start-up costs for
four parameters) and analytic gradients, from several starting points, then polished
with Newton steps; standard errors come from the inverse observed information
(the Hessian of the log-likelihood, by central differences of the analytic
gradient) mapped back to the natural scale by the delta method.

References
----------
Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "Counting Your Customers
the Easy Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2),
275-284 (BG/NBD, equation 6 and its log form in Hardie's note 004).
Fader, P. S. and Hardie, B. G. S. (2013), "The Gamma-Gamma Model of Monetary
Value", http://brucehardie.com/notes/025/ (equation 1a).
Batislam, E. P., Denizel, M. and Filiztekin, A. (2007), "Empirical validation
and comparison of models for customer base analysis", International Journal of
Research in Marketing 24(3), 201-209 (MBG/NBD).
Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987), "Counting Your
Customers: Who Are They and What Will They Do Next?", Management Science 33(1),
1-24 (Pareto/NBD); its likelihood in the form of Fader, P. S., Hardie, B. G. S.
and Lee, K. L. (2005), "A Note on Implementing the Pareto/NBD Model in MATLAB",
http://brucehardie.com/notes/008/, and Fader & Hardie (2005), "A Note on
Deriving the Pareto/NBD Model and Related Expressions",
http://brucehardie.com/notes/009/ (equations 18-20).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, hyp2f1

__all__ = [
    "bgnbd_loglik",
    "mbgnbd_loglik",
    "pareto_nbd_loglik",
    "pareto_nbd_log_a0",
    "with_numeric_gradient",
    "gamma_gamma_loglik",
    "MaximumLikelihoodFit",
    "fit_log_params",
]

#: Bounds of the log-parameters: exp(±30) is far beyond any meaningful value,
#: reaching a bound means the data push a parameter to 0 or infinity.
LOG_BOUND = 30.0


def _by_value(x: np.ndarray, x_index: tuple[np.ndarray, np.ndarray] | None):
    """Distinct frequencies and the map back: special functions then run on a few values only."""
    return np.unique(x, return_inverse=True) if x_index is None else x_index


#: Above this, sums replace differences of lnΓ and ψ in the dropout terms (see _beta_ratio).
_LARGE_SHAPE = 1e4


def _beta_ratio(a: float, b: float, xu: np.ndarray, extra: int = 0):
    """``ln B(a, b+n) - ln B(a, b)`` and its derivatives in ``a`` and ``b``, for ``n = xu + extra``.

    On its face ``lnΓ(a+b) + lnΓ(b+n) - lnΓ(b) - lnΓ(a+b+n)``; when a shape
    parameter is large (a fit running toward equal dropout probabilities,
    a, b → ∞ together) those lnΓ values are ~1e9 and their difference keeps no
    digits, so the Hessian and the boundary check would read noise. There the
    exact finite sum ``-Σ_{k<n} ln(1 + a/(b+k))`` (n is a whole count) is used.
    Returns the value, ``∂/∂a`` and ``∂/∂b``, each on the distinct counts.
    """
    n = xu + extra
    if max(a, b) < _LARGE_SHAPE:
        value = gammaln(a + b) + gammaln(b + n) - gammaln(b) - gammaln(a + b + n)
        d_a = digamma(a + b) - digamma(a + b + n)
        d_b = d_a + digamma(b + n) - digamma(b)
        return value, d_a, d_b
    k = np.arange(int(np.max(n, initial=0)), dtype=float)
    bk = b + k
    idx = n.astype(int)

    def partial_sums(terms):
        return np.concatenate([[0.0], np.cumsum(terms)])[idx]

    return (
        partial_sums(-np.log1p(a / bk)),
        partial_sums(-1.0 / (a + bk)),
        partial_sums(a / (bk * (a + bk))),
    )


def bgnbd_loglik(
    log_params: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    x_index: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, np.ndarray]:
    """Weighted BG/NBD log-likelihood and its gradient in ``log(r, alpha, a, b)``.

    ``LL = lnΓ(r+x) - lnΓ(r) + r ln α + ln B(a, b+x) - ln B(a, b)
    + ln[(α+T)^-(r+x) + 1{x>0} a/(b+x-1) (α+t_x)^-(r+x)]``.
    ``x_index`` (``np.unique(x, return_inverse=True)``) can be passed to save
    recomputing it at every evaluation.
    """
    r, alpha, a, b = np.exp(log_params)
    xu, inv = _by_value(x, x_index)
    # terms that depend on the frequency only, on its distinct values
    a1 = (gammaln(r + xu) - gammaln(r))[inv] + r * np.log(alpha)
    a2, d_a2, d_b2 = (v[inv] for v in _beta_ratio(a, b, xu))
    psi_r = (digamma(r + xu) - digamma(r))[inv]
    repeat = x > 0
    log_alpha_T = np.log(alpha + T)
    log_alpha_tx = np.log(alpha + t_x)
    a3 = -(r + x) * log_alpha_T
    b_x1 = b + np.maximum(x, 1) - 1
    a4 = np.where(repeat, np.log(a) - np.log(b_x1) - (r + x) * log_alpha_tx, -np.inf)
    top = np.maximum(a3, a4)
    e3 = np.exp(a3 - top)
    e4 = np.exp(a4 - top)
    total = e3 + e4
    ll = float(np.dot(weights, a1 + a2 + top + np.log(total)))
    # softmax weights of the two terms inside the log
    w3 = e3 / total
    w4 = e4 / total
    d_r = psi_r + np.log(alpha) - w3 * log_alpha_T - w4 * log_alpha_tx
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    d_a = d_a2 + w4 / a
    d_b = d_b2 - w4 / b_x1
    grad = np.array([np.dot(weights, d) for d in (d_r, d_alpha, d_a, d_b)])
    return ll, grad * np.array([r, alpha, a, b])


def mbgnbd_loglik(
    log_params: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    x_index: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, np.ndarray]:
    """Weighted MBG/NBD log-likelihood and its gradient in ``log(r, alpha, a, b)``.

    As the BG/NBD, except that a customer may also drop out right after the
    first purchase, so the second term is present for ``x = 0`` too:
    ``LL = lnΓ(r+x) - lnΓ(r) + r ln α + ln B(a, b+x+1) - ln B(a, b)
    + ln[(α+T)^-(r+x) + a/(b+x) (α+t_x)^-(r+x)]`` (Batislam et al. 2007; the
    form of lifetimes' ``ModifiedBetaGeoFitter``).
    """
    r, alpha, a, b = np.exp(log_params)
    xu, inv = _by_value(x, x_index)
    a1 = (gammaln(r + xu) - gammaln(r))[inv] + r * np.log(alpha)
    a2, d_a2, d_b2 = (v[inv] for v in _beta_ratio(a, b, xu, extra=1))
    psi_r = (digamma(r + xu) - digamma(r))[inv]
    log_alpha_T = np.log(alpha + T)
    log_alpha_tx = np.log(alpha + t_x)
    a3 = -(r + x) * log_alpha_T
    a4 = np.log(a) - np.log(b + x) - (r + x) * log_alpha_tx
    top = np.maximum(a3, a4)
    e3 = np.exp(a3 - top)
    e4 = np.exp(a4 - top)
    total = e3 + e4
    ll = float(np.dot(weights, a1 + a2 + top + np.log(total)))
    w3 = e3 / total
    w4 = e4 / total
    d_r = psi_r + np.log(alpha) - w3 * log_alpha_T - w4 * log_alpha_tx
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
    d_a = d_a2 + w4 / a
    d_b = d_b2 - w4 / (b + x)
    grad = np.array([np.dot(weights, d) for d in (d_r, d_alpha, d_a, d_b)])
    return ll, grad * np.array([r, alpha, a, b])


#: Gauss-Legendre rule for the Pareto/NBD integral where 2F1 is slow (see pareto_nbd_log_a0).
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(32)
#: Above this hypergeometric argument scipy's 2F1 costs ~0.3 ms per value (and can return
#: NaN): the quadrature takes over, agreeing with it to ~1e-12.
Z_QUADRATURE = 0.99


def _log_a0_hyp2f1(r, alpha, s, beta, *, x, t_x, T):
    """``ln A0`` by the Fader-Hardie 2F1 form, written on the larger of α and β (``0 <= z < 1``)."""
    rsx = r + s + x
    big = max(alpha, beta)
    second = s + 1.0 if alpha >= beta else r + x
    gap = abs(alpha - beta)
    with np.errstate(all="ignore"):
        log_u = np.log(hyp2f1(rsx, second, rsx + 1.0, gap / (big + t_x))) - rsx * np.log(big + t_x)
        log_v = np.log(hyp2f1(rsx, second, rsx + 1.0, gap / (big + T))) - rsx * np.log(big + T)
        # A0 = u - v with u >= v; in logs, ln u + ln(1 - v/u) stays accurate when t_x is near T
        return log_u + np.log1p(-np.minimum(np.exp(log_v - log_u), 1.0))


def _log_a0_quadrature(r, alpha, s, beta, *, x, t_x, T):
    """``ln A0 = ln[(r+s+x) ∫_{t_x}^{T} (α+τ)^-(r+x) (β+τ)^-(s+1) dτ]`` by Gauss-Legendre.

    The variable is ``u = ln(m+τ)`` with ``m = min(α, β)``: the integrand
    ``exp h(u)`` then has a concave exponent, so beyond ``60/|h'|`` from a
    falling (or rising) end it is below e^-60 of its peak and the window is
    cut there; 32 nodes on the window give ~1e-12 against adaptive quadrature.
    """
    small, big = min(alpha, beta), max(alpha, beta)
    e_small = r + x if alpha <= beta else np.full_like(x, s + 1.0)
    e_big = np.full_like(x, s + 1.0) if alpha <= beta else r + x
    gap = big - small

    def slope(u):
        return (1.0 - e_small) - e_big * np.exp(u) / (gap + np.exp(u))

    u0, u1 = np.log(small + t_x), np.log(small + T)
    d0, d1 = slope(u0), slope(u1)
    with np.errstate(divide="ignore"):
        hi = np.where(d0 < 0, np.minimum(u1, u0 + 60.0 / -d0), u1)
        lo = np.where((d0 >= 0) & (d1 > 0), np.maximum(u0, u1 - 60.0 / d1), u0)
    half = (hi - lo) / 2
    u = ((hi + lo) / 2)[:, None] + half[:, None] * _GL_NODES[None, :]
    h = (1.0 - e_small)[:, None] * u - e_big[:, None] * np.log(gap + np.exp(u))
    top = h.max(axis=1)
    with np.errstate(divide="ignore"):
        integral = np.log(half * (np.exp(h - top[:, None]) @ _GL_WEIGHTS)) + top
    return np.log(r + s + x) + integral


def pareto_nbd_log_a0(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """``ln A0`` of the Pareto/NBD likelihood (Fader & Hardie note 009, equations 19-20).

    ``A0 = 2F1(r+s+x, b; r+s+x+1; z(t_x)) / (m+t_x)^(r+s+x) - 2F1(…; z(T)) / (m+T)^(r+s+x)``
    with ``m = max(α, β)``, ``z(t) = |α-β| / (m+t)`` and ``b = s+1`` when
    ``α >= β``, ``b = r+x`` otherwise: writing it on the larger of α and β keeps
    ``0 <= z < 1``, where the series converges (the form of the MATLAB note
    008). The difference is taken in log space so it stays accurate when the
    two terms are close (recency near T). Where ``z > Z_QUADRATURE`` (one rate
    thousands of times the other, as when a fit runs to a boundary) scipy's 2F1
    becomes slow and may fail; there the same quantity, ``(r+s+x)`` times the
    integral it comes from, is computed by quadrature instead.
    """
    r, alpha, s, beta = (float(v) for v in params)
    x, t_x, T = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(x, t_x, T))
    shape = x.shape
    x, t_x, T = x.ravel(), t_x.ravel(), T.ravel()
    out = np.empty_like(x)
    z = abs(alpha - beta) / (max(alpha, beta) + t_x)
    quadrature = z > Z_QUADRATURE
    # With c - a - b an integer (s whole when α >= β, r whole otherwise) scipy's 2F1 takes
    # its degenerate branch near z = 1 and keeps about eight digits (1e-8 off at
    # 2F1(136, 2; 137; 0.91)); the quadrature keeps fifteen.
    if float(s if alpha >= beta else r).is_integer():
        quadrature |= z > 0.5
    easy = ~quadrature
    if np.any(easy):
        out[easy] = _log_a0_hyp2f1(r, alpha, s, beta, x=x[easy], t_x=t_x[easy], T=T[easy])
        failed = easy & ~np.isfinite(out) & (t_x < T)
        quadrature |= failed
    if np.any(quadrature):
        q = quadrature
        out[q] = _log_a0_quadrature(r, alpha, s, beta, x=x[q], t_x=t_x[q], T=T[q])
    out[t_x >= T] = -np.inf  # recency == T: the dropout term vanishes
    return out.reshape(shape)


def pareto_nbd_loglik(
    log_params: np.ndarray,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    x_index: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """Weighted Pareto/NBD log-likelihood in ``log(r, alpha, s, beta)`` (value only).

    ``LL = lnΓ(r+x) - lnΓ(r) + r ln α + s ln β
    + ln[(α+T)^-(r+x) (β+T)^-s + s/(r+s+x) A0]`` (Fader & Hardie note 009,
    equation 18). Wrap with :func:`with_numeric_gradient` for the optimiser:
    the derivatives of 2F1 in its parameters have no closed form in scipy.
    """
    r, alpha, s, beta = np.exp(log_params)
    xu, inv = _by_value(x, x_index)
    a1 = (gammaln(r + xu) - gammaln(r))[inv] + r * np.log(alpha) + s * np.log(beta)
    first = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    second = np.log(s) - np.log(r + s + x) + pareto_nbd_log_a0((r, alpha, s, beta), x, t_x, T)
    return float(np.dot(weights, a1 + np.logaddexp(first, second)))


def with_numeric_gradient(
    loglik: Callable[[np.ndarray], float], step: float = 1e-5
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Turn a value-only log-likelihood into ``(value, gradient)`` by central differences.

    On the log scale with ``step = 1e-5`` the truncation error is ~1e-10 and
    the rounding error ~1e-16 |LL| / step, far below the optimiser's tolerance.
    """

    def value_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.asarray(theta, dtype=float)
        value = loglik(theta)
        grad = np.empty_like(theta)
        for j in range(theta.size):
            e = np.zeros_like(theta)
            e[j] = step
            grad[j] = (loglik(theta + e) - loglik(theta - e)) / (2.0 * step)
        return value, grad

    return value_and_gradient


def gamma_gamma_loglik(
    log_params: np.ndarray,
    x: np.ndarray,
    m: np.ndarray,
    weights: np.ndarray,
    x_index: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[float, np.ndarray]:
    """Weighted Gamma-Gamma log-likelihood of mean spend and its gradient in ``log(p, q, v)``.

    ``LL = lnΓ(px+q) - lnΓ(px) - lnΓ(q) + q ln v + (px-1) ln m + px ln x - (px+q) ln(v + x m)``.
    """
    p, q, v = np.exp(log_params)
    xu, inv = _by_value(x, x_index)
    pxu = p * xu
    log_gamma = (gammaln(pxu + q) - gammaln(pxu) - gammaln(q))[inv]
    psi_all = digamma(pxu + q)
    psi_p = (psi_all - digamma(pxu))[inv]
    psi_q = (psi_all - digamma(q))[inv]
    px = p * x
    log_m, log_x = np.log(m), np.log(x)
    log_vxm = np.log(v + x * m)
    ll_i = log_gamma + q * np.log(v) + (px - 1) * log_m + px * log_x - (px + q) * log_vxm
    d_p = x * (psi_p + log_m + log_x - log_vxm)
    d_q = psi_q + np.log(v) - log_vxm
    d_v = q / v - (px + q) / (v + x * m)
    grad = np.array([np.dot(weights, d) for d in (d_p, d_q, d_v)])
    return float(np.dot(weights, ll_i)), grad * np.array([p, q, v])


@dataclass
class MaximumLikelihoodFit:
    """What the optimiser found: estimates on both scales and their uncertainty."""

    log_params: np.ndarray
    log_likelihood: float
    log_cov: np.ndarray
    converged: bool
    at_bound: np.ndarray
    n_starts: int
    message: str
    #: observed information (minus the Hessian of the total log-likelihood), log scale
    information: np.ndarray | None = None
    #: largest absolute gradient of the per-customer objective at the estimate
    gradient: float = 0.0

    @property
    def params(self) -> np.ndarray:
        """Return the fitted parameters on their natural scale."""
        return np.exp(self.log_params)

    @property
    def cov(self) -> np.ndarray:
        """Covariance on the natural scale (delta method: ``D Σ_log D`` with ``D = diag(θ)``)."""
        d = np.diag(self.params)
        return d @ self.log_cov @ d

    @property
    def standard_errors(self) -> np.ndarray:
        """Return the standard errors of the log-parameters (0 where the information is singular)."""
        return np.sqrt(np.clip(np.diag(self.cov), 0, None))


def _hessian(grad: Callable[[np.ndarray], np.ndarray], theta: np.ndarray, step: float = 1e-5):
    """Hessian by central differences of an analytic gradient (symmetrised)."""
    k = theta.size
    h = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = step
        h[:, j] = (grad(theta + e) - grad(theta - e)) / (2 * step)
    return (h + h.T) / 2


def _hessian_forward(
    grad: Callable[[np.ndarray], np.ndarray], theta: np.ndarray, g0: np.ndarray, step: float = 1e-6
):
    """Hessian by forward differences of the gradient (half the cost; for Newton steps only)."""
    k = theta.size
    h = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = step
        h[:, j] = (grad(theta + e) - g0) / step
    return (h + h.T) / 2


def fit_log_params(
    loglik: Callable[[np.ndarray], tuple[float, np.ndarray]],
    starts: Sequence[np.ndarray],
    *,
    n_obs: float,
    penalizer: float = 0.0,
    confirm: int = 2,
) -> MaximumLikelihoodFit:
    """Maximise ``loglik`` over log-parameters from several ``starts``; keep the best.

    Starts are tried in order until ``confirm`` of them have converged to an
    interior optimum (the best is kept), so well-behaved data cost one or two
    runs and hard data get every start.

    The objective is the mean negative log-likelihood (per customer) plus
    ``penalizer * sum(exp(log_params)**2)`` (the lifetimes convention), so the
    tolerances do not depend on the number of customers.
    """

    def objective(theta):
        ll, g = loglik(theta)
        params = np.exp(theta)
        value = -ll / n_obs + penalizer * np.sum(params**2)
        grad = -g / n_obs + penalizer * 2 * params**2
        if not np.isfinite(value):
            return 1e300, np.zeros_like(theta)
        return value, grad

    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(starts[0])
    best = None
    with np.errstate(all="ignore"):
        clean = 0
        for start in starts:
            if clean >= confirm:
                break
            out = minimize(
                objective,
                np.asarray(start, dtype=float),
                jac=True,
                method="SLSQP",
                bounds=bounds,
                options={"maxiter": 2000, "ftol": 1e-14},
            )
            if np.isfinite(out.fun) and (best is None or out.fun < best.fun):
                best = out
            if out.success and np.all(np.abs(out.x) < LOG_BOUND - 1e-3):
                clean += 1
        theta = best.x.copy()
        value = best.fun

        def grad_only(t):
            return objective(t)[1]

        # Newton polish: SLSQP stops on a relative tolerance; a few exact
        # Newton steps make the estimate reproducible to many digits.
        value, g = objective(theta)
        for _ in range(10):
            hess = _hessian_forward(grad_only, theta, g)
            try:
                step = np.linalg.solve(hess, g)
            except np.linalg.LinAlgError:
                break
            candidate = np.clip(theta - step, -LOG_BOUND, LOG_BOUND)
            new_value, new_g = objective(candidate)
            if not new_value <= value + 1e-15:
                break
            theta, value, g = candidate, new_value, new_g
            if np.max(np.abs(step)) < 1e-9:
                break
        at_bound = np.abs(theta) >= LOG_BOUND - 1e-3
        # observed information of the (unpenalised) total log-likelihood
        hess_total = _hessian(lambda t: -loglik(t)[1], theta)
        try:
            log_cov = np.linalg.inv(hess_total)
        except np.linalg.LinAlgError:
            log_cov = np.full_like(hess_total, np.nan)
        if np.any(at_bound) or not np.all(np.isfinite(log_cov)) or np.any(np.diag(log_cov) < 0):
            log_cov = np.full_like(hess_total, np.nan)
        gradient = float(np.max(np.abs(grad_only(theta))))
        converged = bool(gradient < 1e-5 and not np.any(at_bound))
    # No warning here: the model turns convergence, boundary and identification
    # into its status and warnings (journeylab.core.model_checks) and emits them once.
    return MaximumLikelihoodFit(
        log_params=theta,
        log_likelihood=float(loglik(theta)[0]),
        log_cov=log_cov,
        converged=converged,
        at_bound=at_bound,
        n_starts=len(starts),
        message=str(best.message),
        information=hess_total,
        gradient=gradient,
    )
