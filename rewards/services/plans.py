"""Paid membership plans: subscribe, renew, cancel, and the nightly lapse of unpaid periods.

Lifecycle: trialing → active (first payment) → active (renewals) → past_due (period ended
unpaid) → expired (after the grace days), or cancelled at the end of a period the member
chose not to renew. Every status change is a SubscriptionEvent.
"""

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from members.exceptions import MemberNotActive
from members.models import Member

from ..exceptions import AlreadySubscribed, PlanUnavailable, SubscriptionNotLive
from ..models import (
    LIVE_SUBSCRIPTION_STATUSES,
    MembershipPlan,
    Subscription,
    SubscriptionEvent,
    SubscriptionPayment,
    SubscriptionStatus,
)
from ..selectors import program_settings
from . import clock, ledger
from .tiers import upgrade_if_qualified

logger = logging.getLogger(__name__)


def _event(sub: Subscription, from_status: str, at: datetime, note: str = "") -> None:
    SubscriptionEvent.objects.create(
        subscription=sub,
        member_id=sub.member_id,
        from_status=from_status,
        to_status=sub.status,
        occurred_at=at,
        note=note,
    )


def _period_end(start: datetime, plan: MembershipPlan) -> datetime:
    zone = clock.program_zone(program_settings())
    return clock.add_months_local(start, plan.billing_period_months, zone)


def subscribe(
    *,
    member: Member,
    plan: MembershipPlan,
    at: datetime | None = None,
    payment_ref: str = "",
    amount: Decimal | None = None,
) -> Subscription:
    """Start a subscription: a trial when the plan has trial days, otherwise a paid first
    period (pass the checkout's payment_ref to record that payment)."""
    at = at or timezone.now()
    if not plan.is_active:
        raise PlanUnavailable(plan=plan.pk)
    if not member.is_active:
        raise MemberNotActive()
    try:
        with transaction.atomic():
            account = ledger.lock_account(member)
            if Subscription.objects.filter(
                member_id=member.pk, status__in=LIVE_SUBSCRIPTION_STATUSES
            ).exists():
                raise AlreadySubscribed()
            trial = plan.trial_days > 0
            sub = Subscription.objects.create(
                member=member,
                plan=plan,
                status=SubscriptionStatus.TRIALING if trial else SubscriptionStatus.ACTIVE,
                current_period_start=at,
                current_period_end=at + timedelta(days=plan.trial_days)
                if trial
                else _period_end(at, plan),
                started_at=at,
            )
            _event(sub, "", at, "trial started" if trial else "subscribed")
            if payment_ref and not trial:
                SubscriptionPayment.objects.create(
                    subscription=sub,
                    amount=plan.price if amount is None else amount,
                    currency=plan.currency,
                    paid_at=at,
                    payment_ref=payment_ref,
                    period_start=sub.current_period_start,
                    period_end=sub.current_period_end,
                )
            upgrade_if_qualified(account=account, as_of=at)
    except IntegrityError as exc:
        if "one_live_subscription_per_member" in str(exc):
            raise AlreadySubscribed() from exc
        raise
    logger.info("member %s subscribed to %s", member.pk, plan)
    return sub


def record_renewal(
    *, subscription: Subscription, amount: Decimal, paid_at: datetime, payment_ref: str
) -> SubscriptionPayment:
    """A paid period: extends the subscription by one billing period from the end of the
    current one (or from the payment, when it comes after that end), makes it active, and
    awards the plan's renewal bonus for every payment after the first. Idempotent on
    payment_ref."""
    if not payment_ref:
        raise ValueError("A payment reference is required.")
    found = SubscriptionPayment.objects.filter(payment_ref=payment_ref).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return _renew(subscription, Decimal(amount), paid_at, payment_ref)
    except IntegrityError:
        found = SubscriptionPayment.objects.filter(payment_ref=payment_ref).first()
        if found is None:
            raise
        return found


