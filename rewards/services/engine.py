"""The earning engine: turns an event into points by the program's earning rules.

Base points come from purchase rules (money × points per unit) and fixed rules (points per
event type). Among matching non-stackable rules of one kind only the highest priority one
applies; stackable ones all do. Multipliers (rules, the member's tier, a paid plan) each add
base × (factor − 1). Per-member limits (per day, week, month in the program's timezone, and
lifetime; by count or by points) cap each rule. The journeys app calls award_for_event for
every event it ingests.
"""

import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from members.models import Member

from .. import registry
from ..models import (
    EarningRule,
    EarningRuleKind,
    MembershipPlan,
    PointsAccount,
    PointsTransaction,
    ProgramSettings,
    Purchase,
    Rounding,
    RuleAward,
    Subscription,
    TierBasis,
    TransactionKind,
)
from ..selectors import benefit_subscription, program_settings
from . import clock, config_cache, ledger
from . import sql as statements
from .inserts import defer_row
from .tiers import tiers_for_upgrade, upgrade_after_earning

logger = logging.getLogger(__name__)

PURCHASE = "purchase"
ROUNDING_MODES = {Rounding.DOWN: ROUND_DOWN, Rounding.NEAREST: ROUND_HALF_UP, Rounding.UP: ROUND_UP}
LIMIT_PERIODS = ("day", "week", "month", "lifetime")


@dataclass(frozen=True)
class EventInput:
    event_type: str
    occurred_at: datetime | None = None
    amount: Decimal | None = None
    currency: str = ""
    channel: str = ""
    touchpoint: str = ""
    order_id: str = ""
    properties: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AwardLine:
    rule_id: int | None
    rule_name: str
    points: int
    note: str = ""

    def as_dict(self) -> dict:
        """dataclasses.asdict's answer, without its deep copies (every event answer has one
        per line)."""
        return {
            "rule_id": self.rule_id,
            "rule_name": self.rule_name,
            "points": self.points,
            "note": self.note,
        }


@dataclass
class Award:
    points: int
    lines: list[AwardLine] = field(default_factory=list)
    transaction: PointsTransaction | None = None


def to_points(value: Decimal, settings_row: ProgramSettings) -> int:
    """Money-derived points as a whole number, rounded as the program says."""
    return int(
        Decimal(value).quantize(Decimal("1"), rounding=ROUNDING_MODES[settings_row.rounding])
    )


# -- matching --------------------------------------------------------------------------------


def _items(event: EventInput) -> list[dict]:
    items = event.properties.get("items") if event.properties else None
    return items if isinstance(items, list) else []


def _product_matches(rule: EarningRule, record: dict) -> bool:
    if rule.product_category and str(record.get("category", "")) != rule.product_category:
        return False
    return not (rule.sku and str(record.get("sku", "")) != rule.sku)


def _matching_amount(rule: EarningRule, event: EventInput) -> Decimal | None:
    """The part of the purchase the rule applies to, or None when it does not apply."""
    if not (rule.product_category or rule.sku):
        return event.amount
    items = _items(event)
    if items:
        matched = [i for i in items if isinstance(i, dict) and _product_matches(rule, i)]
        if not matched:
            return None
        total = Decimal("0")
        for item in matched:
            price = Decimal(str(item.get("amount", "0")))
            total += price * Decimal(str(item.get("quantity", 1)))
        return total
    return event.amount if _product_matches(rule, event.properties or {}) else None


def _common_filters(rule: EarningRule, event: EventInput, when: datetime) -> bool:
    if rule.active_from and when < rule.active_from:
        return False
    if rule.active_until and when >= rule.active_until:
        return False
    if rule.channel and rule.channel != event.channel:
        return False
    return not (rule.touchpoint and rule.touchpoint != event.touchpoint)


def _base_points(
    rule: EarningRule, event: EventInput, settings_row: ProgramSettings
) -> tuple[int, str] | None:
    """(points, note) when a purchase or fixed rule matches the event, else None."""
    if rule.kind == EarningRuleKind.PURCHASE:
        if event.event_type != (rule.event_type or PURCHASE) or event.amount is None:
            return None
        if event.currency and event.currency.upper() != settings_row.currency:
            return None
        amount = _matching_amount(rule, event)
        if amount is None or amount <= 0:
            return None
        if rule.min_amount is not None and amount < rule.min_amount:
            return None
        points = to_points(amount * rule.points_per_unit, settings_row)
        return points, f"{amount} {settings_row.currency} × {rule.points_per_unit.normalize()}"
    if rule.kind == EarningRuleKind.FIXED:
        if rule.event_type != event.event_type:
            return None
        if (rule.product_category or rule.sku) and _matching_amount(rule, event) is None:
            return None
        return rule.points, event.event_type
    return None


