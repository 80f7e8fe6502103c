"""Reads shared by views, the API, tasks and services."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from members.models import Member

from .models import (
    BENEFIT_SUBSCRIPTION_STATUSES,
    LIVE_SUBSCRIPTION_STATUSES,
    ExpiryPolicy,
    PointsAccount,
    PointsBucket,
    PointsTransaction,
    ProgramSettings,
    Purchase,
    Reward,
    RewardCode,
    RewardKind,
    Subscription,
    Tier,
    TierBasis,
)


def program_settings() -> ProgramSettings:
    """The program's settings row, created with defaults on first read."""
    row, _ = ProgramSettings.objects.get_or_create(pk=ProgramSettings.SINGLETON_ID)
    return row


def _zone(settings_row: ProgramSettings):
    from .services import clock

    return clock.program_zone(settings_row)


def qualification_window_start(as_of: datetime, settings_row: ProgramSettings) -> datetime | None:
    if not settings_row.tier_window_months:
        return None
    from .services import clock

    return clock.add_months_local(as_of, -settings_row.tier_window_months, _zone(settings_row))


def qualification_value(
    *, member: Member, as_of: datetime | None = None, settings_row: ProgramSettings | None = None
) -> int | Decimal:
    """What tiers are measured on: qualifying points or spend, in the window or all-time."""
    return member_qualification_value(
        member_id=member.pk,
        as_of=as_of or timezone.now(),
        settings_row=settings_row or program_settings(),
    )


def member_qualification_value(
    *,
    member_id: int,
    as_of: datetime,
    settings_row: ProgramSettings,
    lifetime_earned: int | None = None,
) -> int | Decimal:
    """qualification_value by member id; `lifetime_earned` is the account's value when the
    caller holds the account row already (all-time points basis needs no query then)."""
    start = qualification_window_start(as_of, settings_row)
    if settings_row.tier_basis == TierBasis.SPEND:
        purchases = Purchase.objects.filter(
            member_id=member_id, refunded_at__isnull=True, occurred_at__lte=as_of
        )
        if start is not None:
            purchases = purchases.filter(occurred_at__gt=start)
        return purchases.aggregate(total=Sum("amount"))["total"] or Decimal("0")
    if start is None:
        if lifetime_earned is not None:
            return lifetime_earned
        account = PointsAccount.objects.filter(member_id=member_id).first()
        return account.lifetime_earned if account else 0
    total = PointsTransaction.objects.filter(
        member_id=member_id, occurred_at__gt=start, occurred_at__lte=as_of
    ).aggregate(total=Sum("qualifying_points"))["total"]
    return max(0, total or 0)


def qualification_values(
    *, as_of: datetime, settings_row: ProgramSettings
) -> dict[int, int | Decimal]:
    """qualification_value for every member with a value, in one query."""
    start = qualification_window_start(as_of, settings_row)
    if settings_row.tier_basis == TierBasis.SPEND:
        rows = Purchase.objects.filter(refunded_at__isnull=True, occurred_at__lte=as_of)
        if start is not None:
            rows = rows.filter(occurred_at__gt=start)
        return dict(
            rows.values("member_id").annotate(total=Sum("amount")).values_list("member_id", "total")
        )
    if start is None:
        return dict(PointsAccount.objects.values_list("member_id", "lifetime_earned"))
    rows = PointsTransaction.objects.filter(occurred_at__gt=start, occurred_at__lte=as_of)
    return {
        member_id: max(0, total or 0)
        for member_id, total in rows.values("member_id")
        .annotate(total=Sum("qualifying_points"))
        .values_list("member_id", "total")
    }


def tier_threshold(tier: Tier, settings_row: ProgramSettings) -> int | Decimal:
    if settings_row.tier_basis == TierBasis.SPEND:
        return tier.spend_threshold
    return tier.points_threshold


def tier_for_value(value, tiers: list[Tier], settings_row: ProgramSettings) -> Tier | None:
    """The highest tier whose threshold the value reaches (tiers in rank order)."""
    reached = None
    for tier in tiers:
        if value >= tier_threshold(tier, settings_row):
            reached = tier
    return reached


def live_subscription(member: Member) -> Subscription | None:
    return (
        Subscription.objects.filter(member_id=member.pk, status__in=LIVE_SUBSCRIPTION_STATUSES)
        .select_related("plan", "plan__granted_tier")
        .first()
    )


def benefit_subscription(member: Member) -> Subscription | None:
    """The subscription whose benefits apply now (trialing or active, not past due)."""
    sub = live_subscription(member)
    return sub if sub and sub.status in BENEFIT_SUBSCRIPTION_STATUSES else None


@dataclass
class BalanceSummary:
    balance: int
    pending: int
    lifetime_earned: int
    points_name: str
    tier: Tier | None
    next_tier: Tier | None
    points_to_next_tier: int | None
    spend_to_next_tier: Decimal | None
    progress_percent: int
    expiring: list[tuple[date, int]] = field(default_factory=list)


