"""Demo campaigns for `seed_demo`, run after the analytics seeder (which creates and refreshes
the demo segments): a win-back bonus for at-risk members and double points for champions,
each launched three weeks ago with a holdout group, sends, purchases after the send and so
results. Idempotent (campaigns by name); messages go to a dummy mail backend."""

import random
from datetime import timedelta
from decimal import Decimal

from django.core.mail import get_connection
from django.db import transaction
from django.utils import timezone

from analytics.models import RfmSegment, Segment
from analytics.segments import refresh_segments
from journeys.models import EventSource
from journeys.services import ingest_event
from members.models import Member

from . import services
from .models import Campaign, CampaignSend, CampaignStatus, Group, OfferKind, Schedule, SendStatus

WIN_BACK = "Win back at-risk members"
VIP = "VIP double points for champions"
KEY_PREFIX = "demo-campaign:"

# (campaign name, segment slug, RFM segments if the segment is missing, days ago, fields,
#  chance of an extra purchase after the send for treatment and control)
CAMPAIGNS = [
    (
        WIN_BACK,
        "at-risk",
        [RfmSegment.AT_RISK, RfmSegment.CANT_LOSE],
        21,
        {
            "description": "We miss you: 200 bonus points to come back.",
            "offer_kind": OfferKind.BONUS,
            "offer_title": "200 bonus points: welcome back",
            "offer_description": "A thank-you for being with us. Spend them on any reward.",
            "bonus_points": 200,
            "points_budget": 200_000,
            "control_share": Decimal("0.2"),
            "subject_template": "{{ first_name }}, we miss you: 200 {{ points_name }} inside",
            "body_template": (
                "Hi {{ first_name }},\n\nIt has been a while. We added 200 bonus "
                "{{ points_name }} to your account: you now have {{ points }}.\n"
                "{% if expiring_points %}{{ expiring_points }} of them expire on "
                "{{ expiring_on }}.\n{% endif %}\nSee you soon!"
            ),
        },
        (0.30, 0.12),
    ),
    (
        VIP,
        "champions",
        [RfmSegment.CHAMPIONS],
        10,
        {
            "description": "Thank our best members with double points for a month.",
            "offer_kind": OfferKind.MULTIPLIER,
            "offer_title": "Double points on every purchase",
            "offer_description": "Because you are one of our best members.",
            "multiplier": Decimal("2"),
            "multiplier_event_type": "purchase",
            "points_budget": 100_000,
            "control_share": Decimal("0.1"),
            "subject_template": "{{ first_name }}, double {{ points_name }} this month",
            "body_template": (
                "Hi {{ first_name }},\n\nAs a {{ tier }} member you earn double "
                "{{ points_name }} on every purchase until {{ offer_ends }}."
                "{% if next_tier %} Only {{ points_to_next_tier }} to go to {{ next_tier }}!"
                "{% endif %}"
            ),
        },
        (0.35, 0.22),
    ),
]


def _segment(slug: str, rfm_segments: list[str]) -> Segment:
    segment = Segment.objects.filter(slug=slug).first()
    if segment is None:  # a segment on the pipeline's RFM segment alone
        segment = Segment.objects.create(
            slug=slug,
            name=slug.replace("-", " ").capitalize(),
            description="Created by the campaigns demo.",
            rfm_segments=rfm_segments,
        )
    # The analytics seeder may have refreshed it before its pipeline scored anyone.
    refresh_segments(segment_ids=[segment.pk])
    segment.refresh_from_db()
    return segment


def seed_campaigns(*, rng: random.Random, stdout) -> None:
    now = timezone.now()
    outbox = get_connection("django.core.mail.backends.dummy.EmailBackend")
    for name, slug, rfm, days_ago, fields, chances in CAMPAIGNS:
        if Campaign.objects.filter(name=name).exists():
            stdout.write(f"campaigns: {name!r} exists, nothing added")
            continue
        segment = _segment(slug, rfm)
        start = now - timedelta(days=days_ago)
        campaign = _launch_backdated(
            name=name, segment=segment, start=start, end=start + timedelta(days=30), **fields
        )
        send_ids = list(
            CampaignSend.objects.filter(campaign=campaign, status=SendStatus.PENDING).values_list(
                "pk", flat=True
            )
        )
        services.deliver_batch(
            campaign_id=campaign.pk, send_ids=send_ids, now=start, mail_connection=outbox
        )
        purchases = _purchases_after_send(campaign, rng, chances, now)
        campaign.refresh_from_db()
        stdout.write(
            f"campaigns: {name!r}: {len(send_ids)} sent, "
            f"{CampaignSend.objects.filter(campaign=campaign, status=SendStatus.HELD_OUT).count()} "
            f"held out, {purchases} purchases after the send, "
            f"{campaign.points_awarded} points given"
        )


@transaction.atomic
def _launch_backdated(*, name, segment, start, end, **fields) -> Campaign:
    campaign = Campaign.objects.create(
        name=name,
        segment=segment,
        schedule=Schedule.ONCE,
        starts_at=start,
        ends_at=end,
        status=CampaignStatus.RUNNING,
        launched_at=start,
        trigger_cursor=start,
        conversion_days=14,
        **fields,
    )
    member_ids = services.audience_member_ids(campaign)
    services._add_to_campaign(campaign, member_ids, trigger=Schedule.ONCE, now=start)
    return campaign


def _purchases_after_send(campaign: Campaign, rng: random.Random, chances, now) -> int:
    """Extra purchases in the two weeks after the send at a chance per group: the control
    group's is the base rate, the treatment group's adds the campaign's effect. Each goes
    through ingestion, so a multiplier offer earns its points."""
    rows = CampaignSend.objects.filter(
        campaign=campaign, status__in=[SendStatus.SENT, SendStatus.HELD_OUT]
    ).values_list("member_id", "group", "assigned_at")
    members = Member.objects.in_bulk([member_id for member_id, _, _ in rows])
    treatment_chance, control_chance = chances
    made = 0
    for member_id, group, assigned_at in rows:
        chance = treatment_chance if group == Group.TREATMENT else control_chance
        if rng.random() >= chance:
            continue
        when = assigned_at + timedelta(days=rng.uniform(0.5, 13.5))
        if when >= now:
            continue
        amount = Decimal(rng.randrange(1500, 9000)) / 100
        ingest_event(
            member=members[member_id],
            event_type="purchase",
            occurred_at=when,
            idempotency_key=f"{KEY_PREFIX}{campaign.pk}:{member_id}",
            amount=amount,
            order_id=f"C{campaign.pk}-{member_id}",
            channel="web",
            source=EventSource.SYSTEM,
        )
        made += 1
    return made
