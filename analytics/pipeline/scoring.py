"""Scoring members from their buy-till-you-die summary: vectorised numpy, no database.

Inputs per purchasing member (local days in the program's timezone): x = repeat purchase days,
recency = days from the first to the last purchase day, T = days from the first purchase day
to the as-of date, m = mean spend of the repeat purchase days, total = all spend,
since_last = days from the last purchase day to the as-of date.

CLV over 12 months, discounted monthly at the annual rate d (d_m = (1 + d)^(1/12) - 1):

    CLV = E[M | x, m] * sum_{k=1..12} (E[X(t_k)] - E[X(t_{k-1})]) / (1 + d_m)^k

with t_k = k months of 365.25 / 12 days (in weeks, the BG/NBD's unit), E[X(t)] the BG/NBD
conditional expectation of purchases in the next t given (x, t_x, T), and E[M | x, m] the
Gamma-Gamma conditional expected spend per purchase day. No margin is applied: it is revenue
CLV in the program's currency.

RFM scores (1-5, only purchasing members): R on days since the last purchase (fewer is better),
F on purchase days, M on total spend. Each is a quintile score with ties kept together: a member
scores 1 + the number of the four quintile boundaries (the values at positions ceil(k n / 5),
k = 1..4, of the sorted values, worst first) that their value is better than. The cut-offs are
computed once per run over all purchasing members, so chunks score consistently.

RFM segment from R and FM = (F + M) / 2 rounded half up, first match wins:

    new                 R >= 4 and exactly one purchase day
    champions           R >= 4 and FM >= 4
    loyal               R >= 4 and FM = 3, or R = 3 and FM >= 4
    potential loyalist  R >= 4 and FM <= 2, or R = 3 and FM in 2..3
    can't lose          R <= 2 and FM = 5
    at risk             R <= 2 and FM in 3..4
    hibernating         R = 3 and FM = 1, or R = 2 and FM <= 2
    lost                R = 1 and FM <= 2

Churn risk: lapsed when the last purchase is more than `lapsed_after_days` ago; otherwise high
when P(alive) is below `churn_high_below`, medium below `churn_medium_below`, else low.

CLV band by rank among purchasing members: top 10 %, high (next 20 %), medium (next 30 %),
low (last 40 %); members with the same CLV share the higher band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import btyd
from ..models import ChurnRisk, ClvBand, RfmSegment

DAYS_PER_WEEK = 7.0
DAYS_PER_MONTH = 365.25 / 12
CLV_MONTHS = 12
CLV_BAND_SHARES = ((ClvBand.TOP, 0.10), (ClvBand.HIGH, 0.30), (ClvBand.MEDIUM, 0.60))


@dataclass
class Summary:
    x: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    m: np.ndarray
    total: np.ndarray
    since_last: np.ndarray
    purchase_days: np.ndarray


def quintile_cutoffs(values: np.ndarray) -> list[float]:
    """The four boundaries of `values` (higher is better) used by `quintile_scores`."""
    n = len(values)
    if n == 0:
        return []
    ordered = np.sort(values)
    return [float(ordered[math.ceil(k * n / 5) - 1]) for k in range(1, 5)]


def quintile_scores(values: np.ndarray, cutoffs: list[float]) -> np.ndarray:
    score = np.ones(len(values), dtype=np.int16)
    for boundary in cutoffs:
        score += values > boundary
    return score


def rfm_segments(r: np.ndarray, f: np.ndarray, mon: np.ndarray, purchase_days: np.ndarray):
    fm = np.floor((f + mon) / 2 + 0.5).astype(int)
    choices = [
        ((r >= 4) & (purchase_days == 1), RfmSegment.NEW),
        ((r >= 4) & (fm >= 4), RfmSegment.CHAMPIONS),
        (((r >= 4) & (fm == 3)) | ((r == 3) & (fm >= 4)), RfmSegment.LOYAL),
        (((r >= 4) & (fm <= 2)) | ((r == 3) & (fm >= 2)), RfmSegment.POTENTIAL_LOYALIST),
        ((r <= 2) & (fm == 5), RfmSegment.CANT_LOSE),
        ((r <= 2) & (fm >= 3), RfmSegment.AT_RISK),
        (((r == 3) & (fm == 1)) | ((r == 2) & (fm <= 2)), RfmSegment.HIBERNATING),
    ]
    return np.select([c for c, _ in choices], [str(s) for _, s in choices], str(RfmSegment.LOST))


def _collapsed(fn, x, recency_w, T_w):
    """Evaluate fn(x, t_x, T) once per distinct triple and spread the result back."""
    if len(x) == 0:
        return np.zeros(0)
    key = np.column_stack([x, recency_w, T_w])
    unique, inverse = np.unique(key, axis=0, return_inverse=True)
    return fn(unique[:, 0], unique[:, 1], unique[:, 2])[inverse.reshape(-1)]


def expected_and_clv(summary: Summary, bgnbd: dict | None, gg: dict | None, discount: float):
    """P(alive), expected purchases in 90 days and 12 months, expected spend per purchase day
    and 12-month CLV; None (all NaN) where a model is missing."""
    n = len(summary.x)
    nan = np.full(n, np.nan)
    if not bgnbd:
        return nan, nan, nan, nan, nan
    t_x = summary.recency / DAYS_PER_WEEK
    T = summary.T / DAYS_PER_WEEK
    month_rate = (1.0 + discount) ** (1.0 / 12) - 1.0
    weeks = [k * DAYS_PER_MONTH / DAYS_PER_WEEK for k in range(CLV_MONTHS + 1)]

    def per_triple(x, tx, tt):
        columns = [btyd.bgnbd_p_alive(bgnbd, x, tx, tt)]
        columns.append(btyd.bgnbd_expected_purchases(bgnbd, 90 / DAYS_PER_WEEK, x, tx, tt))
        cumulative = [np.zeros_like(x)] + [
            btyd.bgnbd_expected_purchases(bgnbd, w, x, tx, tt) for w in weeks[1:]
        ]
        columns.append(cumulative[-1])
        discounted = np.zeros_like(x)
        for k in range(1, CLV_MONTHS + 1):
            discounted += (cumulative[k] - cumulative[k - 1]) / (1.0 + month_rate) ** k
        columns.append(discounted)
        return np.column_stack(columns)

    values = _collapsed(per_triple, summary.x, t_x, T) if n else np.zeros((0, 4))
    p_alive, e90, e12, discounted = (values[:, i] for i in range(4))
    if gg:
        spend = btyd.gamma_gamma_expected_value(gg, summary.x, summary.m)
        clv = spend * discounted
    else:
        spend, clv = nan, nan
    return p_alive, e90, e12, spend, clv


def clv_cutoffs(clv: np.ndarray) -> list[float]:
    """The CLV at the bottom of the top 10 %, top 30 % and top 60 % by rank."""
    values = clv[~np.isnan(clv)]
    n = len(values)
    if n == 0:
        return []
    ordered = np.sort(values)[::-1]
    return [float(ordered[max(math.ceil(share * n), 1) - 1]) for _, share in CLV_BAND_SHARES]


def clv_bands(clv: np.ndarray, cutoffs: list[float]) -> np.ndarray:
    bands = np.full(len(clv), str(ClvBand.LOW), dtype=object)
    if not cutoffs:
        bands[:] = str(ClvBand.NONE)
        return bands
    assigned = np.zeros(len(clv), dtype=bool)
    for (band, _), boundary in zip(CLV_BAND_SHARES, cutoffs, strict=True):
        hit = ~assigned & (clv >= boundary)
        bands[hit] = str(band)
        assigned |= hit
    bands[np.isnan(clv)] = str(ClvBand.NONE)
    return bands


def churn_bands(p_alive, since_last, *, high_below, medium_below, lapsed_after_days):
    risk = np.full(len(p_alive), str(ChurnRisk.LOW), dtype=object)
    p = np.nan_to_num(p_alive, nan=1.0)
    risk[p < medium_below] = str(ChurnRisk.MEDIUM)
    risk[p < high_below] = str(ChurnRisk.HIGH)
    risk[since_last > lapsed_after_days] = str(ChurnRisk.LAPSED)
    return risk


def rfm_inputs(summary: Summary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R, F and M values oriented so that higher is better."""
    return -summary.since_last.astype(float), summary.purchase_days.astype(float), summary.total