def _multiplier_matches(
    rule: EarningRule, event: EventInput, tier, subscription: Subscription | None
) -> bool:
    if rule.event_type and rule.event_type != event.event_type:
        return False
    if rule.tier_id and (tier is None or tier.rank < rule.tier.rank):
        return False
    if rule.plan_id and (subscription is None or subscription.plan_id != rule.plan_id):
        return False
    return not ((rule.product_category or rule.sku) and _matching_amount(rule, event) is None)


def _pick(candidates: list[tuple[EarningRule, int, str]]) -> list[tuple[EarningRule, int, str]]:
    """All stackable candidates, plus the highest-priority non-stackable one per kind."""
    chosen = [c for c in candidates if c[0].stackable]
    best: dict[str, tuple[EarningRule, int, str]] = {}
    for cand in candidates:
        rule = cand[0]
        if rule.stackable:
            continue
        current = best.get(rule.kind)
        if current is None or (rule.priority, -rule.pk) > (current[0].priority, -current[0].pk):
            best[rule.kind] = cand
    chosen.extend(best.values())
    return sorted(chosen, key=lambda c: (-c[0].priority, c[0].pk))


# -- limits ----------------------------------------------------------------------------------


def _has_limits(rule: EarningRule) -> bool:
    return any(
        getattr(rule, f"max_{what}_{period}") is not None
        for what in ("count", "points")
        for period in ("per_day", "per_week", "per_month", "lifetime")
    )


def _limits_used(rules: list[EarningRule], member: Member, when: datetime, zone) -> dict:
    """What each limited rule already gave the member per period, in one query."""
    limited = [rule.pk for rule in rules if _has_limits(rule)]
    if not limited:
        return {}
    starts = {
        "per_day": clock.start_of_day(when, zone),
        "per_week": clock.start_of_week(when, zone),
        "per_month": clock.start_of_month(when, zone),
    }
    aggregates = {}
    for period, start in starts.items():
        in_period = Q(awarded_at__gte=start)
        aggregates[f"count_{period}"] = Count("id", filter=in_period)
        aggregates[f"points_{period}"] = Sum("points", filter=in_period)
    aggregates["count_lifetime"] = Count("id")
    aggregates["points_lifetime"] = Sum("points")
    used = {
        row.pop("rule_id"): row
        for row in RuleAward.objects.filter(rule_id__in=limited, member_id=member.pk)
        .values("rule_id")
        .annotate(**aggregates)
        .order_by()
    }
    return {pk: used.get(pk, {}) for pk in limited}


def _limit_room(rule: EarningRule, used: dict | None) -> tuple[int | None, str]:
    """Points the rule may still give the member (None = no limit), and why it is capped."""
    if used is None:
        return None, ""
    room: int | None = None
    reason = ""
    labels = {"per_day": "daily", "per_week": "weekly", "per_month": "monthly", "lifetime": ""}
    for period in ("per_day", "per_week", "per_month", "lifetime"):
        label = labels[period] or "lifetime"
        max_count = getattr(rule, f"max_count_{period}")
        if max_count is not None and (used.get(f"count_{period}") or 0) >= max_count:
            return 0, f"{label} limit of {max_count} reached"
        max_points = getattr(rule, f"max_points_{period}")
        if max_points is not None:
            left = max(0, max_points - (used.get(f"points_{period}") or 0))
            if room is None or left < room:
                room, reason = left, f"{label} limit of {max_points} points"
    return room, reason


def _capped_lines(chosen, member, when, zone) -> list[AwardLine]:
    used = _limits_used([rule for rule, _, _ in chosen], member, when, zone)
    lines = []
    for rule, points, note in chosen:
        room, why = _limit_room(rule, used.get(rule.pk))
        if room is not None and points > room:
            note = f"{note}; {why}" if room else why
            points = room
        lines.append(AwardLine(rule_id=rule.pk, rule_name=rule.name, points=points, note=note))
    return lines


