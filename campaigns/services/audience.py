"""Choosing a campaign's audience: the segment's members, each in a stable random group
(treatment or the control holdout), each at most once per campaign (a unique constraint)."""

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from analytics.models import SegmentMembership
from members.models import Member

from ..models import Campaign, CampaignSend, Group, SendStatus
from .guard_rails import _exclusion, _recent_sends, campaign_settings

HASH_SPACE = 2**64
ADD_CHUNK = 5000  # members classified and inserted per statement group


def in_control_group(campaign_id: int, member_id: int, share: Decimal) -> bool:
    """Random but stable: the same member is always in the same group of a campaign. The first
    64 bits of SHA-256("campaign:<id>:member:<id>") as a uniform number in [0, 1)."""
    digest = hashlib.sha256(f"campaign:{campaign_id}:member:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < int(Decimal(share) * HASH_SPACE)


def group_for(campaign: Campaign, member_id: int) -> str:
    control = in_control_group(campaign.pk, member_id, campaign.control_share)
    return Group.CONTROL if control else Group.TREATMENT


def _classify(campaign: Campaign, member_ids: list[int], now: datetime) -> dict[int, str]:
    """member id -> status the member would get now: pending, held out or an exclusion."""
    cap = campaign_settings().weekly_message_cap
    members = Member.objects.filter(pk__in=member_ids).values(
        "pk", "status", "email", "marketing_consent"
    )
    sent = _recent_sends(member_ids, now)
    out = {}
    for member in members:
        excluded = _exclusion(member, sent[member["pk"]], cap)
        if excluded:
            out[member["pk"]] = excluded
        elif group_for(campaign, member["pk"]) == Group.CONTROL:
            out[member["pk"]] = SendStatus.HELD_OUT
        else:
            out[member["pk"]] = SendStatus.PENDING
    return out


@dataclass(frozen=True)
class AudienceCount:
    segment_members: int
    treatment: int
    control: int
    no_consent: int
    capped: int
    no_address: int
    already_in_campaign: int

    @property
    def excluded(self) -> int:
        return self.no_consent + self.capped + self.no_address


def audience_member_ids(campaign: Campaign) -> list[int]:
    if campaign.segment_id is None:
        return []
    return list(
        SegmentMembership.objects.filter(segment_id=campaign.segment_id).values_list(
            "member_id", flat=True
        )
    )


def count_audience(campaign: Campaign, *, now: datetime | None = None) -> AudienceCount:
    """Who a launch now would reach: treatment, control and the exclusions, from the segment's
    last refresh. Always-on campaigns: the segment's current members, for scale."""
    now = now or timezone.now()
    ids = audience_member_ids(campaign)
    already = _already_in(campaign, ids)
    new_ids = sorted(i for i in ids if i not in already)
    counts: Counter = Counter()
    for chunk in _chunks(new_ids):
        counts.update(_classify(campaign, chunk, now).values())
    return AudienceCount(
        segment_members=len(ids),
        treatment=counts[SendStatus.PENDING],
        control=counts[SendStatus.HELD_OUT],
        no_consent=counts[SendStatus.NO_CONSENT],
        capped=counts[SendStatus.CAPPED],
        no_address=counts[SendStatus.NO_ADDRESS],
        already_in_campaign=len(already),
    )


def _add_to_campaign(
    campaign: Campaign, member_ids: Iterable[int], *, trigger: str, now: datetime
) -> list[int]:
    """Record each new member with group and status, a chunk of members at a time; returns
    the new pending sends' ids."""
    pending: list[int] = []
    for chunk in _chunks(sorted(set(member_ids))):
        pending += _add_chunk(campaign, chunk, trigger, now)
    return pending


def _chunks(member_ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(member_ids), ADD_CHUNK):
        yield member_ids[start : start + ADD_CHUNK]


def _already_in(campaign: Campaign, member_ids: Iterable[int]) -> set[int]:
    """Which of the members the campaign already has (in any group or status)."""
    return set(
        CampaignSend.objects.filter(campaign=campaign, member_id__in=member_ids).values_list(
            "member_id", flat=True
        )
    )


def _add_chunk(campaign: Campaign, member_ids: list[int], trigger: str, now: datetime) -> list[int]:
    known = _already_in(campaign, member_ids)
    new_ids = [pk for pk in member_ids if pk not in known]
    statuses = _classify(campaign, new_ids, now)
    CampaignSend.objects.bulk_create(
        [
            CampaignSend(
                campaign=campaign,
                member_id=pk,
                group=group_for(campaign, pk),
                status=status,
                trigger=trigger,
                assigned_at=now,
            )
            for pk, status in statuses.items()
        ],
        batch_size=2000,
        ignore_conflicts=True,  # a concurrent run added the member first: at most once
    )
    return list(
        CampaignSend.objects.filter(
            campaign=campaign, member_id__in=new_ids, status=SendStatus.PENDING, assigned_at=now
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
