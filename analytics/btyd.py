"""Buy-till-you-die models fitted by maximum likelihood: BG/NBD (purchase frequency), Gamma-Gamma
(spend per purchase) and the shifted-beta-geometric (subscription retention).

Why our own implementation. The reference library, `lifetimes` 0.11.3, has not been maintained
since 2020 (it still works with pandas 3 but fits one customer per row and brings autograd and
dill); `pymc-marketing` is maintained but installs about 800 MB and is Bayesian: it reproduces
the maximum-likelihood values only with flat priors, and takes seconds on CDNOW. The models'
log-likelihoods are a few lines of numpy/scipy (Fader, Hardie and Lee 2005, "Counting your
customers the easy way"; Fader and Hardie 2013, "The Gamma-Gamma model of monetary value";
Fader and Hardie 2007, "How to project customer retention"), so we write them vectorised, with
analytic gradients, and fit the log-parameters with scipy's L-BFGS-B:

- customers are collapsed into weighted unique rows first: at a million customers there are far
  fewer distinct (x, t_x, T) triples than customers, and every term that depends on one input
  only (x, t_x or T) is computed once per distinct value and gathered by index;
- parameters are optimised on the log scale (they are all positive) within wide bounds, so a
  degenerate data set gives a finite fit flagged by `converged` instead of an overflow.

`tests/analytics/test_btyd.py` checks the likelihoods and fits against the published values
(CDNOW: r=0.243, alpha=4.414, a=0.793, b=2.426; Gamma-Gamma p=6.25, q=3.74, v=15.45; sBG
"regular" example gamma=0.704, delta=1.182), and `bench/nightly.py` times the BG/NBD fit
against lifetimes on the same summary.

Conventions: x = repeat purchase days (frequency), t_x = time of the last purchase and T = age
(both measured from the first purchase), in any one time unit (the pipeline uses weeks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1
from threadpoolctl import threadpool_limits

LOG_BOUNDS = (-12.0, 12.0)
# BG/NBD (4 parameters) and Gamma-Gamma (3) are not fitted on fewer customers than this.
MIN_CUSTOMERS = 20
# Weighted sums are written as np.sum(w * v), not np.dot or @: those go through BLAS, whose
# threads contend with every other process on a small machine (10x slower under load).


@dataclass
class Fit:
    """A maximum-likelihood fit: parameters by name, the total log-likelihood of the data,
    how many customers (weights) it was fitted on and whether the optimiser converged."""

    params: dict[str, float]
    log_likelihood: float
    n: int
    converged: bool
    message: str = ""
    iterations: int = 0
    extra: dict = field(default_factory=dict)


def collapse(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Unique rows of the given equal-length columns and how many times each occurs."""
    stacked = np.column_stack([np.asarray(c, dtype=float) for c in columns])
    unique, counts = np.unique(stacked, axis=0, return_counts=True)
    return [unique[:, i] for i in range(unique.shape[1])], counts.astype(float)


def _indexed(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    unique, inverse = np.unique(values, return_inverse=True)
    return unique, inverse.reshape(-1)


def _fit(negative_ll, start: np.ndarray, names: tuple[str, ...], n: float, total) -> Fit:
    # One BLAS thread: the optimiser's tiny vector operations only lose time to thread
    # hand-offs, badly so when other processes share the cores.
    with threadpool_limits(limits=1, user_api="blas"):
        result = minimize(
            negative_ll,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=[LOG_BOUNDS] * len(start),
            options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-9},
        )
    params = np.exp(result.x)
    at_bound = np.any(np.isclose(result.x, LOG_BOUNDS[0]) | np.isclose(result.x, LOG_BOUNDS[1]))
    # A parameter at its bound means the data pin down only a ratio (e.g. a / (a + b) when
    # every customer drops out at the same rate); predictions from the fit are still sound.
    note = "a parameter is at its bound (the data fix only a ratio); " if at_bound else ""
    fit = Fit(
        params={name: float(value) for name, value in zip(names, params, strict=True)},
        log_likelihood=float(total(result.x)),
        n=int(round(n)),
        converged=bool(result.success),
        message=note + str(result.message)[:200],
        iterations=int(result.nit),
    )
    if n < MIN_CUSTOMERS and len(names) > 2:
        fit.converged = False
        fit.message = f"too few customers to fit (fewer than {MIN_CUSTOMERS}); " + fit.message
    return fit