def score(summary: Summary, *, bgnbd, gg, cutoffs: dict, settings_row) -> dict[str, np.ndarray]:
    """Every derived figure of the purchasing members in `summary`."""
    p_alive, e90, e12, spend, clv = expected_and_clv(
        summary, bgnbd, gg, float(settings_row.clv_discount_rate)
    )
    r_val, f_val, m_val = rfm_inputs(summary)
    r = quintile_scores(r_val, cutoffs["recency"])
    f = quintile_scores(f_val, cutoffs["frequency"])
    mon = quintile_scores(m_val, cutoffs["monetary"])
    return {
        "p_alive": p_alive,
        "expected_purchases_90d": e90,
        "expected_purchases_12m": e12,
        "expected_order_value": spend,
        "clv_12m": clv,
        "clv_band": clv_bands(clv, cutoffs["clv"]),
        "churn_risk": churn_bands(
            p_alive,
            summary.since_last,
            high_below=settings_row.churn_high_below,
            medium_below=settings_row.churn_medium_below,
            lapsed_after_days=settings_row.lapsed_after_days,
        ),
        "recency_score": r,
        "frequency_score": f,
        "monetary_score": mon,
        "rfm_segment": rfm_segments(r, f, mon, summary.purchase_days),
    }


def run_cutoffs(summary: Summary, *, bgnbd, gg, settings_row) -> dict:
    """Quintile boundaries of R, F, M and the CLV band boundaries over all purchasers."""
    r_val, f_val, m_val = rfm_inputs(summary)
    *_, clv = expected_and_clv(summary, bgnbd, gg, float(settings_row.clv_discount_rate))
    return {
        "recency": quintile_cutoffs(r_val),
        "frequency": quintile_cutoffs(f_val),
        "monetary": quintile_cutoffs(m_val),
        "clv": clv_cutoffs(clv),
    }
