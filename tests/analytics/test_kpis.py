"""Each program KPI on a small hand-checked history (as of the end of a local day)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine

from analytics.models import Kpi, KpiSnapshot
from analytics.pipeline import backfill_kpis
from analytics.pipeline.kpis import compute_kpis
from members.services import close_member
from rewards.services import award_points, cancel_subscription, spend_points, subscribe
from tests.rewards.factories import MembershipPlanFactory

from .pipeline_data import at, event, hand_checked_history, member, purchase

AS_OF = date(2026, 6, 30)


@pytest.fixture
def history(db):
    """A, B and C of hand_checked_history (C is active in the previous period, not in this
    one), and D who enrolls after the as-of day. A also buys after it (must not count)."""
    people = hand_checked_history()
    d = member(date(2026, 7, 5))
    purchase(people["a"], date(2026, 7, 2), "999.00")
    event(d, "page_view", date(2026, 7, 6))
    return {**people, "d": d}


def test_member_activity_and_purchase_kpis_on_a_hand_checked_history(history):
    values = compute_kpis(as_of=AS_OF)

    assert values[Kpi.MEMBERS] == 3  # D enrolls later
    assert values[Kpi.ENROLLMENTS] == 1  # B, within the last 30 days
    assert values[Kpi.ACTIVE_30D] == 2  # A and B
    assert values[Kpi.ACTIVE_90D] == 3  # and C
    # Previous 30-day period (2 May - 31 May): A and C; of them only A is active now.
    assert values[Kpi.RETENTION_RATE] == Decimal("0.5")
    assert values[Kpi.CHURN_RATE] == Decimal("0.5")
    # Events in the last 30 days: A 3, B 3 (two purchases and the refund) over 2 active members.
    assert values[Kpi.ENGAGEMENT] == Decimal("3")
    # Purchasers: A on two days, B on one (the refunded order does not count).
    assert values[Kpi.REPEAT_PURCHASE_RATE] == Decimal("0.5")
    # Orders in the last 365 days: A 3, B 1 -> 2 per buyer.
    assert values[Kpi.PURCHASE_FREQUENCY] == Decimal("2")
    # Orders in the last 30 days: 50 + 10 + 40 over 3.
    assert values[Kpi.AVERAGE_ORDER_VALUE] == Decimal("33.33")
    assert values[Kpi.NPS] is None and values[Kpi.CSAT] is None  # no survey answers


def test_the_as_of_day_ends_at_local_midnight(history):
    a = history["a"]
    # 23:30 local on the as-of day counts; 00:30 the next day does not.
    event(a, "page_view", AS_OF, hour=23)
    purchase(history["c"], AS_OF + timedelta(days=1), "5.00", hour=0)
    values = compute_kpis(as_of=AS_OF)
    assert values[Kpi.ACTIVE_30D] == 2
    assert compute_kpis(as_of=AS_OF + timedelta(days=1))[Kpi.ACTIVE_30D] == 3


def test_closed_members_stop_counting_from_the_day_they_closed(history):
    with time_machine.travel(at(date(2026, 6, 10)), tick=False):
        close_member(member=history["c"])
    assert compute_kpis(as_of=date(2026, 6, 9))[Kpi.MEMBERS] == 2  # B not yet enrolled
    assert compute_kpis(as_of=AS_OF)[Kpi.MEMBERS] == 2


def test_undefined_ratios_are_none_without_data(db):
    values = compute_kpis(as_of=AS_OF)
    assert values[Kpi.MEMBERS] == 0
    for kpi in (Kpi.RETENTION_RATE, Kpi.CHURN_RATE, Kpi.AVERAGE_ORDER_VALUE, Kpi.ENGAGEMENT):
        assert values[kpi] is None
    assert values[Kpi.POINTS_LIABILITY] == Decimal("0.00")
    assert values[Kpi.MRR] == Decimal("0.00")


def test_redemption_rate_and_points_liability_from_the_ledger(db):
    who = member(date(2026, 1, 10))
    today = date.today()
    with time_machine.travel(at(today, 8), tick=False):
        award_points(member=who, points=1000, reason="test", idempotency_key="k1")
        spend_points(member=who, points=250, reason="reward", idempotency_key="k2")
    values = compute_kpis(as_of=today)
    assert values[Kpi.REDEMPTION_RATE] == Decimal("0.25")
    # 750 points outstanding at the default cost of 0.01 per point.
    assert values[Kpi.POINTS_LIABILITY] == Decimal("7.50")
    before = compute_kpis(as_of=today - timedelta(days=1))
    assert before[Kpi.REDEMPTION_RATE] is None
    assert before[Kpi.POINTS_LIABILITY] == Decimal("0.00")


def test_paid_plan_subscribers_retention_and_mrr(db):
    monthly = MembershipPlanFactory(price=Decimal("10.00"), billing_period_months=1, trial_days=0)
    quarterly = MembershipPlanFactory(price=Decimal("30.00"), billing_period_months=3, trial_days=0)
    a, b, c = (member(date(2026, 1, 10)) for _ in range(3))
    subscribe(member=a, plan=monthly, at=at(AS_OF - timedelta(days=60)))
    second = subscribe(member=b, plan=quarterly, at=at(AS_OF - timedelta(days=45)))
    cancel_subscription(subscription=second, at_period_end=False, at=at(AS_OF - timedelta(days=5)))
    subscribe(member=c, plan=monthly, at=at(AS_OF - timedelta(days=3)))

    values = compute_kpis(as_of=AS_OF)
    assert values[Kpi.SUBSCRIBERS] == 2
    # Live 30 days earlier: A and B; still live now: A.
    assert values[Kpi.SUBSCRIBER_RETENTION] == Decimal("0.5")
    assert values[Kpi.MRR] == Decimal("20.00")
    # Before the cancellation B still counts (quarterly: 10 a month).
    assert compute_kpis(as_of=AS_OF - timedelta(days=10))[Kpi.MRR] == Decimal("20.00")


def test_backfill_writes_one_snapshot_per_kpi_and_day_and_replaces_on_rerun(history):
    written = backfill_kpis(as_of=AS_OF, days=3)
    assert written == 3 * len(Kpi.values)
    assert KpiSnapshot.objects.count() == 3 * len(Kpi.values)
    assert set(KpiSnapshot.objects.values_list("as_of", flat=True)) == {
        date(2026, 6, 28),
        date(2026, 6, 29),
        AS_OF,
    }
    backfill_kpis(as_of=AS_OF, days=1)
    assert KpiSnapshot.objects.count() == 3 * len(Kpi.values)
    assert KpiSnapshot.objects.get(as_of=AS_OF, kpi=Kpi.ACTIVE_30D).value == 2


def test_nps_and_csat_over_the_last_90_days(db):
    from feedback import services as feedback_services
    from feedback.models import AnsweredVia, QuestionKind, SurveyKind
    from tests.feedback.factories import QuestionFactory, SurveyFactory

    def answer(kind, question_kind, scores, day):
        survey = SurveyFactory(kind=kind, open_to_all=True)
        question = QuestionFactory(survey=survey, kind=question_kind)
        for score in scores:
            feedback_services.submit_response(
                survey=survey,
                member=member(date(2026, 1, 2)),
                answers={str(question.pk): score},
                via=AnsweredVia.API,
                now=at(day),
            )

    # In the window: promoters 10, 9; detractor 3; passive 8 -> NPS 25. CSAT: 2 of 4 -> 50.
    answer(SurveyKind.NPS, QuestionKind.NPS, [10, 9, 3, 8], date(2026, 6, 1))
    answer(SurveyKind.CSAT, QuestionKind.RATING, [5, 4, 2, 1], date(2026, 5, 1))
    # More than 90 days before the as-of day: left out.
    answer(SurveyKind.NPS, QuestionKind.NPS, [0, 0], date(2026, 3, 1))

    values = compute_kpis(as_of=AS_OF)
    assert values[Kpi.NPS] == Decimal("25.0")
    assert values[Kpi.CSAT] == Decimal("50.0")