# -- evaluation ------------------------------------------------------------------------------


_UNSET = object()


def _evaluate(
    member: Member,
    event: EventInput,
    account: PointsAccount | None,
    settings_row: ProgramSettings | None = None,
    *,
    rules: list[EarningRule] | None = None,
    subscription=_UNSET,
    offers=None,
) -> list[AwardLine]:
    """The award's lines. A caller evaluating many events (rewards.services.bulk) passes the
    active rules, the member's benefit subscription and an offers function it has loaded
    once; otherwise each is read here."""
    settings_row = settings_row or program_settings()
    zone = clock.program_zone(settings_row)
    when = event.occurred_at or timezone.now()
    # Only rules for this event type or for any type can match (see _base_points and
    # _multiplier_matches); the rest of the filters are checked here.
    if rules is None:
        rules = EarningRule.objects.filter(
            is_active=True, event_type__in=[event.event_type, ""]
        ).select_related("tier")
    rules = [
        r
        for r in rules
        if r.event_type in (event.event_type, "") and _common_filters(r, event, when)
    ]
    tier = account.tier if account is not None and account.tier_id else None

    candidates = []
    for rule in rules:
        if rule.kind == EarningRuleKind.MULTIPLIER:
            continue
        matched = _base_points(rule, event, settings_row)
        if matched is not None and matched[0] > 0:
            candidates.append((rule, *matched))
    lines = _capped_lines(_pick(candidates), member, when, zone)
    base = sum(line.points for line in lines)
    if base <= 0:
        return lines

    if subscription is _UNSET:
        subscription = benefit_subscription(member)
    multipliers = [
        (rule, to_points(base * (rule.factor - 1), settings_row), f"×{rule.factor.normalize()}")
        for rule in rules
        if rule.kind == EarningRuleKind.MULTIPLIER
        and rule.factor > 1
        and _multiplier_matches(rule, event, tier, subscription)
    ]
    lines += _capped_lines(
        [(rule, pts, note) for rule, pts, note in _pick(multipliers) if pts > 0], member, when, zone
    )
    if tier is not None and tier.earn_multiplier > 1:
        extra = to_points(base * (tier.earn_multiplier - 1), settings_row)
        if extra > 0:
            note = f"×{tier.earn_multiplier.normalize()}"
            lines.append(AwardLine(None, f"{tier.name} tier bonus", extra, note))
    if subscription is not None and subscription.plan.earn_multiplier > 1:
        plan = subscription.plan
        extra = to_points(base * (plan.earn_multiplier - 1), settings_row)
        if extra > 0:
            note = f"×{plan.earn_multiplier.normalize()}"
            lines.append(AwardLine(None, f"{plan.name} plan bonus", extra, note))
    extras = (offers or registry.extra_multipliers)(member.pk, event, when)
    for offer in extras:  # e.g. campaign offers
        extra = offer.capped(to_points(base * (offer.factor - 1), settings_row))
        if extra > 0:
            lines.append(AwardLine(None, offer.label, extra, f"×{offer.factor.normalize()}"))
    return lines


def _award_from_transaction(txn: PointsTransaction) -> Award:
    lines = [AwardLine(**line) for line in txn.breakdown.get("lines", [])]
    return Award(points=txn.points + txn.pending_points, lines=lines, transaction=txn)


def award_for_event(
    *,
    member: Member,
    event: EventInput,
    idempotency_key: str,
    dry_run: bool = False,
    settings_row: ProgramSettings | None = None,
    savepoint: bool = True,
) -> Award:
    """Award the points an event earns, in one transaction; the same key returns the first
    award. A dry run computes the same award and writes nothing. A caller that has read the
    program settings already passes them. A caller inside its own transaction that handles a
    race on the key itself (the journeys app: its event key is unique too) passes
    savepoint=False: no savepoint round trips, and the IntegrityError of a lost race reaches
    the caller."""
    if dry_run:
        account = PointsAccount.objects.select_related("tier").filter(member_id=member.pk).first()
        lines = _evaluate(member, event, account) if member.is_active else []
        return Award(points=sum(line.points for line in lines), lines=lines)
    if not idempotency_key:
        raise ValueError("An idempotency key is required.")
    if not member.is_active:
        found = PointsTransaction.objects.filter(idempotency_key=idempotency_key).first()
        if found is not None:
            return _award_from_transaction(found)
        return Award(0, [AwardLine(None, "Member not active", 0, member.status)])
    if not savepoint and connection.in_atomic_block:
        return _award_locked(member, event, idempotency_key, settings_row)
    try:
        with transaction.atomic():
            return _award_locked(member, event, idempotency_key, settings_row)
    except IntegrityError:
        # Only a concurrent request with the same key for another member gets here (one
        # member's requests queue on the account lock and see each other's result).
        found = PointsTransaction.objects.filter(idempotency_key=idempotency_key).first()
        if found is None:
            raise
        return _award_from_transaction(found)


