"""Triggers of always-on campaigns: the members who entered the trigger stage or the segment."""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from analytics.models import SegmentMembership
from journeys.models import StageTransition

from ..models import Campaign, CampaignSend, CampaignStatus, Schedule
from .audience import _add_to_campaign
from .sending import _enqueue

# Triggers re-read this far behind their cursor, so a late-committed stage move or a backdated
# event is not missed; members already in the campaign are skipped (at most once each).
TRIGGER_LOOKBACK = timedelta(days=1)


def run_triggers(*, campaign_id: int, now: datetime | None = None) -> int:
    """Add the members who entered the trigger stage or the segment since the cursor; returns
    how many were added. Each member at most once per campaign, however often they enter."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.status != CampaignStatus.RUNNING or campaign.schedule == Schedule.ONCE:
            return 0
        floor = max(campaign.starts_at, campaign.launched_at or campaign.starts_at)
        since = max(floor, (campaign.trigger_cursor or floor) - TRIGGER_LOOKBACK)
        until = min(now, campaign.ends_at)
        if campaign.schedule == Schedule.STAGE_ENTRY:
            entered = StageTransition.objects.filter(
                to_stage_id=campaign.trigger_stage_id, at__gte=since, at__lte=until
            )
            if campaign.segment_id:
                entered = entered.filter(
                    member_id__in=SegmentMembership.objects.filter(
                        segment_id=campaign.segment_id
                    ).values("member_id")
                )
        else:
            entered = SegmentMembership.objects.filter(
                segment_id=campaign.segment_id, added_at__gte=since, added_at__lte=until
            )
        member_ids = set(entered.values_list("member_id", flat=True))
        pending = _add_to_campaign(campaign, member_ids, trigger=campaign.schedule, now=now)
        added = CampaignSend.objects.filter(campaign=campaign, assigned_at=now).count()
        Campaign.objects.filter(pk=campaign.pk).update(trigger_cursor=until)
        _enqueue(campaign.pk, pending)
    return added
