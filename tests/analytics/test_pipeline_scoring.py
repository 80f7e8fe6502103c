"""The documented scoring rules of analytics.pipeline.scoring, on arrays."""

import numpy as np
import pytest

from analytics.models import ChurnRisk, ClvBand, RfmSegment
from analytics.pipeline import scoring


def test_quintile_scores_split_distinct_values_into_fifths():
    values = np.arange(1, 11, dtype=float)  # 10 values -> two per score
    cutoffs = scoring.quintile_cutoffs(values)
    assert cutoffs == [2.0, 4.0, 6.0, 8.0]
    assert scoring.quintile_scores(values, cutoffs).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_quintile_scores_keep_ties_together():
    values = np.array([1, 1, 1, 1, 1, 1, 2, 3, 4, 9], dtype=float)  # many one-time buyers
    scores = scoring.quintile_scores(values, scoring.quintile_cutoffs(values))
    assert scores[:6].tolist() == [1] * 6
    assert scores.tolist() == sorted(scores.tolist())
    assert scores[-1] == 5


@pytest.mark.parametrize(
    "r, f, m, days, segment",
    [
        (5, 5, 5, 9, RfmSegment.CHAMPIONS),
        (4, 4, 3, 6, RfmSegment.CHAMPIONS),  # FM 3.5 rounds up to 4
        (5, 1, 5, 1, RfmSegment.NEW),  # one purchase day, recent
        (4, 3, 3, 3, RfmSegment.LOYAL),
        (3, 5, 4, 7, RfmSegment.LOYAL),
        (5, 2, 1, 2, RfmSegment.POTENTIAL_LOYALIST),
        (3, 2, 3, 2, RfmSegment.POTENTIAL_LOYALIST),
        (1, 5, 5, 12, RfmSegment.CANT_LOSE),
        (2, 4, 3, 5, RfmSegment.AT_RISK),
        (3, 1, 1, 1, RfmSegment.HIBERNATING),
        (2, 2, 1, 2, RfmSegment.HIBERNATING),
        (1, 1, 2, 1, RfmSegment.LOST),
    ],
)
def test_rfm_segment_map(r, f, m, days, segment):
    result = scoring.rfm_segments(np.array([r]), np.array([f]), np.array([m]), np.array([days]))
    assert result[0] == segment


def test_every_score_combination_gets_a_named_segment():
    grid = np.array([(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)])
    segments = scoring.rfm_segments(grid[:, 0], grid[:, 1], grid[:, 2], np.full(len(grid), 2))
    assert set(segments) <= set(RfmSegment.values) - {RfmSegment.NO_PURCHASE}


def test_clv_bands_by_rank_with_ties_in_the_higher_band():
    clv = np.arange(100, 0, -1, dtype=float)  # 100 distinct values
    bands = scoring.clv_bands(clv, scoring.clv_cutoffs(clv))
    counts = {band: int((bands == band).sum()) for band in ClvBand.values}
    assert counts == {"top": 10, "high": 20, "medium": 30, "low": 40, "none": 0}
    tied = np.array([5.0] * 5 + [1.0] * 5)
    tied_bands = scoring.clv_bands(tied, scoring.clv_cutoffs(tied))
    assert tied_bands[:5].tolist() == ["top"] * 5


def test_churn_bands():
    p_alive = np.array([0.9, 0.5, 0.1, 0.95])
    since_last = np.array([10, 10, 10, 400])
    bands = scoring.churn_bands(
        p_alive, since_last, high_below=0.3, medium_below=0.7, lapsed_after_days=180
    )
    assert bands.tolist() == [ChurnRisk.LOW, ChurnRisk.MEDIUM, ChurnRisk.HIGH, ChurnRisk.LAPSED]


def test_clv_is_discounted_expected_spend_over_twelve_months():
    params = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    gg = {"p": 6.25, "q": 3.74, "v": 15.45}
    summary = scoring.Summary(
        x=np.array([2.0]),
        recency=np.array([213.0]),
        T=np.array([272.0]),
        m=np.array([30.0]),
        total=np.array([90.0]),
        since_last=np.array([59.0]),
        purchase_days=np.array([3]),
    )
    _, e90, e12, spend, undiscounted = scoring.expected_and_clv(summary, params, gg, 0.0)
    assert undiscounted[0] == pytest.approx(spend[0] * e12[0], rel=1e-9)
    assert 0 < e90[0] < e12[0]
    *_, discounted = scoring.expected_and_clv(summary, params, gg, 0.10)
    assert 0.93 * undiscounted[0] < discounted[0] < undiscounted[0]