# -- BG/NBD ---------------------------------------------------------------------------------


class _BgNbdData:
    """(x, t_x, T, weight) rows with the distinct values of each input and their indexes."""

    def __init__(self, x, t_x, T, weights=None):
        x = np.asarray(x, dtype=float)
        t_x = np.asarray(t_x, dtype=float)
        T = np.asarray(T, dtype=float)
        self.w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
        self.n = float(self.w.sum())
        self.ux, self.ix = _indexed(x)
        self.ut, self.it = _indexed(t_x)
        self.uT, self.iT = _indexed(T)
        self.repeat = x > 0
        self.x = x


def _bgnbd_terms(theta: np.ndarray, d: _BgNbdData, gradient: bool):
    r, alpha, a, b = np.exp(theta)
    ux = d.ux
    c = r + ux  # per distinct x
    a1 = gammaln(c) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + ux) - gammaln(b) - gammaln(a + b + ux)
    log_alpha_T = np.log(alpha + d.uT)
    log_alpha_t = np.log(alpha + d.ut)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_b_x1 = np.where(ux > 0, np.log(b + ux - 1), 0.0)
    cx = c[d.ix]
    a3 = -cx * log_alpha_T[d.iT]
    a4 = np.where(d.repeat, np.log(a) - log_b_x1[d.ix] - cx * log_alpha_t[d.it], -np.inf)
    top = np.maximum(a3, a4)
    e3 = np.exp(a3 - top)
    e4 = np.exp(a4 - top)
    ll = a1[d.ix] + a2[d.ix] + top + np.log(e3 + e4)
    if not gradient:
        return ll, None
    w4 = e4 / (e3 + e4)
    w3 = 1.0 - w4
    d_r = (
        (digamma(c) - digamma(r) + np.log(alpha))[d.ix]
        - w3 * log_alpha_T[d.iT]
        - w4 * log_alpha_t[d.it]
    )
    d_alpha = r / alpha - w3 * cx / (alpha + d.uT)[d.iT] - w4 * cx / (alpha + d.ut)[d.it]
    dg_ab = digamma(a + b)
    dg_abx = digamma(a + b + ux)
    d_a = (dg_ab - dg_abx)[d.ix] + w4 / a
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_b_x1 = np.where(ux > 0, 1.0 / (b + ux - 1), 0.0)
    d_b = (dg_ab + digamma(b + ux) - digamma(b) - dg_abx)[d.ix] - w4 * inv_b_x1[d.ix]
    grads = np.vstack([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
    return ll, grads


def bgnbd_log_likelihood(params: dict[str, float], x, t_x, T, weights=None) -> float:
    """Total log-likelihood of BG/NBD with parameters r, alpha, a, b."""
    d = _BgNbdData(x, t_x, T, weights)
    theta = np.log([params["r"], params["alpha"], params["a"], params["b"]])
    ll, _ = _bgnbd_terms(theta, d, gradient=False)
    return float(np.sum(d.w * ll))


def fit_bgnbd(x, t_x, T, weights=None) -> Fit:
    """Maximum-likelihood BG/NBD on (optionally weighted) customers."""
    d = _BgNbdData(x, t_x, T, weights)
    if d.n == 0:
        return Fit(params={}, log_likelihood=0.0, n=0, converged=False, message="no customers")

    def negative(theta):
        ll, grads = _bgnbd_terms(theta, d, gradient=True)
        return -np.sum(d.w * ll) / d.n, -(grads * d.w).sum(axis=1) / d.n

    def total(theta):
        return float(np.sum(d.w * _bgnbd_terms(theta, d, gradient=False)[0]))

    mean_T = float(np.sum(d.w * np.asarray(T, dtype=float)) / d.n) or 1.0
    start = np.log([1.0, max(mean_T, 1e-3), 1.0, 1.0])
    fit = _fit(negative, start, ("r", "alpha", "a", "b"), d.n, total)
    if not np.any(d.repeat):
        fit.converged = False
        fit.message = "no repeat purchases: " + fit.message
    return fit


def bgnbd_p_alive(params: dict[str, float], x, t_x, T) -> np.ndarray:
    """P(alive | x, t_x, T); 1 for customers without a repeat purchase (BG/NBD's assumption:
    a customer can only drop out right after a repeat purchase)."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = (
            np.log(a)
            - np.log(b + np.maximum(x, 1) - 1)
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        )
    return np.where(x > 0, 1.0 / (1.0 + np.exp(log_ratio)), 1.0)


def bgnbd_expected_purchases(params: dict[str, float], t, x, t_x, T) -> np.ndarray:
    """E[X(T, T + t) | x, t_x, T]: expected purchases in the next `t` time units (FHL 2005,
    equation 10)."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    t = np.asarray(t, dtype=float)
    z = t / (alpha + T + t)
    hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
    first = (a + b + x - 1) / (a - 1) if a != 1 else np.full_like(x, np.inf)
    numerator = first * (1.0 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t))) * hyp)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = (
            np.log(a)
            - np.log(b + np.maximum(x, 1) - 1)
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        )
    denominator = 1.0 + np.where(x > 0, np.exp(log_ratio), 0.0)
    return numerator / denominator