def _award_locked(
    member: Member, event: EventInput, idempotency_key: str, settings_row: ProgramSettings | None
) -> Award:
    settings_row = settings_row or program_settings()
    version = settings_row.updated_at
    is_purchase = event.event_type == PURCHASE and event.amount is not None
    tiers = config_cache.get("tiers", version, tiers_for_upgrade)
    locked = _lock(member, idempotency_key, event.order_id, tiers)
    if locked.recorded is not None:
        return _award_from_transaction(PointsTransaction.objects.get(pk=locked.recorded))
    account = locked.account
    when = event.occurred_at or timezone.now()
    first_purchase = False
    if is_purchase:
        if event.order_id and locked.order_seen:
            return Award(0, [AwardLine(None, "Order already recorded", 0, event.order_id)])
        first_purchase = not locked.bought_before
    rules = config_cache.get("earning_rules", version, _active_rules)
    plans_matter = config_cache.get("plan_multipliers", version, _plans_multiply) or any(
        rule.plan_id for rule in rules
    )
    lines = _evaluate(
        member,
        event,
        account,
        settings_row,
        rules=rules,
        subscription=_UNSET if plans_matter else None,
    )
    points = sum(line.points for line in lines)
    if is_purchase:  # written with the next statement (the ledger row's, when it earns)
        defer_row(
            Purchase,
            member_id=member.pk,
            order_id=event.order_id,
            amount=event.amount,
            currency=(event.currency or settings_row.currency).upper(),
            channel=event.channel,
            occurred_at=when,
            points=points,
        )
    spend_tiers = is_purchase and settings_row.tier_basis == TierBasis.SPEND
    txn = None
    if points > 0:
        txn = ledger.earn(
            account,
            settings_row=settings_row,
            points=points,
            reason=_reason(event),
            idempotency_key=idempotency_key,
            source=f"event:{event.event_type}"[:50],
            source_ref=event.order_id,
            occurred_at=when,
            breakdown=_breakdown(event, lines),
            tiers=tiers,
            transaction_id=locked.next_id,
        )
        for line in lines:
            if line.rule_id is not None and line.points > 0:
                defer_row(
                    RuleAward,
                    rule_id=line.rule_id,
                    member_id=member.pk,
                    transaction_id=txn.pk,
                    points=line.points,
                    awarded_at=when,
                )
        registry.notify_award(member_id=member.pk, transaction=txn, lines=lines)
    if spend_tiers:
        upgrade_after_earning(
            account=account, as_of=timezone.now(), settings_row=settings_row, tiers=tiers
        )
    if first_purchase and member.referred_by_id:
        from .referrals import qualify_referral_on_first_purchase

        qualify_referral_on_first_purchase(member=member)
    return Award(points=points, lines=lines, transaction=txn)


@dataclass
class _Locked:
    account: PointsAccount
    recorded: int | None  # the id of the transaction already recorded under the key
    bought_before: bool
    order_seen: bool
    next_id: int | None  # the id of the ledger row this award may write


