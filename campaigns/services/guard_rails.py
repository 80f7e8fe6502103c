"""The guard rails, checked when the audience is chosen and again, under a lock on the members,
when each batch is sent: an active member with an email and marketing consent, and no more than
the weekly cap of campaign messages in any 7 days across all campaigns."""

from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import Count

from members.models import MemberStatus

from ..models import CampaignSend, CampaignSettings, SendStatus

CAP_WINDOW = timedelta(days=7)


def campaign_settings() -> CampaignSettings:
    row, _ = CampaignSettings.objects.get_or_create(pk=CampaignSettings.SINGLETON_ID)
    return row


def _recent_sends(member_ids: Iterable[int], now: datetime) -> Counter:
    rows = (
        CampaignSend.objects.filter(
            member_id__in=list(member_ids),
            status=SendStatus.SENT,
            sent_at__gt=now - CAP_WINDOW,
            sent_at__lte=now,
        )
        .values("member_id")
        .annotate(n=Count("id"))
        .values_list("member_id", "n")
    )
    return Counter(dict(rows))


def _exclusion(member: dict, sent: int, cap: int) -> str | None:
    if member["status"] != MemberStatus.ACTIVE or not member["email"]:
        return SendStatus.NO_ADDRESS
    if not member["marketing_consent"]:
        return SendStatus.NO_CONSENT
    if sent >= cap:
        return SendStatus.CAPPED
    return None
