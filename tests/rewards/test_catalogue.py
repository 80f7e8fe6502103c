import pytest
import time_machine

from members.exceptions import MemberNotActive
from members.services import suspend_member
from rewards.exceptions import (
    AlreadyCancelled,
    InsufficientPoints,
    LimitReached,
    OutOfStock,
    RewardUnavailable,
    TierRequired,
)
from rewards.models import (
    PointsAccount,
    PointsBucket,
    PointsTransaction,
    Redemption,
    RedemptionStatus,
    RewardCode,
    RewardKind,
    TransactionKind,
)
from rewards.selectors import active_rewards_for
from rewards.services import (
    add_reward_codes,
    award_points,
    cancel_redemption,
    generate_reward_codes,
    redeem_reward,
    set_member_tier,
)

from .factories import MemberFactory, RewardFactory, TierFactory
from .helpers import assert_consistent, at, balance

pytestmark = pytest.mark.django_db


def member_with(points: int):
    member = MemberFactory()
    if points:
        award_points(member=member, points=points, reason="seed", idempotency_key=f"s-{member.pk}")
    return member


def redeem(member, reward, key="r1"):
    return redeem_reward(member=member, reward=reward, idempotency_key=key)


def test_redeem_spends_points_and_returns_a_code(program):
    member = member_with(500)
    reward = RewardFactory(points_cost=300, stock=3)
    redemption = redeem(member, reward)
    assert redemption.status == RedemptionStatus.COMPLETED and len(redemption.code) == 10
    assert redemption.transaction.kind == TransactionKind.REDEEM
    assert redemption.transaction.points == -300
    assert balance(member) == 200
    reward.refresh_from_db()
    assert reward.stock == 2
    assert_consistent(member)


def test_redeem_is_idempotent(program):
    member = member_with(500)
    reward = RewardFactory(points_cost=100)
    first = redeem(member, reward, "same")
    again = redeem(member, reward, "same")
    assert again.pk == first.pk and balance(member) == 400


def test_redeem_fails_when_balance_too_low_and_changes_nothing(program):
    member = member_with(99)
    reward = RewardFactory(points_cost=100, stock=1)
    with pytest.raises(InsufficientPoints) as info:
        redeem(member, reward)
    assert info.value.code == "insufficient_points" and info.value.status_code == 409
    reward.refresh_from_db()
    assert reward.stock == 1 and balance(member) == 99
    assert not Redemption.objects.exists()


def test_redeem_fails_when_out_of_stock(program):
    reward = RewardFactory(points_cost=10, stock=0)
    with pytest.raises(OutOfStock) as info:
        redeem(member_with(100), reward)
    assert info.value.code == "out_of_stock"


def test_per_member_limit(program):
    member = member_with(1000)
    reward = RewardFactory(points_cost=100, per_member_limit=2)
    redeem(member, reward, "a")
    redeem(member, reward, "b")
    with pytest.raises(LimitReached) as info:
        redeem(member, reward, "c")
    assert info.value.code == "limit_reached"
    assert balance(member) == 800
    redeem(member_with(100), reward, "other-member")  # the limit is per member


def test_cancelled_redemption_does_not_count_towards_the_limit(program, support):
    member = member_with(1000)
    reward = RewardFactory(points_cost=100, per_member_limit=1)
    first = redeem(member, reward, "a")
    cancel_redemption(redemption=first, actor=support, reason="changed mind")
    redeem(member, reward, "b")


def test_min_tier_required(program):
    silver = TierFactory(name="Silver", rank=2, points_threshold=100000)
    member = member_with(500)
    reward = RewardFactory(points_cost=100, min_tier=silver)
    with pytest.raises(TierRequired) as info:
        redeem(member, reward)
    assert info.value.code == "tier_required"
    assert reward not in active_rewards_for(member)
    set_member_tier(member=member, tier=silver)
    assert redeem(member, reward).points == 100
    assert reward in active_rewards_for(member)


def test_reward_outside_its_window_or_inactive_is_unavailable(program):
    member = member_with(500)
    seasonal = RewardFactory(active_from=at(2025, 12, 1), active_until=at(2026, 1, 1))
    inactive = RewardFactory(is_active=False)
    with time_machine.travel(at(2025, 11, 30, 12), tick=False):
        with pytest.raises(RewardUnavailable) as info:
            redeem(member, seasonal, "early")
        assert info.value.code == "reward_unavailable"
        assert seasonal not in active_rewards_for(member)
    with time_machine.travel(at(2025, 12, 24, 12), tick=False):
        assert redeem(member, seasonal, "xmas").points == 100
        assert seasonal in active_rewards_for(member)
    with pytest.raises(RewardUnavailable):
        redeem(member, inactive, "never")


def test_suspended_member_cannot_redeem(program):
    member = member_with(500)
    suspend_member(member=member)
    with pytest.raises(MemberNotActive):
        redeem(member, RewardFactory())


def test_coupon_reward_hands_out_pool_codes_once_each(program):
    reward = RewardFactory(kind=RewardKind.COUPON, points_cost=10)
    assert add_reward_codes(reward=reward, codes=["AAA", "BBB", "AAA", " ", "BBB"]) == 2
    assert add_reward_codes(reward=reward, codes=["BBB", "CCC"]) == 1
    member = member_with(100)
    codes = [redeem(member, reward, f"r{i}").code for i in range(3)]
    assert codes == ["AAA", "BBB", "CCC"]
    assert RewardCode.objects.filter(redemption__isnull=False).count() == 3
    assert reward not in active_rewards_for(member)
    with pytest.raises(OutOfStock):
        redeem(member, reward, "r4")
    assert balance(member) == 70


def test_generated_codes_fill_the_pool(program):
    reward = RewardFactory(kind=RewardKind.COUPON)
    assert generate_reward_codes(reward=reward, count=25, prefix="X-") == 25
    assert RewardCode.objects.filter(reward=reward, code__startswith="X-").count() == 25


def test_cancel_redemption_gives_points_back_as_a_new_bucket(program, support):
    member = member_with(300)
    reward = RewardFactory(points_cost=200, stock=1)
    redemption = redeem(member, reward)
    cancelled = cancel_redemption(
        redemption=redemption, actor=support, reason="out of stock in shop"
    )
    assert cancelled.status == RedemptionStatus.CANCELLED
    assert cancelled.cancelled_by == support and cancelled.cancel_reason == "out of stock in shop"
    refund = cancelled.refund_transaction
    assert refund.kind == TransactionKind.REVERSE and refund.points == 200
    assert PointsBucket.objects.filter(transaction=refund, remaining=200).exists()
    assert balance(member) == 300
    reward.refresh_from_db()
    assert reward.stock == 1
    with pytest.raises(AlreadyCancelled) as info:
        cancel_redemption(redemption=redemption, actor=support, reason="twice")
    assert info.value.code == "already_cancelled"
    assert balance(member) == 300
    assert PointsTransaction.objects.filter(kind=TransactionKind.REVERSE).count() == 1
    assert_consistent(member)


def test_redeeming_records_activity(program):
    with time_machine.travel(at(2026, 1, 1, 12), tick=False):
        member = member_with(300)
    with time_machine.travel(at(2026, 2, 1, 12), tick=False):
        redeem(member, RewardFactory())
    assert PointsAccount.objects.get(member=member).last_activity_at == at(2026, 2, 1, 12)