# -- Gamma-Gamma ----------------------------------------------------------------------------


def _gg_terms(theta: np.ndarray, x: np.ndarray, m: np.ndarray, gradient: bool):
    p, q, v = np.exp(theta)
    px = p * x
    log_xm_v = np.log(x * m + v)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_xm_v
    )
    if not gradient:
        return ll, None
    dg = digamma(px + q)
    d_p = x * (dg - digamma(px) + np.log(m) + np.log(x) - log_xm_v)
    d_q = dg - digamma(q) + np.log(v) - log_xm_v
    d_v = q / v - (px + q) / (x * m + v)
    return ll, np.vstack([d_p * p, d_q * q, d_v * v])


def _gg_inputs(x, m, weights):
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    keep = (x > 0) & (m > 0)
    return x[keep], m[keep], w[keep]


def gamma_gamma_log_likelihood(params: dict[str, float], x, m, weights=None) -> float:
    """Total log-likelihood of Gamma-Gamma (p, q, v) for repeat customers: x repeat purchases
    with mean value m (customers with x = 0 or m = 0 are left out, as in the fit)."""
    x, m, w = _gg_inputs(x, m, weights)
    ll, _ = _gg_terms(np.log([params["p"], params["q"], params["v"]]), x, m, gradient=False)
    return float(np.sum(w * ll))


def fit_gamma_gamma(x, m, weights=None) -> Fit:
    """Maximum-likelihood Gamma-Gamma on repeat customers (x > 0) with a positive mean value."""
    x, m, w = _gg_inputs(x, m, weights)
    n = float(w.sum())
    if n == 0:
        return Fit(params={}, log_likelihood=0.0, n=0, converged=False, message="no repeaters")

    def negative(theta):
        ll, grads = _gg_terms(theta, x, m, gradient=True)
        return -np.sum(w * ll) / n, -(grads * w).sum(axis=1) / n

    def total(theta):
        return float(np.sum(w * _gg_terms(theta, x, m, gradient=False)[0]))

    mean = float(np.sum(w * m) / n)
    fit = _fit(negative, np.log([1.0, 2.0, max(mean, 1e-3)]), ("p", "q", "v"), n, total)
    if fit.converged and fit.params["q"] <= 1:
        fit.converged = False
        fit.message = "q <= 1: the expected spend is undefined; " + fit.message
    return fit


def gamma_gamma_expected_value(params: dict[str, float], x, m) -> np.ndarray:
    """E[M | x, m]: a customer's expected mean spend per purchase day, shrunk from their own
    mean m towards the population mean p v / (q - 1) by how many repeat purchases back it."""
    p, q, v = params["p"], params["q"], params["v"]
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    m = np.where(x > 0, m, 0.0)
    return (p * (v + x * m)) / (p * x + q - 1)


