"""The offers' points: a bonus awarded with the message, and multiplier offers in the earning
engine (the rewards.registry provider and listener campaigns.apps registers)."""

from datetime import datetime

from django.db import connection
from django.db.models import F, Q

from members.models import Member
from rewards.registry import ExtraMultiplier
from rewards.services import award_points, config_cache

from ..models import (
    Campaign,
    CampaignSend,
    CampaignStatus,
    Group,
    OfferAward,
    OfferKind,
    SendStatus,
)


def _award_bonus(campaign: Campaign, member: Member, now: datetime) -> int:
    txn = award_points(
        member=member,
        points=campaign.bonus_points,
        reason=campaign.offer_title or f"Bonus: {campaign.name}",
        idempotency_key=f"campaign:{campaign.pk}:bonus:{member.pk}",
        source="campaign",
        source_ref=str(campaign.pk),
        occurred_at=now,
        qualifying=False,
    )
    _, created = OfferAward.objects.get_or_create(
        campaign=campaign,
        transaction=txn,
        defaults={"member": member, "points": txn.points + txn.pending_points, "awarded_at": now},
    )
    return campaign.bonus_points if created else 0


def _multiplier_campaigns(member_id: int, when: datetime):
    return Campaign.objects.filter(
        offer_kind=OfferKind.MULTIPLIER,
        status=CampaignStatus.RUNNING,
        starts_at__lte=when,
        ends_at__gt=when,
        sends__member_id=member_id,
        sends__group=Group.TREATMENT,
        sends__status=SendStatus.SENT,
        sends__sent_at__lte=when,
    )


def _running_multiplier_windows() -> list[tuple[datetime, datetime]]:
    return list(
        Campaign.objects.filter(
            offer_kind=OfferKind.MULTIPLIER, status=CampaignStatus.RUNNING
        ).values_list("starts_at", "ends_at")
    )


# Launching, starting, cancelling or editing a campaign (save()) starts a new configuration
# version, so the running multiplier campaigns' windows can be kept with the configuration. A
# campaign completed by QuerySet.update stays in the list until the next version; the list
# only tells when there is surely no offer.
config_cache.watch(Campaign)


def multiplier_offers(member_id: int, event, when: datetime) -> list[ExtraMultiplier]:
    """rewards.registry provider: the running multiplier offers the member received, for an
    event inside the campaign's window. A budgeted campaign's row is locked until the award
    commits, so concurrent awards cannot overspend it (none when called outside a
    transaction, as the rule simulator does). Every earning award asks, and most of the time
    no multiplier campaign is running: the windows of the running ones, kept with the program's
    configuration, say so without a query."""
    windows = config_cache.get_current("multiplier_windows", _running_multiplier_windows)
    if not any(start <= when < end for start, end in windows):
        return []
    campaigns = list(
        _multiplier_campaigns(member_id, when)
        .filter(Q(multiplier_event_type="") | Q(multiplier_event_type=event.event_type))
        .order_by("pk")
    )
    budgeted = [c.pk for c in campaigns if c.points_budget is not None]
    if budgeted and connection.in_atomic_block:
        # One statement, in id order: the locks are taken in the same order by every award.
        locked = dict(
            Campaign.objects.select_for_update()
            .filter(pk__in=budgeted)
            .order_by("pk")
            .values_list("pk", "points_awarded")
        )
        for campaign in campaigns:
            campaign.points_awarded = locked.get(campaign.pk, campaign.points_awarded)
    return [
        ExtraMultiplier(campaign.offer_label, campaign.multiplier, campaign.budget_left)
        for campaign in campaigns
        if campaign.budget_left != 0
    ]


def _members_with_multiplier_offers(member_ids, start: datetime, end: datetime) -> set[int]:
    """A superset of the members multiplier_offers may give an offer to for an event between
    start and end, in one query (bulk awards ask only for these)."""
    return set(
        CampaignSend.objects.filter(
            member_id__in=member_ids,
            group=Group.TREATMENT,
            status=SendStatus.SENT,
            sent_at__lte=end,
            campaign__offer_kind=OfferKind.MULTIPLIER,
            campaign__status=CampaignStatus.RUNNING,
            campaign__starts_at__lte=end,
            campaign__ends_at__gt=start,
        ).values_list("member_id", flat=True)
    )


multiplier_offers.members_with_offers = _members_with_multiplier_offers


def record_offer_points(*, member_id: int, transaction, lines) -> None:
    """rewards.registry listener: book the points a multiplier offer added to an award."""
    offer_lines = {
        line.rule_name: line.points
        for line in lines
        if line.rule_id is None and line.rule_name.startswith("Offer: ") and line.points > 0
    }
    if not offer_lines:
        return
    when = transaction.occurred_at
    for campaign in _multiplier_campaigns(member_id, when):
        points = offer_lines.get(campaign.offer_label)
        if not points:
            continue
        OfferAward.objects.create(
            campaign=campaign,
            member_id=member_id,
            transaction=transaction,
            points=points,
            awarded_at=when,
        )
        _add_points_awarded(campaign.pk, points)


def _add_points_awarded(campaign_id: int, points: int) -> None:
    Campaign.objects.filter(pk=campaign_id).update(points_awarded=F("points_awarded") + points)