def member_balance(member: Member, *, as_of: datetime | None = None) -> BalanceSummary:
    """Balance, tier progress and points expiring in the next 90 days."""
    as_of = as_of or timezone.now()
    settings_row = program_settings()
    account = PointsAccount.objects.select_related("tier").filter(member_id=member.pk).first()
    tiers = list(Tier.objects.all())
    tier = account.tier if account and account.tier_id else (tiers[0] if tiers else None)
    higher = [t for t in tiers if tier is None or t.rank > tier.rank]
    next_tier = higher[0] if higher else None
    points_to_next = spend_to_next = None
    progress = 100
    if next_tier is not None:
        value = qualification_value(member=member, as_of=as_of, settings_row=settings_row)
        floor = tier_threshold(tier, settings_row) if tier else 0
        target = tier_threshold(next_tier, settings_row)
        missing = max(target - value, 0)
        if settings_row.tier_basis == TierBasis.SPEND:
            spend_to_next = Decimal(missing)
        else:
            points_to_next = int(missing)
        span = target - floor
        progress = 100 if span <= 0 else int(max(0, min(1, (value - floor) / span)) * 100)
    return BalanceSummary(
        balance=account.balance if account else 0,
        pending=account.pending if account else 0,
        lifetime_earned=account.lifetime_earned if account else 0,
        points_name=settings_row.points_name,
        tier=tier,
        next_tier=next_tier,
        points_to_next_tier=points_to_next,
        spend_to_next_tier=spend_to_next,
        progress_percent=progress,
        expiring=expiring_points(member, as_of=as_of, days=90) if account else [],
    )


def expiring_points(member: Member, *, as_of: datetime, days: int = 90) -> list[tuple[date, int]]:
    """(local date, points) expiring within `days`, soonest first."""
    settings_row = program_settings()
    zone = _zone(settings_row)
    horizon = as_of + timedelta(days=days)
    totals: dict[date, int] = {}
    rows = PointsBucket.objects.filter(
        member_id=member.pk,
        pending=False,
        remaining__gt=0,
        expires_at__gt=as_of,
        expires_at__lte=horizon,
    ).values_list("expires_at", "remaining")
    for expires_at, remaining in rows:
        day = (expires_at - timedelta(microseconds=1)).astimezone(zone).date()
        totals[day] = totals.get(day, 0) + remaining
    if settings_row.expiry_policy == ExpiryPolicy.INACTIVITY:
        account = PointsAccount.objects.filter(member_id=member.pk).first()
        if account and account.last_activity_at and account.balance:
            from .services import clock

            when = clock.add_months_local(
                account.last_activity_at, settings_row.expiry_months, zone
            )
            if as_of < when <= horizon:
                rest = account.balance - sum(totals.values())
                if rest > 0:
                    day = when.astimezone(zone).date()
                    totals[day] = totals.get(day, 0) + rest
    return sorted(totals.items())


def member_transactions(member: Member) -> QuerySet[PointsTransaction]:
    """The member's ledger, newest first."""
    return PointsTransaction.objects.filter(member_id=member.pk).select_related("actor")


def active_rewards_for(member: Member, *, as_of: datetime | None = None) -> QuerySet[Reward]:
    """Rewards the member could redeem now given tier and stock (affordability aside)."""
    as_of = as_of or timezone.now()
    account = PointsAccount.objects.select_related("tier").filter(member_id=member.pk).first()
    rank = account.tier.rank if account and account.tier_id else None
    tier_ok = Q(min_tier__isnull=True)
    if rank is not None:
        tier_ok |= Q(min_tier__rank__lte=rank)
    return (
        Reward.objects.filter(is_active=True)
        .filter(Q(active_from__isnull=True) | Q(active_from__lte=as_of))
        .filter(Q(active_until__isnull=True) | Q(active_until__gt=as_of))
        .filter(Q(stock__isnull=True) | Q(stock__gt=0))
        .filter(tier_ok)
        .filter(
            ~Q(kind=RewardKind.COUPON)
            | Exists(RewardCode.objects.filter(reward=OuterRef("pk"), redemption__isnull=True))
        )
        .select_related("min_tier")
        .order_by("points_cost", "name")
    )


def export_points(member: Member) -> dict:
    """The member's points for their data export: balance, tier and the whole ledger."""
    account = PointsAccount.objects.select_related("tier").filter(member_id=member.pk).first()
    return {
        "balance": account.balance if account else 0,
        "pending": account.pending if account else 0,
        "lifetime_earned": account.lifetime_earned if account else 0,
        "tier": account.tier.name if account and account.tier_id else None,
        "transactions": [
            {
                "created_at": t.created_at.isoformat(),
                "kind": t.kind,
                "points": t.points,
                "pending_points": t.pending_points,
                "balance_after": t.balance_after,
                "reason": t.reason,
                "source": t.source,
                "source_ref": t.source_ref,
            }
            for t in PointsTransaction.objects.filter(member_id=member.pk).order_by("id")
        ],
    }


@dataclass
class ReferralRow:
    """One friend a member referred, as the member may see it (first name only)."""

    friend: str
    joined_at: datetime
    status: str
    status_label: str
    reason: str
    qualified_at: datetime | None


def member_referrals(member: Member) -> list[ReferralRow]:
    """The members who enrolled with this member's code and where each referral stands.

    A referral row is written at the referee's first purchase; until then it is pending.
    """
    from .models import Referral, ReferralStatus

    referees = list(
        Member.objects.filter(referred_by_id=member.pk)
        .order_by("-enrolled_at", "-id")
        .values("pk", "first_name", "last_name", "enrolled_at")
    )
    rows = {
        r.referee_id: r for r in Referral.objects.filter(referee_id__in=[m["pk"] for m in referees])
    }
    out = []
    for referee in referees:
        referral = rows.get(referee["pk"])
        status = referral.status if referral else ReferralStatus.PENDING
        initial = f" {referee['last_name'][:1]}." if referee["last_name"] else ""
        out.append(
            ReferralRow(
                friend=(referee["first_name"] or "A friend") + initial,
                joined_at=referee["enrolled_at"],
                status=status,
                status_label=ReferralStatus(status).label,
                reason=referral.reason if referral else "",
                qualified_at=referral.qualified_at if referral else None,
            )
        )
    return out
