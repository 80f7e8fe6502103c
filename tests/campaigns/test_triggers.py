"""Always-on campaigns: a member who enters the trigger stage (or the segment) during the
campaign gets it once, however often they enter."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from campaigns import services
from campaigns.models import CampaignSend, Schedule, SendStatus
from journeys.models import JourneyStage, StageTransition
from journeys.services import evaluate_stages, ingest_event
from tests.campaigns.factories import CampaignFactory, SegmentFactory, add_to_segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def at_risk(db):
    return JourneyStage.objects.get(slug="at-risk")


def test_entering_the_at_risk_stage_triggers_the_campaign_once(
    consenting, at_risk, django_capture_on_commit_callbacks
):
    quiet, busy = consenting(2)
    now = timezone.now()
    for number, member in enumerate([quiet, busy]):
        ingest_event(
            member=member,
            event_type="purchase",
            # The quiet one's 90 days without events run out two minutes after the launch.
            occurred_at=now - timedelta(days=90) + timedelta(minutes=2)
            if member is quiet
            else now - timedelta(days=5),
            idempotency_key=f"p{number}",
            amount=Decimal("20.00"),
        )
    campaign = CampaignFactory(
        segment=None,
        schedule=Schedule.STAGE_ENTRY,
        trigger_stage=at_risk,
        control_share=0,
        subject_template="We miss you, {{ first_name }}",
    )
    services.launch_campaign(campaign=campaign, now=now)
    mail.outbox = []

    assert evaluate_stages(as_of=now + timedelta(minutes=5)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        added = services.run_triggers(campaign_id=campaign.pk, now=now + timedelta(minutes=6))

    assert added == 1
    send = CampaignSend.objects.get(campaign=campaign)
    assert (send.member_id, send.status, send.trigger) == (quiet.pk, SendStatus.SENT, "stage_entry")
    assert [m.to for m in mail.outbox] == [[quiet.email]]

    # Back, then at risk again: still only the one message from this campaign.
    StageTransition.objects.create(
        member=quiet, to_stage=at_risk, at=now + timedelta(minutes=10), cause="inactivity"
    )
    with django_capture_on_commit_callbacks(execute=True):
        again = services.run_triggers(campaign_id=campaign.pk, now=now + timedelta(minutes=15))
    assert again == 0
    assert CampaignSend.objects.filter(campaign=campaign).count() == 1
    assert len(mail.outbox) == 1


def test_entries_before_the_launch_do_not_trigger(consenting, at_risk):
    member = consenting(1)[0]
    now = timezone.now()
    StageTransition.objects.create(
        member=member, to_stage=at_risk, at=now - timedelta(minutes=30), cause="inactivity"
    )
    campaign = CampaignFactory(
        segment=None,
        schedule=Schedule.STAGE_ENTRY,
        trigger_stage=at_risk,
        starts_at=now - timedelta(hours=2),
    )
    services.launch_campaign(campaign=campaign, now=now)
    assert services.run_triggers(campaign_id=campaign.pk, now=now + timedelta(minutes=5)) == 0


def test_a_stage_trigger_with_a_segment_needs_both(consenting, at_risk):
    inside, outside = consenting(2)
    segment = SegmentFactory()
    add_to_segment(segment, [inside])
    now = timezone.now()
    campaign = CampaignFactory(
        segment=segment, schedule=Schedule.STAGE_ENTRY, trigger_stage=at_risk, control_share=0
    )
    services.launch_campaign(campaign=campaign, now=now)
    for member in (inside, outside):
        StageTransition.objects.create(
            member=member, to_stage=at_risk, at=now + timedelta(minutes=1), cause="inactivity"
        )
    services.run_triggers(campaign_id=campaign.pk, now=now + timedelta(minutes=2))
    assert list(CampaignSend.objects.values_list("member_id", flat=True)) == [inside.pk]


def test_entering_the_segment_triggers_on_the_scheduler_tick(consenting):
    old_member, newcomer = consenting(2)
    segment = SegmentFactory()
    now = timezone.now()
    add_to_segment(segment, [old_member], at=now - timedelta(days=3))
    campaign = CampaignFactory(segment=segment, schedule=Schedule.SEGMENT_ENTRY, control_share=0)
    services.launch_campaign(campaign=campaign, now=now)
    add_to_segment(segment, [newcomer], at=now + timedelta(minutes=1))

    result = services.run_due_campaigns(now=now + timedelta(minutes=5))

    assert result["triggered"] == 1
    assert list(CampaignSend.objects.values_list("member_id", flat=True)) == [newcomer.pk]


def test_the_tick_completes_ended_campaigns(consenting):
    campaign = CampaignFactory(schedule=Schedule.SEGMENT_ENTRY)
    services.launch_campaign(campaign=campaign)
    services.run_due_campaigns(now=campaign.ends_at + timedelta(seconds=1))
    campaign.refresh_from_db()
    assert campaign.status == "completed"
