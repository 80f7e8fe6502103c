"""Tiers: upgrade as soon as a threshold is crossed, downgrade only at the nightly review,
one level at a time, once the guaranteed period of the current tier has passed.

A live paid plan with a granted tier is a floor: the member is at least at that tier.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..models import BENEFIT_SUBSCRIPTION_STATUSES, PointsAccount, Subscription, Tier, TierChange
from ..selectors import (
    program_settings,
    qualification_value,
    qualification_values,
    tier_for_value,
)
from . import clock

logger = logging.getLogger(__name__)


def _higher(a: Tier | None, b: Tier | None) -> Tier | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a.rank >= b.rank else b


def _plan_floor(member_id: int) -> Tier | None:
    sub = (
        Subscription.objects.filter(
            member_id=member_id,
            status__in=BENEFIT_SUBSCRIPTION_STATUSES,
            plan__granted_tier__isnull=False,
        )
        .select_related("plan__granted_tier")
        .first()
    )
    return sub.plan.granted_tier if sub else None


def _set_tier(account: PointsAccount, tier: Tier | None, *, cause: str, at: datetime) -> TierChange:
    change = TierChange.objects.create(
        member_id=account.member_id,
        from_tier_id=account.tier_id,
        to_tier=tier,
        changed_at=at,
        cause=cause,
    )
    account.tier = tier
    account.tier_since = at
    account.save(update_fields=["tier", "tier_since", "updated_at"])
    logger.info("member %s tier → %s (%s)", account.member_id, tier, cause)
    return change


def upgrade_if_qualified(
    *, account: PointsAccount, as_of: datetime | None = None
) -> TierChange | None:
    """Raise the account's tier if it now qualifies for a higher one (caller holds the lock).

    Returns the TierChange, or None when nothing changed. Never lowers a tier.
    """
    as_of = as_of or timezone.now()
    tiers = list(Tier.objects.all())
    if not tiers:
        return None
    settings_row = program_settings()
    value = qualification_value(member=account.member, as_of=as_of, settings_row=settings_row)
    earned = tier_for_value(value, tiers, settings_row)
    floor = _plan_floor(account.member_id)
    target = _higher(earned, floor)
    current = account.tier if account.tier_id else None
    if target is None or (current is not None and target.rank <= current.rank):
        return None
    cause = (
        TierChange.Cause.PLAN
        if floor is not None and target == floor and (earned is None or earned.rank < floor.rank)
        else TierChange.Cause.QUALIFIED
    )
    return _set_tier(account, target, cause=cause, at=as_of)


def review_tiers(*, as_of: datetime | None = None) -> dict[str, int]:
    """The nightly review: upgrades anyone who qualifies, and moves down one level those who
    no longer qualify and whose guaranteed period is over. Safe to run twice."""
    as_of = as_of or timezone.now()
    settings_row = program_settings()
    tiers = list(Tier.objects.all())
    if not tiers:
        return {"upgraded": 0, "downgraded": 0}
    by_id = {t.pk: t for t in tiers}
    zone = clock.program_zone(settings_row)
    values = qualification_values(as_of=as_of, settings_row=settings_row)
    floors = dict(
        Subscription.objects.filter(
            status__in=BENEFIT_SUBSCRIPTION_STATUSES, plan__granted_tier__isnull=False
        ).values_list("member_id", "plan__granted_tier_id")
    )
    planned: list[tuple[int, int | None, Tier | None]] = []
    for account_id, member_id, tier_id, tier_since in PointsAccount.objects.values_list(
        "id", "member_id", "tier_id", "tier_since"
    ).iterator(chunk_size=2000):
        qualified = _higher(
            tier_for_value(values.get(member_id, 0), tiers, settings_row),
            by_id.get(floors.get(member_id)),
        )
        current = by_id.get(tier_id)
        if qualified is not None and (current is None or qualified.rank > current.rank):
            planned.append((account_id, tier_id, qualified))
        elif current is not None and (qualified is None or qualified.rank < current.rank):
            guaranteed_until = clock.add_months_local(
                tier_since or as_of, current.guaranteed_months, zone
            )
            if guaranteed_until <= as_of:
                lower = [t for t in tiers if t.rank < current.rank]
                planned.append((account_id, tier_id, lower[-1] if lower else None))
    counts = {"upgraded": 0, "downgraded": 0}
    for account_id, from_tier_id, tier in planned:
        with transaction.atomic():
            account = PointsAccount.objects.select_for_update().get(pk=account_id)
            if account.tier_id != from_tier_id:  # changed since we looked: next review decides
                continue
            current = by_id.get(from_tier_id)
            up = current is None or (tier is not None and tier.rank > current.rank)
            _set_tier(account, tier, cause=TierChange.Cause.REVIEW, at=as_of)
            counts["upgraded" if up else "downgraded"] += 1
    logger.info("tier review as of %s: %s", as_of.isoformat(), counts)
    return counts


def refresh_tier(*, member, as_of: datetime | None = None) -> TierChange | None:
    """Upgrade the member now if they qualify (e.g. after a plan starts); one transaction."""
    from .ledger import lock_account

    with transaction.atomic():
        return upgrade_if_qualified(account=lock_account(member), as_of=as_of)


def set_member_tier(*, member, tier: Tier | None, at: datetime | None = None) -> TierChange | None:
    """A staff override of the member's tier; the guaranteed period starts now."""
    from .ledger import lock_account

    at = at or timezone.now()
    with transaction.atomic():
        account = lock_account(member)
        if account.tier_id == (tier.pk if tier else None):
            return None
        return _set_tier(account, tier, cause=TierChange.Cause.ADMIN, at=at)
