"""Referrals: a member enrolled with someone's referral code; both earn points when the new
member makes a first purchase, unless it is the same person or the referrer's monthly cap is
reached."""

import logging
import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from members.models import Member

from ..models import Referral, ReferralStatus
from ..selectors import program_settings
from . import clock, ledger

logger = logging.getLogger(__name__)


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone or "")


def self_referral_reason(referrer: Member, referee: Member) -> str:
    """Why the two members look like one person, or '' when they do not."""
    if referrer.pk == referee.pk:
        return "self-referral: same member"
    if referrer.email and referee.email and referrer.email.lower() == referee.email.lower():
        return "self-referral: same email"
    phone_a, phone_b = _digits(referrer.phone), _digits(referee.phone)
    if len(phone_a) >= 6 and phone_a == phone_b:
        return "self-referral: same phone"
    if referrer.external_id and referrer.external_id == referee.external_id:
        return "self-referral: same external id"
    return ""


def record_referral(*, referee: Member) -> Referral | None:
    """The referral for a member who enrolled with a referral code (created on first call)."""
    if not referee.referred_by_id:
        return None
    existing = Referral.objects.filter(referee_id=referee.pk).first()
    if existing is not None:
        return existing
    referrer = Member.objects.get(pk=referee.referred_by_id)
    reason = self_referral_reason(referrer, referee)
    try:
        with transaction.atomic():
            return Referral.objects.create(
                referrer=referrer,
                referee=referee,
                status=ReferralStatus.REJECTED if reason else ReferralStatus.PENDING,
                reason=reason,
                created_at=referee.enrolled_at or timezone.now(),
            )
    except IntegrityError:
        return Referral.objects.get(referee_id=referee.pk)


def qualify_referral_on_first_purchase(*, member: Member) -> Referral | None:
    """Reward referrer and referee for the referee's first purchase; at most once."""
    with transaction.atomic():
        referral = record_referral(referee=member)
        if referral is None:
            return None
        referral = Referral.objects.select_for_update().get(pk=referral.pk)
        if referral.status != ReferralStatus.PENDING:
            return referral
        referrer = referral.referrer
        settings_row = program_settings()
        ledger.lock_account(referrer)  # serialises the referrer's cap check
        now = timezone.now()
        month_start = clock.start_of_month(now, clock.program_zone(settings_row))
        rewarded_this_month = Referral.objects.filter(
            referrer=referrer, status=ReferralStatus.QUALIFIED, qualified_at__gte=month_start
        ).count()
        if not referrer.is_active:
            referral.status, referral.reason = ReferralStatus.REJECTED, "referrer not active"
        elif rewarded_this_month >= settings_row.referral_monthly_cap:
            referral.status = ReferralStatus.REJECTED
            referral.reason = f"monthly cap of {settings_row.referral_monthly_cap} reached"
        else:
            referral.status, referral.qualified_at = ReferralStatus.QUALIFIED, now
            for who, points, role in (
                (referrer, settings_row.referrer_points, "referrer"),
                (member, settings_row.referee_points, "referee"),
            ):
                if points:
                    ledger.award_points(
                        member=who,
                        points=points,
                        reason=f"Referral bonus ({role})",
                        idempotency_key=f"referral:{referral.pk}:{role}",
                        source="referral",
                        source_ref=str(referral.pk),
                    )
        referral.save(update_fields=["status", "reason", "qualified_at"])
        logger.info("referral %s: %s %s", referral.pk, referral.status, referral.reason)
        return referral
