"""A campaign's life: launching a draft, starting it when due, cancelling, completing."""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..exceptions import CampaignEnded, CampaignIncomplete, CampaignNotDraft
from ..models import Campaign, CampaignStatus, OfferKind, Schedule
from .audience import _add_to_campaign, audience_member_ids
from .sending import _enqueue
from .triggers import run_triggers

logger = logging.getLogger(__name__)


def _check_complete(campaign: Campaign) -> None:
    problems = []
    if campaign.schedule != Schedule.STAGE_ENTRY and campaign.segment_id is None:
        problems.append("a target segment")
    if campaign.schedule == Schedule.STAGE_ENTRY and campaign.trigger_stage_id is None:
        problems.append("the journey stage that triggers it")
    if campaign.offer_kind == OfferKind.MULTIPLIER and not campaign.multiplier:
        problems.append("the multiplier")
    if campaign.offer_kind == OfferKind.BONUS and not campaign.bonus_points:
        problems.append("the bonus points")
    if campaign.offer_kind == OfferKind.REWARD and campaign.reward_id is None:
        problems.append("the reward")
    if problems:
        raise CampaignIncomplete(f"The campaign needs {', '.join(problems)}.", missing=problems)


@transaction.atomic
def launch_campaign(*, campaign: Campaign, actor=None, now: datetime | None = None) -> Campaign:
    """Start a draft: a one-off campaign due now is sent right away (in batches, after commit),
    otherwise it waits for its time; an always-on campaign reacts to entries from now on."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != CampaignStatus.DRAFT:
        raise CampaignNotDraft(status=campaign.status)
    if campaign.ends_at <= now:
        raise CampaignEnded()
    _check_complete(campaign)
    campaign.launched_at = now
    campaign.launched_by = actor
    campaign.trigger_cursor = max(now, campaign.starts_at)
    campaign.status = CampaignStatus.SCHEDULED
    campaign.save(
        update_fields=["launched_at", "launched_by", "trigger_cursor", "status", "updated_at"]
    )
    _start_if_due(campaign, now)
    logger.info("launched campaign %s (%s)", campaign.pk, campaign.status)
    return campaign


def _send_time(campaign: Campaign) -> datetime:
    return max(campaign.send_at or campaign.starts_at, campaign.starts_at)


def _start_if_due(campaign: Campaign, now: datetime) -> None:
    if campaign.status != CampaignStatus.SCHEDULED:
        return
    once = campaign.schedule == Schedule.ONCE
    if (_send_time(campaign) if once else campaign.starts_at) > now:
        return
    campaign.status = CampaignStatus.RUNNING
    campaign.save(update_fields=["status", "updated_at"])
    if once:
        pending = _add_to_campaign(
            campaign, audience_member_ids(campaign), trigger=Schedule.ONCE, now=now
        )
        _enqueue(campaign.pk, pending)


@transaction.atomic
def cancel_campaign(*, campaign: Campaign) -> Campaign:
    """Stop sending and stop the offer; what was sent stays recorded."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED):
        return campaign
    campaign.status = CampaignStatus.CANCELLED
    campaign.save(update_fields=["status", "updated_at"])
    return campaign


def run_due_campaigns(*, now: datetime | None = None) -> dict[str, int]:
    """The scheduler's tick: start what is due, run always-on triggers, complete what ended."""
    now = now or timezone.now()
    completed = Campaign.objects.filter(
        status__in=[CampaignStatus.SCHEDULED, CampaignStatus.RUNNING], ends_at__lte=now
    ).update(status=CampaignStatus.COMPLETED, updated_at=now)
    started = 0
    for pk in Campaign.objects.filter(status=CampaignStatus.SCHEDULED).values_list("pk", flat=True):
        with transaction.atomic():
            campaign = Campaign.objects.select_for_update().get(pk=pk)
            _start_if_due(campaign, now)
            started += campaign.status == CampaignStatus.RUNNING
    triggered = 0
    always_on = Campaign.objects.filter(status=CampaignStatus.RUNNING).exclude(
        schedule=Schedule.ONCE
    )
    for pk in always_on.values_list("pk", flat=True):
        triggered += run_triggers(campaign_id=pk, now=now)
    return {"completed": completed, "started": started, "triggered": triggered}