def _lock(member: Member, idempotency_key: str, order_id: str, tiers) -> _Locked:
    """The member's points account locked until the transaction ends (created if missing),
    with, in the same statement, whether the key was used and whether the member bought before
    (and this order). The reads see the database as it was when the statement began: a
    concurrent award committed while this one waited for the lock is not seen, but then the
    unique key or order of the ledger row or purchase written next fails, and the caller
    answers with the first result."""
    params = {"member": member.pk, "key": idempotency_key, "order": order_id}
    sql = _lock_sql()
    row = statements.fetchone(sql, params)
    if row is None:  # a member's first earning: the account goes with the statement again
        defer_row(PointsAccount, if_missing=True, member_id=member.pk)
        row = statements.fetchone(sql, params)
    account = PointsAccount.from_db(connection.alias, _ACCOUNT_FIELDS, row[: len(_ACCOUNT_FIELDS)])
    if account.tier_id is not None:
        tier = next((t for t in tiers if t.pk == account.tier_id), None)
        if tier is not None:  # else read when asked for
            account.tier = tier
    recorded, bought_before, order_seen, next_id = row[len(_ACCOUNT_FIELDS) :]
    return _Locked(account, recorded, bought_before, order_seen, next_id)


_ACCOUNT_FIELDS = [field.attname for field in PointsAccount._meta.concrete_fields]


@functools.cache
def _lock_sql() -> str:
    """The statement of _lock; it also draws the id the award's ledger row will have (a
    sequence's numbers are never given twice; unused ones leave gaps)."""
    if connection.vendor == "postgresql":
        next_id = f"nextval('{statements.sequence(PointsTransaction._meta.db_table)}')"
    else:
        next_id = "NULL"
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return f"""SELECT {", ".join(f.column for f in PointsAccount._meta.concrete_fields)},
    (SELECT id FROM {PointsTransaction._meta.db_table} WHERE idempotency_key = %(key)s),
    EXISTS (SELECT 1 FROM {Purchase._meta.db_table} WHERE member_id = %(member)s),
    EXISTS (SELECT 1 FROM {Purchase._meta.db_table}
            WHERE member_id = %(member)s AND order_id = %(order)s),
    {next_id}
FROM {PointsAccount._meta.db_table} WHERE member_id = %(member)s{lock}"""  # noqa: S608


def _active_rules() -> list[EarningRule]:
    return list(EarningRule.objects.filter(is_active=True).select_related("tier"))


def _plans_multiply() -> bool:
    """Whether some plan multiplies earnings (else a member's subscription cannot matter,
    unless a multiplier rule names a plan)."""
    return MembershipPlan.objects.filter(earn_multiplier__gt=1).exists()


def _breakdown(event: EventInput, lines: list[AwardLine]) -> dict:
    """What an earning transaction records of its event and award (_award_from_transaction
    reads the lines back)."""
    return {
        "event_type": event.event_type,
        "amount": str(event.amount) if event.amount is not None else None,
        "channel": event.channel,
        "touchpoint": event.touchpoint,
        "lines": [line.as_dict() for line in lines],
    }


def _reason(event: EventInput) -> str:
    if event.event_type == PURCHASE:
        return f"Purchase {event.order_id}".strip()
    return event.event_type.replace("_", " ").capitalize()


def simulate_award(*, member: Member, event: EventInput) -> Award:
    """What the event would earn now; writes nothing."""
    return award_for_event(member=member, event=event, idempotency_key="", dry_run=True)


def reverse_order(
    *, member: Member, order_id: str, idempotency_key: str, reason: str = "Order refunded"
) -> PointsTransaction | None:
    """A refund: take back every point the order earned. Points already spent cannot be taken
    (the balance never goes negative); the transaction's breakdown records the shortfall.
    Returns the reversal, or None when the order earned nothing."""
    if not order_id:
        raise ValueError("An order id is required.")
    with transaction.atomic():
        ledger.lock_account(member)
        Purchase.objects.filter(
            member_id=member.pk, order_id=order_id, refunded_at__isnull=True
        ).update(refunded_at=timezone.now())
        earlier = PointsTransaction.objects.filter(
            member_id=member.pk, kind=TransactionKind.REVERSE, source="refund", source_ref=order_id
        ).first()
        if earlier is not None:
            return earlier
        earnings = list(
            PointsTransaction.objects.filter(
                member_id=member.pk,
                source_ref=order_id,
                source__startswith="event:",
                kind__in=[TransactionKind.EARN, TransactionKind.PENDING],
            ).order_by("id")
        )
        if not earnings:
            return None
        return ledger.reverse_earnings(
            member=member,
            transactions=earnings,
            reason=reason,
            idempotency_key=idempotency_key,
            source="refund",
            source_ref=order_id,
        )


__all__ = [
    "Award",
    "AwardLine",
    "EventInput",
    "award_for_event",
    "reverse_order",
    "simulate_award",
]
