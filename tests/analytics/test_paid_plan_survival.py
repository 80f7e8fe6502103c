"""The paid-plan survival curve: renewal rates chained over cohorts of different ages, and the
sBG projection past the oldest cohort."""

from datetime import date

import pytest

from analytics.models import CohortBasis, CohortRetention, FitModel, ModelFit
from analytics.reports.program import PROJECT_AHEAD, survival_rows


def cells(cohort: date, survivors: list[int]) -> list[CohortRetention]:
    return [
        CohortRetention(
            as_of=date(2026, 3, 31),
            basis=CohortBasis.SUBSCRIPTION,
            cohort=cohort,
            period=period,
            size=survivors[0],
            retained=retained,
        )
        for period, retained in enumerate(survivors)
    ]


def test_actual_survival_chains_renewal_rates_over_the_cohorts_that_reached_each_month():
    old = cells(date(2026, 1, 1), [100, 80, 60])
    young = cells(date(2026, 2, 1), [50, 45])

    rows = survival_rows(old + young, fit=None)

    assert [row["period"] for row in rows] == [0, 1, 2]
    assert rows[0]["actual"] == 1.0
    assert rows[1]["actual"] == pytest.approx(125 / 150)
    # month 2: only the old cohort renewed 60 of its 80; pooling raw shares would say 60/100
    assert rows[2]["actual"] == pytest.approx(125 / 150 * 60 / 80)
    assert [row["subscribers"] for row in rows] == [150, 150, 100]
    assert all(row["projected"] is None for row in rows)


def test_projection_follows_the_sbg_fit_beyond_the_oldest_cohort():
    fit = ModelFit(model=FitModel.SBG, params={"gamma": 0.704, "delta": 1.182}, converged=True)

    rows = survival_rows(cells(date(2026, 1, 1), [1000, 631, 468]), fit=fit)

    assert len(rows) == 3 + PROJECT_AHEAD
    assert rows[-1]["actual"] is None and rows[-1]["retained"] is None
    # Fader and Hardie (2007): S(1) = delta / (gamma + delta),
    # S(t) = S(t-1) (delta + t - 1) / (gamma + delta + t - 1)
    s1 = 1.182 / (0.704 + 1.182)
    s2 = s1 * (1.182 + 1) / (0.704 + 1.182 + 1)
    assert rows[1]["projected"] == pytest.approx(s1)
    assert rows[2]["projected"] == pytest.approx(s2)
    projected = [row["projected"] for row in rows]
    assert projected == sorted(projected, reverse=True)
