"""Tiers: upgrade as soon as a threshold is crossed, downgrade only at the nightly review,
one level at a time, once the guaranteed period of the current tier has passed.

A live paid plan with a granted tier is a floor: the member is at least at that tier.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from ..models import (
    BENEFIT_SUBSCRIPTION_STATUSES,
    MembershipPlan,
    PointsAccount,
    ProgramSettings,
    Subscription,
    Tier,
    TierChange,
)
from ..selectors import (
    member_qualification_value,
    program_settings,
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


def tiers_for_upgrade() -> list[Tier]:
    """Tiers in rank order, each marked `granted` when some plan grants it (a possible floor)."""
    return list(
        Tier.objects.annotate(
            granted=Exists(MembershipPlan.objects.filter(granted_tier=OuterRef("pk")))
        )
    )


def upgrade_if_qualified(
    *, account: PointsAccount, as_of: datetime | None = None
) -> TierChange | None:
    """Raise the account's tier if it now qualifies for a higher one (caller holds the lock).

    Returns the TierChange, or None when nothing changed. Never lowers a tier.
    """
    return _upgrade(account, as_of=as_of or timezone.now(), lifetime_earned=None)


def upgrade_after_earning(
    *,
    account: PointsAccount,
    as_of: datetime,
    settings_row: ProgramSettings | None = None,
    tiers: list[Tier] | None = None,
) -> TierChange | None:
    """upgrade_if_qualified for the ledger, whose locked `account` is up to date (so its
    lifetime_earned needs no re-read) and which may pass the settings row and tiers it holds."""
    return _upgrade(
        account,
        as_of=as_of,
        lifetime_earned=account.lifetime_earned,
        settings_row=settings_row,
        tiers=tiers,
    )


def _upgrade(
    account: PointsAccount,
    *,
    as_of: datetime,
    lifetime_earned: int | None,
    settings_row: ProgramSettings | None = None,
    tiers: list[Tier] | None = None,
) -> TierChange | None:
    if tiers is None:
        tiers = tiers_for_upgrade()
    if not tiers:
        return None
    current = _current_tier(account, tiers)
    if current is not None and tiers[-1].rank <= current.rank:
        return None  # nothing above the current tier: no value to compute, no floor to look up
    settings_row = settings_row or program_settings()
    value = member_qualification_value(
        member_id=account.member_id,
        as_of=as_of,
        settings_row=settings_row,
        lifetime_earned=lifetime_earned,
    )
    earned = tier_for_value(value, tiers, settings_row)
    # A plan floor only matters when it lies above both the earned and the current tier.
    reached = max((t.rank for t in (earned, current) if t is not None), default=None)
    floor = None
    if any(getattr(t, "granted", True) for t in tiers if reached is None or t.rank > reached):
        floor = _plan_floor(account.member_id)
    target = _higher(earned, floor)
    if target is None or (current is not None and target.rank <= current.rank):
        return None
    cause = (
        TierChange.Cause.PLAN
        if floor is not None and target == floor and (earned is None or earned.rank < floor.rank)
        else TierChange.Cause.QUALIFIED
    )
    return _set_tier(account, target, cause=cause, at=as_of)


def _current_tier(account: PointsAccount, tiers: list[Tier]) -> Tier | None:
    if not account.tier_id:
        return None
    for tier in tiers:
        if tier.pk == account.tier_id:
            return tier
    return account.tier


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
