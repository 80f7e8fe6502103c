from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from feedback import services, tasks
from feedback.models import Invitation, InvitationCursor, InvitationStatus
from journeys.models import JourneyStage
from members.services import close_member
from tests.feedback.conftest import csat_survey, nps_survey, send_event
from tests.feedback.factories import MemberFactory, TouchpointFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def run(clock, *, after: timedelta) -> dict:
    clock.move_to(T0 + after)
    return services.run_invitations()


def test_invitation_waits_for_the_delay_then_is_emailed_with_a_personal_link(clock):
    nps_survey(delay_hours=24, points=50)
    checkout = TouchpointFactory(name="Website checkout", channel="web")
    member = MemberFactory(first_name="Pat", email="pat@example.com")
    mail.outbox.clear()
    send_event(member, key="order-1", touchpoint=checkout)

    first = run(clock, after=timedelta(hours=1))

    assert first == {"planned": 1, "sent": 0, "skipped": 0}
    invitation = Invitation.objects.get()
    assert invitation.status == InvitationStatus.SCHEDULED
    assert invitation.send_after == T0 + timedelta(hours=24)
    assert mail.outbox == []

    assert run(clock, after=timedelta(hours=23, minutes=59))["sent"] == 0
    assert run(clock, after=timedelta(hours=24))["sent"] == 1

    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.SENT
    assert invitation.sent_at == T0 + timedelta(hours=24)
    assert invitation.expires_at == invitation.sent_at + timedelta(days=14)
    (message,) = mail.outbox
    assert message.to == ["pat@example.com"]
    assert "Hi Pat" in message.body
    assert "your purchase at Website checkout on 2 March 2026" in message.body
    assert f"https://loyalty.example.com/s/{invitation.token}/" in message.body
    assert "50" in message.body
    assert len(invitation.token) >= 40


def test_running_twice_gives_one_invitation_per_trigger_event(clock):
    nps_survey()
    member = MemberFactory()
    send_event(member, key="order-1")
    send_event(member, key="order-2")
    mail.outbox.clear()

    assert run(clock, after=timedelta(minutes=5))["planned"] == 2
    assert run(clock, after=timedelta(minutes=6))["planned"] == 0
    # Even re-reading the same events (a lost cursor) adds nothing.
    InvitationCursor.objects.update(last_event_id=0)
    assert run(clock, after=timedelta(minutes=7))["planned"] == 2  # tried ...
    assert Invitation.objects.count() == 2  # ... but the unique constraint kept one each
    assert len(mail.outbox) == 2


def test_task_is_idempotent_through_celery(clock):
    nps_survey()
    send_event(MemberFactory(), key="order-1")
    clock.move_to(T0 + timedelta(minutes=5))
    mail.outbox.clear()

    tasks.send_survey_invitations.delay()
    tasks.send_survey_invitations.delay()

    assert Invitation.objects.count() == 1
    assert len(mail.outbox) == 1


def test_events_received_moments_ago_wait_for_the_next_run(clock):
    nps_survey()
    send_event(MemberFactory(), key="order-1")

    assert run(clock, after=timedelta(seconds=30))["planned"] == 0
    assert run(clock, after=timedelta(minutes=3))["planned"] == 1


def test_cool_down_across_surveys_skips_a_member_asked_recently(clock):
    nps_survey(cooldown_days=30)
    csat_survey(cooldown_days=10)
    member = MemberFactory()
    other = MemberFactory()
    send_event(member, key="order-1")
    run(clock, after=timedelta(minutes=5))
    assert Invitation.objects.get().status == InvitationStatus.SENT

    # 9 days later: a support contact (CSAT survey, 10-day cool-down) -> not asked.
    clock.move_to(T0 + timedelta(days=9))
    send_event(member, "support_contact", key="call-1")
    send_event(other, "support_contact", key="call-2")
    result = run(clock, after=timedelta(days=9, minutes=5))
    assert result == {"planned": 2, "sent": 1, "skipped": 1}
    skipped = Invitation.objects.get(member=member, status=InvitationStatus.SKIPPED)
    assert "10 days" in skipped.skip_reason

    # 11 days after the first: the CSAT cool-down has passed, the NPS one (30 days) has not.
    clock.move_to(T0 + timedelta(days=11))
    send_event(member, "support_contact", key="call-3")
    send_event(member, key="order-2")
    run(clock, after=timedelta(days=11, minutes=5))
    latest = {
        i.trigger_event.idempotency_key: i.status
        for i in Invitation.objects.select_related("trigger_event").filter(member=member)
    }
    # Oldest event first: the call is sent, which then blocks the purchase's NPS invitation.
    assert latest["call-3"] == InvitationStatus.SENT
    assert latest["order-2"] == InvitationStatus.SKIPPED


def test_trigger_touchpoint_and_stage_narrow_the_events(clock):
    store = TouchpointFactory(channel="store")
    web = TouchpointFactory(channel="web")
    repeat = JourneyStage.objects.get(slug="repeat")
    nps_survey(trigger_touchpoint=store, trigger_stage=repeat)
    member = MemberFactory()
    send_event(member, key="o1", touchpoint=store)  # first purchase: not in "repeat" yet
    clock.move_to(T0 + timedelta(hours=1))
    send_event(member, key="o2", touchpoint=web)  # repeat stage, wrong touchpoint
    clock.move_to(T0 + timedelta(hours=2))
    send_event(member, key="o3", touchpoint=store)  # repeat stage, in the store
    run(clock, after=timedelta(hours=3))

    invitation = Invitation.objects.select_related("trigger_event").get()
    assert invitation.trigger_event.idempotency_key == "o3"
    assert invitation.stage == repeat
    assert invitation.touchpoint == store
    assert invitation.channel == "store"


def test_other_event_types_members_without_email_and_closed_members_are_not_asked(clock):
    nps_survey()
    send_event(MemberFactory(), "page_view", key="view-1")
    send_event(MemberFactory(email=None, external_id="till-1"), key="order-1")
    closing = MemberFactory()
    send_event(closing, key="order-2")
    close_member(member=closing)

    assert run(clock, after=timedelta(minutes=5))["planned"] == 0
    assert Invitation.objects.count() == 0


def test_member_closed_after_planning_is_not_emailed(clock):
    nps_survey(delay_hours=2)
    member = MemberFactory()
    send_event(member, key="order-1")
    run(clock, after=timedelta(minutes=5))
    close_member(member=member)
    mail.outbox.clear()

    assert run(clock, after=timedelta(hours=3))["skipped"] == 1
    assert mail.outbox == []


def test_inactive_or_ended_surveys_and_stale_events_invite_nobody(clock):
    nps_survey(active=False)
    nps_survey(ends_at=T0 - timedelta(days=1), starts_at=T0 - timedelta(days=10))
    send_event(MemberFactory(), key="order-1")
    assert run(clock, after=timedelta(minutes=5))["planned"] == 0

    nps_survey()
    # An old purchase imported now is not a moment to ask about.
    send_event(MemberFactory(), key="order-2", at=T0 - timedelta(days=30))
    assert run(clock, after=timedelta(minutes=10))["planned"] == 0
