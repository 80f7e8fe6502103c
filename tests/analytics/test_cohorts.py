"""Cohort tables (enrollment, first purchase, paid-plan start) on hand-checked histories."""

from datetime import date

import pytest

from analytics.models import CohortBasis, CohortRetention, FitModel, ModelFit
from analytics.pipeline import run_pipeline
from rewards.services import cancel_subscription, subscribe
from tests.rewards.factories import MembershipPlanFactory

from .pipeline_data import at, event, member, purchase, refund

AS_OF = date(2026, 6, 30)


def table(basis):
    cells = CohortRetention.objects.filter(as_of=AS_OF, basis=basis)
    return {(c.cohort, c.period): (c.size, c.retained) for c in cells}


@pytest.mark.django_db
def test_enrollment_and_first_purchase_cohorts():
    a = member(date(2026, 1, 10))
    b = member(date(2026, 6, 15))
    c = member(date(2026, 3, 1))
    purchase(a, date(2026, 5, 10), "30.00")
    purchase(a, date(2026, 6, 20), "50.00")
    purchase(b, date(2026, 6, 16), "40.00")
    purchase(b, date(2026, 6, 18), "100.00", order_id="B-2")
    refund(b, date(2026, 6, 19), "B-2", "100.00")
    event(c, "page_view", date(2026, 5, 15))
    purchase(c, date(2026, 7, 1), "10.00")  # after the as-of day

    run_pipeline(as_of=AS_OF)

    jan, mar, may, jun = (date(2026, m, 1) for m in (1, 3, 5, 6))
    assert table(CohortBasis.ENROLLMENT) == {
        # A: enrolled in January, active in May and June; cells up to the as-of month.
        **{(jan, k): (1, 1 if k in (4, 5) else 0) for k in range(6)},
        # C: enrolled in March, active in May only.
        **{(mar, k): (1, 1 if k == 2 else 0) for k in range(4)},
        # B: enrolled and active in June.
        (jun, 0): (1, 1),
    }
    assert table(CohortBasis.FIRST_PURCHASE) == {
        (may, 0): (1, 1),
        (may, 1): (1, 1),  # A bought again in June
        (jun, 0): (1, 1),  # B; C's July purchase is after the as-of day
    }


@pytest.mark.django_db
def test_subscription_cohorts_hold_fully_observed_cells_and_the_sbg_projection():
    plan = MembershipPlanFactory(billing_period_months=1, trial_days=0)
    january = [
        subscribe(member=member(date(2025, 12, 1)), plan=plan, at=at(date(2026, 1, 5)))
        for _ in range(4)
    ]
    cancel_subscription(subscription=january[0], at_period_end=False, at=at(date(2026, 2, 10)))
    cancel_subscription(subscription=january[1], at_period_end=False, at=at(date(2026, 3, 20)))
    april = [
        subscribe(member=member(date(2025, 12, 1)), plan=plan, at=at(date(2026, 4, 20)))
        for _ in range(2)
    ]
    cancel_subscription(subscription=april[0], at_period_end=False, at=at(date(2026, 5, 25)))

    run_pipeline(as_of=AS_OF)

    cells = CohortRetention.objects.filter(as_of=AS_OF, basis=CohortBasis.SUBSCRIPTION)
    survivors = {}
    for cell in cells.order_by("cohort", "period"):
        survivors.setdefault(cell.cohort, []).append(cell.retained)
        assert cell.projected is not None
    # January: 5 whole months observed by 30 June; the first leaves after one renewal (10 Feb is
    # past 5 Feb), the second after two. April: 2 whole months observed.
    assert survivors == {date(2026, 1, 1): [4, 4, 3, 2, 2, 2], date(2026, 4, 1): [2, 2, 1]}
    assert cells.get(cohort=date(2026, 1, 1), period=0).projected == pytest.approx(1.0)
    projected = [c.projected for c in cells.filter(cohort=date(2026, 1, 1)).order_by("period")]
    assert projected == sorted(projected, reverse=True)

    fit = ModelFit.objects.get(as_of=AS_OF, model=FitModel.SBG)
    assert fit.n_customers == 6
    assert fit.time_unit == "month"
    assert set(fit.params) == {"gamma", "delta"}
