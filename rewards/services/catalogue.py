"""The rewards catalogue: redemption is all-or-nothing in one transaction (tier, window,
per-member limit, balance, stock and code are checked and changed together)."""

import logging
import secrets

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from members.exceptions import MemberNotActive
from members.models import Member

from ..exceptions import (
    AlreadyCancelled,
    InsufficientPoints,
    LimitReached,
    OutOfStock,
    RewardUnavailable,
    TierRequired,
)
from ..models import Redemption, RedemptionStatus, Reward, RewardCode, RewardKind
from . import ledger

logger = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def generate_code(prefix: str = "", length: int = 10) -> str:
    return prefix + "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def redeem_reward(
    *, member: Member, reward: Reward, idempotency_key: str, actor=None
) -> Redemption:
    """Spend the member's points on a reward and hand out its code.

    Raises RewardUnavailable, TierRequired, LimitReached, InsufficientPoints or OutOfStock,
    with nothing written. The same key returns the first redemption.
    """
    if not idempotency_key:
        raise ValueError("An idempotency key is required.")
    found = Redemption.objects.filter(idempotency_key=idempotency_key).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return _redeem(member, reward, idempotency_key, actor)
    except IntegrityError:
        found = Redemption.objects.filter(idempotency_key=idempotency_key).first()
        if found is None:
            raise
        return found


def _redeem(member: Member, reward: Reward, idempotency_key: str, actor) -> Redemption:
    account = ledger.lock_account(member)  # account before reward: one lock order everywhere
    found = Redemption.objects.filter(idempotency_key=idempotency_key).first()
    if found is not None:
        return found
    member = Member.objects.get(pk=member.pk)
    if not member.is_active:
        raise MemberNotActive()
    reward = Reward.objects.select_related("min_tier").get(pk=reward.pk)
    now = timezone.now()
    if not reward.is_available_at(now):
        raise RewardUnavailable(reward=reward.pk)
    if reward.min_tier_id and (account.tier_id is None or account.tier.rank < reward.min_tier.rank):
        raise TierRequired(f"This reward needs the {reward.min_tier.name} tier.", reward=reward.pk)
    if reward.per_member_limit is not None:
        used = (
            Redemption.objects.filter(member_id=member.pk, reward=reward)
            .exclude(status=RedemptionStatus.CANCELLED)
            .count()
        )
        if used >= reward.per_member_limit:
            raise LimitReached(reward=reward.pk, limit=reward.per_member_limit)
    if account.balance < reward.points_cost:
        raise InsufficientPoints(balance=account.balance, requested=reward.points_cost)
    if reward.stock is not None:
        taken = Reward.objects.filter(pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1)
        if not taken:
            raise OutOfStock(reward=reward.pk)
    pool_code = None
    if reward.kind == RewardKind.COUPON:
        pool_code = (
            RewardCode.objects.select_for_update(skip_locked=True)
            .filter(reward=reward, redemption__isnull=True)
            .order_by("id")
            .first()
        )
        if pool_code is None:
            raise OutOfStock("No codes left for this reward.", reward=reward.pk)
    spend = ledger.spend_points(
        member=member,
        points=reward.points_cost,
        reason=f"Redeemed {reward.name}"[:255],
        idempotency_key=f"redeem:{idempotency_key}",
        source="redemption",
        source_ref=str(reward.pk),
        actor=actor,
    )
    redemption = Redemption.objects.create(
        member=member,
        reward=reward,
        points=reward.points_cost,
        code=pool_code.code if pool_code else generate_code(),
        transaction=spend,
        idempotency_key=idempotency_key,
        actor=actor,
        created_at=now,
    )
    if pool_code is not None:
        pool_code.redemption = redemption
        pool_code.assigned_at = now
        pool_code.save(update_fields=["redemption", "assigned_at"])
    logger.info("member %s redeemed reward %s", member.pk, reward.pk)
    return redemption


def cancel_redemption(*, redemption: Redemption, actor=None, reason: str) -> Redemption:
    """Give the points back (as a new bucket) and the stock; the handed-out code stays used."""
    with transaction.atomic():
        ledger.lock_account(redemption.member)
        redemption = Redemption.objects.select_for_update().get(pk=redemption.pk)
        if redemption.status == RedemptionStatus.CANCELLED:
            raise AlreadyCancelled(redemption=redemption.pk)
        refund = ledger.reverse_transaction(
            points_transaction=redemption.transaction,
            reason=f"Redemption cancelled: {reason}"[:255],
            idempotency_key=f"cancel-redemption:{redemption.pk}",
            actor=actor,
        )
        Reward.objects.filter(pk=redemption.reward_id, stock__isnull=False).update(
            stock=F("stock") + 1
        )
        redemption.status = RedemptionStatus.CANCELLED
        redemption.cancelled_at = timezone.now()
        redemption.cancelled_by = actor
        redemption.cancel_reason = reason[:255]
        redemption.refund_transaction = refund
        redemption.save(
            update_fields=[
                "status",
                "cancelled_at",
                "cancelled_by",
                "cancel_reason",
                "refund_transaction",
            ]
        )
    return redemption


def add_reward_codes(*, reward: Reward, codes: list[str]) -> int:
    """Upload codes into a coupon reward's pool; duplicates are skipped. Returns how many were
    added."""
    cleaned = list(dict.fromkeys(c.strip() for c in codes if c and c.strip()))
    with transaction.atomic():
        before = RewardCode.objects.filter(reward=reward).count()
        RewardCode.objects.bulk_create(
            [RewardCode(reward=reward, code=c) for c in cleaned],
            ignore_conflicts=True,
            batch_size=1000,
        )
        return RewardCode.objects.filter(reward=reward).count() - before


def generate_reward_codes(*, reward: Reward, count: int, prefix: str = "") -> int:
    """Fill a coupon reward's pool with `count` fresh random codes."""
    return add_reward_codes(reward=reward, codes=[generate_code(prefix) for _ in range(count)])
