from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from campaigns import services
from campaigns.exceptions import CampaignIncomplete, CampaignNotDraft
from campaigns.models import CampaignSend, CampaignStatus, Group, OfferKind, SendStatus
from members.services import close_member
from rewards.models import PointsAccount, PointsTransaction
from rewards.services import award_points
from tests.campaigns.factories import (
    CampaignFactory,
    MemberFactory,
    SegmentFactory,
    add_send,
    add_to_segment,
)

pytestmark = pytest.mark.django_db


def launch(campaign, capture, **kwargs):
    with capture(execute=True):
        return services.launch_campaign(campaign=campaign, **kwargs)


def test_launch_sends_a_personalised_message_to_the_treatment_group_only(
    consenting, django_capture_on_commit_callbacks
):
    members = consenting(30, first_name="Robin")
    award_points(member=members[0], points=120, reason="Welcome", idempotency_key="w-0")
    campaign = CampaignFactory(
        subject_template="{{ first_name }}, news from {{ program_name }}",
        body_template="You have {{ points }} {{ points_name }} ({{ tier|default:'no tier' }}).",
        control_share=Decimal("0.5"),
    )
    add_to_segment(campaign.segment, members)
    mail.outbox = []

    campaign = launch(campaign, django_capture_on_commit_callbacks)

    assert campaign.status == CampaignStatus.RUNNING
    sends = {s.member_id: s for s in CampaignSend.objects.filter(campaign=campaign)}
    assert len(sends) == 30
    treatment = [pk for pk, s in sends.items() if s.group == Group.TREATMENT]
    control = [pk for pk, s in sends.items() if s.group == Group.CONTROL]
    assert {sends[pk].status for pk in treatment} == {SendStatus.SENT}
    assert {sends[pk].status for pk in control} == {SendStatus.HELD_OUT}
    assert len(mail.outbox) == len(treatment)
    recipients = {m.to[0] for m in mail.outbox}
    assert recipients == {m.email for m in members if m.pk in treatment}
    message = mail.outbox[0]
    assert message.subject == "Robin, news from Loyalty program"
    assert "/unsubscribe/" in message.body
    assert message.extra_headers["List-Unsubscribe"].startswith("<http")
    if members[0].pk in treatment:
        first = next(m for m in mail.outbox if m.to == [members[0].email])
        assert "You have 120 points" in first.body


def test_members_without_consent_or_email_or_closed_get_nothing(
    consenting, django_capture_on_commit_callbacks
):
    willing = consenting(1)[0]
    unwilling = MemberFactory(marketing_consent=False)
    no_email = MemberFactory(email=None, external_id="POS-1", marketing_consent=True)
    closed = consenting(1)[0]
    close_member(member=closed)
    campaign = CampaignFactory(control_share=0)
    add_to_segment(campaign.segment, [willing, unwilling, no_email, closed])
    mail.outbox = []

    audience = services.count_audience(campaign)
    assert (audience.treatment, audience.control) == (1, 0)
    assert (audience.no_consent, audience.no_address) == (1, 2)

    launch(campaign, django_capture_on_commit_callbacks)

    statuses = dict(CampaignSend.objects.values_list("member_id", "status"))
    assert statuses == {
        willing.pk: SendStatus.SENT,
        unwilling.pk: SendStatus.NO_CONSENT,
        no_email.pk: SendStatus.NO_ADDRESS,
        closed.pk: SendStatus.NO_ADDRESS,
    }
    assert [m.to for m in mail.outbox] == [[willing.email]]


def test_consent_withdrawn_between_queueing_and_sending_is_respected(consenting):
    from members.services import set_consent

    member = consenting(1)[0]
    campaign = CampaignFactory(control_share=0)
    add_to_segment(campaign.segment, [member])
    campaign = services.launch_campaign(campaign=campaign)  # batches queued on commit, not run
    send = CampaignSend.objects.get(campaign=campaign)
    assert send.status == SendStatus.PENDING
    set_consent(member=member, given=False, source="portal")
    mail.outbox = []

    sent = services.deliver_batch(campaign_id=campaign.pk, send_ids=[send.pk])

    assert sent == 0
    send.refresh_from_db()
    assert send.status == SendStatus.NO_CONSENT
    assert mail.outbox == []


def test_weekly_cap_holds_across_campaigns(consenting, django_capture_on_commit_callbacks):
    services.campaign_settings()
    type(services.campaign_settings()).objects.update(weekly_message_cap=2)
    member = consenting(1)[0]
    segment = SegmentFactory()
    add_to_segment(segment, [member])
    mail.outbox = []
    outcomes = []
    for _ in range(3):
        campaign = launch(
            CampaignFactory(segment=segment, control_share=0), django_capture_on_commit_callbacks
        )
        outcomes.append(CampaignSend.objects.get(campaign=campaign).status)
    assert outcomes == [SendStatus.SENT, SendStatus.SENT, SendStatus.CAPPED]
    assert len(mail.outbox) == 2