def _renew(subscription, amount, paid_at, payment_ref) -> SubscriptionPayment:
    account = ledger.lock_account(subscription.member)
    sub = Subscription.objects.select_for_update().select_related("plan").get(pk=subscription.pk)
    found = SubscriptionPayment.objects.filter(payment_ref=payment_ref).first()
    if found is not None:
        return found
    if not sub.is_live:
        raise SubscriptionNotLive(subscription=sub.pk, status=sub.status)
    plan = sub.plan
    start = sub.current_period_end if paid_at <= sub.current_period_end else paid_at
    end = _period_end(start, plan)
    is_renewal = sub.payments.exists()
    payment = SubscriptionPayment.objects.create(
        subscription=sub,
        amount=amount,
        currency=plan.currency,
        paid_at=paid_at,
        payment_ref=payment_ref,
        period_start=start,
        period_end=end,
    )
    previous = sub.status
    sub.status = SubscriptionStatus.ACTIVE
    sub.current_period_start, sub.current_period_end = start, end
    sub.save(update_fields=["status", "current_period_start", "current_period_end"])
    if previous != sub.status:
        _event(sub, previous, paid_at, f"paid {payment_ref}")
    if is_renewal and plan.renewal_bonus_points:
        payment.bonus_transaction = ledger.award_points(
            member=sub.member,
            points=plan.renewal_bonus_points,
            reason=f"{plan.name} renewal bonus",
            idempotency_key=f"plan-renewal:{payment_ref}",
            source="plan",
            source_ref=payment_ref,
            qualifying=False,
        )
        payment.save(update_fields=["bonus_transaction"])
    upgrade_if_qualified(account=account, as_of=paid_at)
    return payment


def cancel_subscription(
    *, subscription: Subscription, at_period_end: bool = True, at: datetime | None = None
) -> Subscription:
    """Cancel now, or (the default) let the paid period run out and end then."""
    at = at or timezone.now()
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if not sub.is_live:
            raise SubscriptionNotLive(subscription=sub.pk, status=sub.status)
        if at_period_end:
            if not sub.cancel_at_period_end:
                sub.cancel_at_period_end = True
                sub.save(update_fields=["cancel_at_period_end"])
                _event(sub, sub.status, at, "cancellation requested for period end")
            return sub
        previous = sub.status
        sub.status = SubscriptionStatus.CANCELLED
        sub.ended_at = at
        sub.save(update_fields=["status", "ended_at"])
        _event(sub, previous, at, "cancelled")
    return sub


def resume_subscription(*, subscription: Subscription, at: datetime | None = None) -> Subscription:
    """Withdraw a cancellation requested for the period end."""
    at = at or timezone.now()
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if not sub.is_live:
            raise SubscriptionNotLive(subscription=sub.pk, status=sub.status)
        if sub.cancel_at_period_end:
            sub.cancel_at_period_end = False
            sub.save(update_fields=["cancel_at_period_end"])
            _event(sub, sub.status, at, "cancellation withdrawn")
    return sub


def lapse_subscriptions(*, as_of: datetime | None = None) -> dict[str, int]:
    """Move subscriptions whose period ended: cancelled at period end → cancelled, unpaid
    trial → expired, unpaid active → past_due, past_due beyond the grace days → expired.
    Safe to run twice."""
    as_of = as_of or timezone.now()
    grace = timedelta(days=program_settings().subscription_grace_days)
    counts = {"cancelled": 0, "past_due": 0, "expired": 0}
    live = Subscription.objects.filter(
        status__in=LIVE_SUBSCRIPTION_STATUSES, current_period_end__lte=as_of
    )
    for sub_id in live.values_list("id", flat=True):
        moved = _move(sub_id, as_of, grace)
        while moved:
            counts[moved] += 1
            moved = _move(sub_id, as_of, grace)
    logger.info("subscriptions lapsed as of %s: %s", as_of.isoformat(), counts)
    return counts


def _move(sub_id: int, as_of: datetime, grace: timedelta) -> str | None:
    """One step of the lapse for one subscription; returns the new status or None."""
    with transaction.atomic():
        sub = Subscription.objects.select_for_update().get(pk=sub_id)
        end = sub.current_period_end
        if not sub.is_live or end > as_of:
            return None
        previous = sub.status
        if sub.cancel_at_period_end:
            sub.status, sub.ended_at, note = SubscriptionStatus.CANCELLED, end, "period ended"
        elif sub.status == SubscriptionStatus.TRIALING:
            sub.status, sub.ended_at, note = SubscriptionStatus.EXPIRED, end, "trial ended unpaid"
        elif sub.status == SubscriptionStatus.ACTIVE:
            sub.status, note = SubscriptionStatus.PAST_DUE, "period ended unpaid"
        elif end + grace <= as_of:
            sub.status, sub.ended_at, note = SubscriptionStatus.EXPIRED, end + grace, "grace over"
        else:
            return None
        sub.save(update_fields=["status", "ended_at"])
        _event(sub, previous, sub.ended_at or end, note)
        return sub.status
