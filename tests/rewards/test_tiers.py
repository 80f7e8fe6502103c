from decimal import Decimal

import pytest
import time_machine

from rewards.models import PointsAccount, TierBasis, TierChange
from rewards.selectors import member_balance
from rewards.services import (
    EventInput,
    award_for_event,
    award_points,
    cancel_subscription,
    reverse_order,
    review_tiers,
    subscribe,
)

from .factories import EarningRuleFactory, MemberFactory, MembershipPlanFactory, TierFactory
from .helpers import at

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiers(program):
    program.tier_basis = TierBasis.POINTS
    program.tier_window_months = 12
    program.save()
    return {
        "Bronze": TierFactory(name="Bronze", rank=1, points_threshold=0, guaranteed_months=6),
        "Silver": TierFactory(name="Silver", rank=2, points_threshold=1000, guaranteed_months=6),
        "Gold": TierFactory(name="Gold", rank=3, points_threshold=3000, guaranteed_months=6),
    }


def tier_of(member) -> str | None:
    account = PointsAccount.objects.select_related("tier").get(member=member)
    return account.tier.name if account.tier_id else None


def give(member, points, key, **kwargs):
    return award_points(member=member, points=points, reason="t", idempotency_key=key, **kwargs)


def test_upgrade_happens_inside_the_award_that_crosses_the_threshold(tiers):
    member = MemberFactory()
    with time_machine.travel(at(2025, 1, 10, 12), tick=False):
        give(member, 999, "a")
        assert tier_of(member) == "Bronze"
        give(member, 1, "b")
        assert tier_of(member) == "Silver"
    changes = list(TierChange.objects.filter(member=member).order_by("id"))
    assert [(c.from_tier and c.from_tier.name, c.to_tier.name) for c in changes] == [
        (None, "Bronze"),
        ("Bronze", "Silver"),
    ]
    assert changes[-1].cause == TierChange.Cause.QUALIFIED
    assert PointsAccount.objects.get(member=member).tier_since == at(2025, 1, 10, 12)


def test_upgrade_can_jump_several_levels_at_once(tiers):
    member = MemberFactory()
    give(member, 5000, "big")
    assert tier_of(member) == "Gold"


def test_non_qualifying_points_do_not_upgrade(tiers):
    member = MemberFactory()
    give(member, 5000, "gift", qualifying=False)
    assert tier_of(member) is None


def test_downgrade_only_at_review_after_guarantee_one_level_at_a_time(tiers):
    member = MemberFactory()
    with time_machine.travel(at(2025, 1, 15, 12), tick=False):
        give(member, 3000, "gold")
    assert tier_of(member) == "Gold"

    # Still qualifying in the window: nothing to do.
    assert review_tiers(as_of=at(2025, 9, 1)) == {"upgraded": 0, "downgraded": 0}
    # The window has moved past the earning, the 6-month guarantee is long over: one level.
    assert review_tiers(as_of=at(2026, 1, 20)) == {"upgraded": 0, "downgraded": 1}
    assert tier_of(member) == "Silver"
    # Running the same review again changes nothing.
    assert review_tiers(as_of=at(2026, 1, 20)) == {"upgraded": 0, "downgraded": 0}
    # Silver is guaranteed for 6 months from the downgrade.
    review_tiers(as_of=at(2026, 7, 19))
    assert tier_of(member) == "Silver"
    review_tiers(as_of=at(2026, 7, 20))
    assert tier_of(member) == "Bronze"
    causes = list(
        TierChange.objects.filter(member=member, cause=TierChange.Cause.REVIEW)
        .order_by("id")
        .values_list("to_tier__name", flat=True)
    )
    assert causes == ["Silver", "Bronze"]


def test_no_downgrade_during_the_guaranteed_period(tiers):
    tiers["Gold"].guaranteed_months = 18
    tiers["Gold"].save()
    member = MemberFactory()
    with time_machine.travel(at(2025, 1, 15, 12), tick=False):
        give(member, 3000, "gold")
    review_tiers(as_of=at(2026, 6, 1))  # not qualifying since January, but guaranteed
    assert tier_of(member) == "Gold"
    review_tiers(as_of=at(2026, 7, 16))
    assert tier_of(member) == "Silver"


def test_refund_does_not_downgrade_before_review(tiers):
    EarningRuleFactory()
    member = MemberFactory()
    with time_machine.travel(at(2025, 1, 15, 12), tick=False):
        award_for_event(
            member=member,
            event=EventInput(event_type="purchase", amount=Decimal("1200"), order_id="O1"),
            idempotency_key="buy",
        )
        assert tier_of(member) == "Silver"
        reverse_order(member=member, order_id="O1", idempotency_key="refund", reason="r")
        assert tier_of(member) == "Silver"
    review_tiers(as_of=at(2025, 7, 16))
    assert tier_of(member) == "Bronze"


def test_spend_basis_upgrades_on_spend(program):
    program.tier_basis = TierBasis.SPEND
    program.tier_window_months = None
    program.save()
    TierFactory(name="Member", rank=1, spend_threshold=Decimal("0"))
    TierFactory(name="VIP", rank=2, spend_threshold=Decimal("500"))
    member = MemberFactory()
    for i, amount in enumerate(["300", "199.99", "0.01"]):
        award_for_event(
            member=member,
            event=EventInput(event_type="purchase", amount=Decimal(amount), order_id=f"O{i}"),
            idempotency_key=f"k{i}",
        )
        if i == 1:
            assert tier_of(member) == "Member"
            assert member_balance(member).spend_to_next_tier == Decimal("0.01")
    assert tier_of(member) == "VIP"


def test_plan_grants_a_tier_floor(tiers):
    plan = MembershipPlanFactory(granted_tier=tiers["Silver"], trial_days=0)
    member = MemberFactory()
    with time_machine.travel(at(2025, 1, 15, 12), tick=False):
        subscription = subscribe(member=member, plan=plan)
    assert tier_of(member) == "Silver"
    assert TierChange.objects.get(member=member).cause == TierChange.Cause.PLAN
    review_tiers(as_of=at(2025, 12, 1))
    assert tier_of(member) == "Silver"
    cancel_subscription(subscription=subscription, at_period_end=False, at=at(2025, 12, 2))
    review_tiers(as_of=at(2025, 12, 3))
    assert tier_of(member) == "Bronze"


def test_balance_summary_shows_progress_to_next_tier(tiers):
    member = MemberFactory()
    give(member, 1500, "a")
    summary = member_balance(member)
    assert summary.tier.name == "Silver" and summary.next_tier.name == "Gold"
    assert summary.points_to_next_tier == 1500
    assert summary.progress_percent == 25
    assert summary.balance == 1500 and summary.points_name == "points"
