from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, transaction

from rewards.exceptions import AlreadySubscribed, PlanUnavailable, SubscriptionNotLive
from rewards.models import (
    Subscription,
    SubscriptionPayment,
    SubscriptionStatus,
)
from rewards.services import (
    cancel_subscription,
    lapse_subscriptions,
    record_renewal,
    resume_subscription,
    subscribe,
)

from .factories import MemberFactory, MembershipPlanFactory
from .helpers import assert_consistent, at, balance

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(program):
    program.subscription_grace_days = 14
    program.save()
    return MembershipPlanFactory(
        name="Plus", price=Decimal("4.99"), trial_days=14, renewal_bonus_points=100
    )


def history(subscription) -> list[str]:
    return [
        e.to_status
        for e in subscription.events.order_by("occurred_at", "id")
        if e.from_status != e.to_status
    ]


def pay(subscription, ref, paid_at):
    return record_renewal(
        subscription=subscription, amount=Decimal("4.99"), paid_at=paid_at, payment_ref=ref
    )


def test_full_lifecycle_trial_active_renewal_past_due_expired(plan):
    member = MemberFactory()
    with time_machine.travel(at(2025, 1, 1, 10), tick=False):
        sub = subscribe(member=member, plan=plan)
    assert sub.status == SubscriptionStatus.TRIALING
    assert sub.current_period_end == at(2025, 1, 15, 10)

    first = pay(sub, "PAY-1", at(2025, 1, 14, 9))
    assert pay(sub, "PAY-1", at(2025, 1, 14, 9)).pk == first.pk  # idempotent
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert (sub.current_period_start, sub.current_period_end) == (
        at(2025, 1, 15, 10),
        at(2025, 2, 15, 10),
    )
    assert balance(member) == 0  # the first payment is not a renewal

    with time_machine.travel(at(2025, 2, 14, 9), tick=False):
        renewal = pay(sub, "PAY-2", at(2025, 2, 14, 9))
    sub.refresh_from_db()
    assert sub.current_period_end == at(2025, 3, 15, 10)
    assert renewal.bonus_transaction.points == 100 and balance(member) == 100
    pay(sub, "PAY-2", at(2025, 2, 14, 9))
    assert balance(member) == 100 and SubscriptionPayment.objects.count() == 2

    assert lapse_subscriptions(as_of=at(2025, 3, 15, 9)) == {
        "cancelled": 0,
        "past_due": 0,
        "expired": 0,
    }
    assert lapse_subscriptions(as_of=at(2025, 3, 16))["past_due"] == 1
    assert lapse_subscriptions(as_of=at(2025, 3, 16))["past_due"] == 0
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.PAST_DUE and sub.ended_at is None
    lapse_subscriptions(as_of=at(2025, 3, 29, 9))
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.PAST_DUE
    assert lapse_subscriptions(as_of=at(2025, 3, 30))["expired"] == 1
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.EXPIRED and sub.ended_at == at(2025, 3, 29, 10)
    assert history(sub) == ["trialing", "active", "past_due", "expired"]
    with pytest.raises(SubscriptionNotLive):
        pay(sub, "PAY-3", at(2025, 4, 1))
    assert_consistent(member)


def test_late_payment_reactivates_a_past_due_subscription(plan):
    member = MemberFactory()
    sub = subscribe(member=member, plan=plan, at=at(2025, 1, 1, 10))
    pay(sub, "P1", at(2025, 1, 10))
    lapse_subscriptions(as_of=at(2025, 2, 16))
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.PAST_DUE
    pay(sub, "P2", at(2025, 2, 20, 8))
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.current_period_start == at(2025, 2, 20, 8)
    assert history(sub) == ["trialing", "active", "past_due", "active"]


def test_unpaid_trial_expires_at_its_end(plan):
    sub = subscribe(member=MemberFactory(), plan=plan, at=at(2025, 1, 1, 10))
    assert lapse_subscriptions(as_of=at(2025, 1, 15, 11))["expired"] == 1
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.EXPIRED and sub.ended_at == at(2025, 1, 15, 10)


def test_cancel_at_period_end_keeps_benefits_until_then(plan):
    member = MemberFactory()
    sub = subscribe(member=member, plan=plan, at=at(2025, 1, 1, 10))
    pay(sub, "P1", at(2025, 1, 10))
    sub = cancel_subscription(subscription=sub, at_period_end=True, at=at(2025, 1, 20))
    assert sub.status == SubscriptionStatus.ACTIVE and sub.cancel_at_period_end
    lapse_subscriptions(as_of=at(2025, 2, 15, 9))
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert lapse_subscriptions(as_of=at(2025, 2, 15, 11))["cancelled"] == 1
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.CANCELLED and sub.ended_at == at(2025, 2, 15, 10)
    assert history(sub) == ["trialing", "active", "cancelled"]
    # A new subscription is possible once the old one has ended.
    assert subscribe(member=member, plan=plan).status == SubscriptionStatus.TRIALING


def test_cancellation_can_be_withdrawn(plan):
    sub = subscribe(member=MemberFactory(), plan=plan, at=at(2025, 1, 1, 10))
    pay(sub, "P1", at(2025, 1, 10))
    cancel_subscription(subscription=sub)
    resume_subscription(subscription=sub)
    lapse_subscriptions(as_of=at(2025, 2, 16))
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.PAST_DUE


def test_cancel_immediately(plan):
    sub = subscribe(member=MemberFactory(), plan=plan, at=at(2025, 1, 1, 10))
    sub = cancel_subscription(subscription=sub, at_period_end=False, at=at(2025, 1, 3))
    assert sub.status == SubscriptionStatus.CANCELLED and sub.ended_at == at(2025, 1, 3)
    with pytest.raises(SubscriptionNotLive):
        cancel_subscription(subscription=sub)


def test_plan_without_trial_starts_active_and_records_the_checkout_payment(plan):
    plan.trial_days = 0
    plan.save()
    sub = subscribe(member=MemberFactory(), plan=plan, at=at(2025, 1, 31, 10), payment_ref="CO-1")
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.current_period_end == at(2025, 2, 28, 10)
    payment = SubscriptionPayment.objects.get(payment_ref="CO-1")
    assert payment.amount == Decimal("4.99") and payment.period_end == sub.current_period_end


def test_one_live_subscription_per_member(plan):
    member = MemberFactory()
    sub = subscribe(member=member, plan=plan)
    with pytest.raises(AlreadySubscribed) as info:
        subscribe(member=member, plan=MembershipPlanFactory())
    assert info.value.code == "already_subscribed"
    with pytest.raises(IntegrityError), transaction.atomic():
        Subscription.objects.create(
            member=member,
            plan=plan,
            status=SubscriptionStatus.PAST_DUE,
            current_period_start=sub.current_period_start,
            current_period_end=sub.current_period_end,
            started_at=sub.started_at,
        )


def test_inactive_plan_cannot_be_subscribed(plan):
    plan.is_active = False
    plan.save()
    with pytest.raises(PlanUnavailable):
        subscribe(member=MemberFactory(), plan=plan)
