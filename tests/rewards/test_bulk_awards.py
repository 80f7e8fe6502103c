"""rewards.services.bulk.award_events gives every event exactly what award_for_event gives it
one by one: the same points and lines, ledger rows, buckets, purchases and tier changes."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from rewards.models import (
    EarningRuleKind,
    PointsBucket,
    PointsTransaction,
    Purchase,
    RuleAward,
    TierChange,
)
from rewards.selectors import program_settings
from rewards.services import EventInput, award_for_event
from rewards.services.bulk import EventAward, award_events
from tests.rewards.helpers import assert_consistent, balance

from .factories import EarningRuleFactory, MemberFactory, TierFactory


def events(now):
    """A mix per member: purchases (one repeating an order), a review, a page view."""
    return [
        EventInput("purchase", now - timedelta(days=3), Decimal("40.50"), "EUR", "web", "", "A1"),
        EventInput("review", now - timedelta(days=2)),
        EventInput("purchase", now - timedelta(days=2), Decimal("12.00"), "", "store", "", "A1"),
        EventInput("purchase", now - timedelta(days=1), Decimal("99.99"), "", "web", "", ""),
        EventInput("page_view", now - timedelta(hours=5)),
    ]


def ledger_of(member):
    rows = PointsTransaction.objects.filter(member=member).order_by("occurred_at", "id")
    return [
        (
            t.kind,
            t.points,
            t.pending_points,
            t.qualifying_points,
            t.balance_after,
            t.reason,
            t.source,
            t.source_ref,
            t.breakdown,
        )
        for t in rows
    ]


def state_of(member):
    return (
        balance(member),
        ledger_of(member),
        sorted(
            (b.points, b.remaining, b.pending, b.expires_at, b.earned_at)
            for b in PointsBucket.objects.filter(member=member)
        ),
        sorted(
            (p.order_id, p.amount, p.currency, p.channel, p.points)
            for p in Purchase.objects.filter(member=member)
        ),
        sorted((a.rule_id, a.points) for a in RuleAward.objects.filter(member=member)),
        [(c.from_tier_id, c.to_tier_id) for c in TierChange.objects.filter(member=member)],
    )


def run_both():
    now = timezone.now()
    one, other = MemberFactory(), MemberFactory()
    singles = [
        award_for_event(member=one, event=e, idempotency_key=f"one-{i}")
        for i, e in enumerate(events(now))
    ]
    bulk = award_events(
        items=[EventAward(other, e, f"other-{i}") for i, e in enumerate(events(now))]
    )
    return one, other, singles, bulk


def lines(awards):
    return [
        (a.points, [(x.rule_id, x.rule_name, x.points, x.note) for x in a.lines]) for a in awards
    ]


@pytest.mark.django_db
def test_bulk_awards_equal_one_by_one_with_purchase_fixed_and_multiplier_rules():
    EarningRuleFactory(points_per_unit=Decimal("1.5"))
    EarningRuleFactory(kind=EarningRuleKind.FIXED, event_type="review", points=25)
    EarningRuleFactory(
        kind=EarningRuleKind.MULTIPLIER, event_type="purchase", factor=Decimal("2"), channel="web"
    )

    one, other, singles, bulk = run_both()

    assert lines(bulk) == lines(singles)
    assert [a.points for a in bulk] == [120, 25, 0, 298, 0]  # A1 repeated: nothing
    assert state_of(other)[:5] == state_of(one)[:5]
    assert_consistent(other)


@pytest.mark.django_db
def test_bulk_awards_with_pending_days_and_expiry_match_one_by_one():
    settings_row = program_settings()
    settings_row.pending_days = 2
    settings_row.expiry_policy = "rolling_months"
    settings_row.save()
    EarningRuleFactory(points_per_unit=Decimal("1"))

    one, other, singles, bulk = run_both()

    assert lines(bulk) == lines(singles)
    assert state_of(other)[:5] == state_of(one)[:5]
    assert PointsTransaction.objects.filter(member=other, kind="pending").exists()
    assert_consistent(other)


@pytest.mark.django_db
def test_tier_upgrades_after_bulk_earnings_and_tier_bonus_members_go_one_by_one():
    TierFactory(name="Base", rank=1, points_threshold=0)
    TierFactory(name="Gold", rank=2, points_threshold=100, earn_multiplier=Decimal("2"))
    EarningRuleFactory(points_per_unit=Decimal("1"))

    one, other, singles, bulk = run_both()

    # Gold doubles points from the moment it is reached, so both paths award alike.
    assert lines(bulk) == lines(singles)
    assert state_of(other) == state_of(one)
    assert balance(other) == balance(one)
    assert_consistent(other)


@pytest.mark.django_db
def test_a_rule_with_limits_sends_the_member_through_the_engine():
    EarningRuleFactory(
        kind=EarningRuleKind.FIXED, event_type="review", points=10, max_count_per_day=1
    )
    member = MemberFactory()
    now = timezone.now()
    review = EventInput("review", now)

    awards = award_events(
        items=[EventAward(member, review, "r1"), EventAward(member, review, "r2")]
    )

    assert [a.points for a in awards] == [10, 0]
    assert balance(member) == 10
    assert_consistent(member)


@pytest.mark.django_db
def test_repeated_keys_and_inactive_members_are_answered_like_the_engine():
    EarningRuleFactory(points_per_unit=Decimal("1"))
    member, closed = MemberFactory(), MemberFactory()
    closed.status = "closed"
    closed.save(update_fields=["status"])
    purchase = EventInput("purchase", timezone.now(), Decimal("10"), "", "", "", "")
    first = award_for_event(member=member, event=purchase, idempotency_key="k1")

    again, inactive = award_events(
        items=[EventAward(member, purchase, "k1"), EventAward(closed, purchase, "k2")]
    )

    assert again.transaction.pk == first.transaction.pk
    assert again.points == 10
    assert inactive.points == 0 and inactive.lines[0].rule_name == "Member not active"
    assert PointsTransaction.objects.count() == 1