def test_cap_counts_only_the_last_seven_days(consenting, django_capture_on_commit_callbacks):
    type(services.campaign_settings()).objects.update(weekly_message_cap=1)
    member = consenting(1)[0]
    segment = SegmentFactory()
    add_to_segment(segment, [member])
    old = CampaignFactory(segment=segment, control_share=0)
    add_send(old, member, at=timezone.now() - timedelta(days=8))
    campaign = launch(
        CampaignFactory(segment=segment, control_share=0), django_capture_on_commit_callbacks
    )
    assert CampaignSend.objects.get(campaign=campaign).status == SendStatus.SENT


def test_delivering_a_batch_twice_sends_once(consenting):
    member = consenting(1)[0]
    campaign = CampaignFactory(control_share=0)
    add_to_segment(campaign.segment, [member])
    campaign = services.launch_campaign(campaign=campaign)
    send_ids = list(CampaignSend.objects.values_list("pk", flat=True))
    mail.outbox = []

    first = services.deliver_batch(campaign_id=campaign.pk, send_ids=send_ids)
    second = services.deliver_batch(campaign_id=campaign.pk, send_ids=send_ids)

    assert (first, second) == (1, 0)
    assert len(mail.outbox) == 1


def test_sends_are_split_into_batches_spaced_by_the_rate_limit(
    consenting, django_capture_on_commit_callbacks
):
    type(services.campaign_settings()).objects.update(batch_size=2, messages_per_minute=4)
    members = consenting(5)
    campaign = CampaignFactory(control_share=0)
    add_to_segment(campaign.segment, members)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.launch_campaign(campaign=campaign)
    assert len(callbacks) == 3  # batches of 2, 2 and 1
    assert services.batch_countdowns(5) == [0, 30, 60]


def test_a_member_is_never_twice_in_one_campaign(consenting, django_capture_on_commit_callbacks):
    member = consenting(1)[0]
    campaign = CampaignFactory(control_share=0)
    add_to_segment(campaign.segment, [member])
    campaign = launch(campaign, django_capture_on_commit_callbacks)
    again = services._add_to_campaign(
        campaign, [member.pk], trigger="once", now=timezone.now() + timedelta(minutes=1)
    )
    assert again == []
    assert CampaignSend.objects.filter(campaign=campaign, member=member).count() == 1


def test_bonus_offer_is_awarded_once_per_member_and_stops_at_the_budget(
    consenting, django_capture_on_commit_callbacks
):
    members = consenting(3)
    campaign = CampaignFactory(
        control_share=0,
        offer_kind=OfferKind.BONUS,
        offer_title="Welcome back",
        bonus_points=100,
        points_budget=250,
    )
    add_to_segment(campaign.segment, members)
    mail.outbox = []

    campaign = launch(campaign, django_capture_on_commit_callbacks)

    campaign.refresh_from_db()
    statuses = sorted(CampaignSend.objects.values_list("status", flat=True))
    assert statuses == [SendStatus.BUDGET, SendStatus.SENT, SendStatus.SENT]
    assert campaign.points_awarded == 200
    assert len(mail.outbox) == 2
    balances = sorted(PointsAccount.objects.values_list("balance", flat=True))
    assert balances[-2:] == [100, 100]
    assert PointsTransaction.objects.filter(source="campaign").count() == 2


def test_launch_refuses_an_incomplete_or_launched_campaign(consenting):
    campaign = CampaignFactory(offer_kind=OfferKind.MULTIPLIER, multiplier=None)
    with pytest.raises(CampaignIncomplete):
        services.launch_campaign(campaign=campaign)
    ready = CampaignFactory()
    services.launch_campaign(campaign=ready)
    with pytest.raises(CampaignNotDraft):
        services.launch_campaign(campaign=ready)


def test_a_campaign_due_later_starts_on_the_scheduler_tick(
    consenting, django_capture_on_commit_callbacks
):
    member = consenting(1)[0]
    send_at = timezone.now() + timedelta(hours=2)
    campaign = CampaignFactory(control_share=0, send_at=send_at)
    add_to_segment(campaign.segment, [member])
    campaign = services.launch_campaign(campaign=campaign)
    assert campaign.status == CampaignStatus.SCHEDULED
    assert not CampaignSend.objects.exists()
    mail.outbox = []

    services.run_due_campaigns(now=send_at - timedelta(minutes=1))
    assert not CampaignSend.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.run_due_campaigns(now=send_at + timedelta(minutes=1))
    assert CampaignSend.objects.get().status == SendStatus.SENT
    assert len(mail.outbox) == 1


def test_cancelled_campaign_sends_nothing_more(consenting):
    member = consenting(1)[0]
    campaign = CampaignFactory(control_share=0)
    add_to_segment(campaign.segment, [member])
    campaign = services.launch_campaign(campaign=campaign)
    services.cancel_campaign(campaign=campaign)
    mail.outbox = []
    send_ids = list(CampaignSend.objects.values_list("pk", flat=True))
    assert services.deliver_batch(campaign_id=campaign.pk, send_ids=send_ids) == 0
    assert mail.outbox == []