# -- shifted-beta-geometric -----------------------------------------------------------------


def sbg_survival(params: dict[str, float], periods) -> np.ndarray:
    """S(t) = B(gamma, delta + t) / B(gamma, delta): the share still subscribed after t
    renewals."""
    g, d = params["gamma"], params["delta"]
    t = np.asarray(periods, dtype=float)
    return np.exp(betaln(g, d + t) - betaln(g, d))


def _sbg_terms(theta, lost_t, lost_n, alive_t, alive_n, gradient):
    g, d = np.exp(theta)
    base = betaln(g, d)
    ll_lost = betaln(g + 1, d + lost_t - 1) - base  # P(T = t)
    ll_alive = betaln(g, d + alive_t) - base  # S(t)
    total = np.sum(lost_n * ll_lost) + np.sum(alive_n * ll_alive)
    if not gradient:
        return total, None
    dg_gd = digamma(g + d)
    d_base_g = digamma(g) - dg_gd
    d_base_d = digamma(d) - dg_gd
    # d/dg betaln(g+1, d+t-1) = psi(g+1) - psi(g+d+t); d/dd = psi(d+t-1) - psi(g+d+t)
    dl_g = digamma(g + 1) - digamma(g + d + lost_t) - d_base_g
    dl_d = digamma(d + lost_t - 1) - digamma(g + d + lost_t) - d_base_d
    da_g = digamma(g) - digamma(g + d + alive_t) - d_base_g
    da_d = digamma(d + alive_t) - digamma(g + d + alive_t) - d_base_d
    grad_g = np.sum(lost_n * dl_g) + np.sum(alive_n * da_g)
    grad_d = np.sum(lost_n * dl_d) + np.sum(alive_n * da_d)
    return total, np.array([grad_g * g, grad_d * d])


def sbg_cohort_data(survivors_by_cohort: list[list[int]]):
    """From each cohort's survivors at periods 0..k (period 0 = the cohort size): how many were
    lost at each period t >= 1 and how many were still there at the cohort's last period."""
    lost_t, lost_n, alive_t, alive_n = [], [], [], []
    for survivors in survivors_by_cohort:
        for t in range(1, len(survivors)):
            lost = survivors[t - 1] - survivors[t]
            if lost:
                lost_t.append(t)
                lost_n.append(lost)
        if len(survivors) > 1 and survivors[-1]:
            alive_t.append(len(survivors) - 1)
            alive_n.append(survivors[-1])
    as_arrays = (np.asarray(v, dtype=float) for v in (lost_t, lost_n, alive_t, alive_n))
    return tuple(as_arrays)


def sbg_log_likelihood(params: dict[str, float], survivors_by_cohort: list[list[int]]) -> float:
    data = sbg_cohort_data(survivors_by_cohort)
    theta = np.log([params["gamma"], params["delta"]])
    return float(_sbg_terms(theta, *data, gradient=False)[0])


def fit_sbg(survivors_by_cohort: list[list[int]]) -> Fit:
    """Maximum-likelihood sBG on cohorts' survivor counts (each list starts with the cohort
    size at period 0 and runs to that cohort's last observed period)."""
    data = sbg_cohort_data(survivors_by_cohort)
    n = float(sum(s[0] for s in survivors_by_cohort if len(s) > 1))
    if n == 0:
        return Fit(params={}, log_likelihood=0.0, n=0, converged=False, message="no cohorts")

    def negative(theta):
        total, grad = _sbg_terms(theta, *data, gradient=True)
        return -total / n, -grad / n

    def total(theta):
        return float(_sbg_terms(theta, *data, gradient=False)[0])

    fit = _fit(negative, np.log([1.0, 1.0]), ("gamma", "delta"), n, total)
    if not len(data[0]):
        fit.converged = False
        fit.message = "nobody left yet: " + fit.message
    return fit
