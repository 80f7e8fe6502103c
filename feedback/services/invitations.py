"""Invitations: journeys never calls feedback, so a periodic task reads the events that arrived
since its last run (a high-water mark on CustomerEvent.id), schedules one invitation per member
and trigger event (a unique constraint holds it, so a repeated run adds nothing) for event time
+ the survey's delay, and sends the invitations that are due unless the member was asked
anything within the survey's cool-down.
"""

import logging
import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import mail
from django.db import transaction
from django.db.models import Max, OuterRef, QuerySet, Subquery
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from journeys.models import CustomerEvent, EventType, StageTransition
from members.models import MemberStatus
from rewards.models import PointsAccount
from rewards.selectors import program_settings

from ..models import Invitation, InvitationCursor, InvitationStatus, Survey

logger = logging.getLogger(__name__)

# Events are considered once they are this old: an ingestion transaction still open when the
# task runs would otherwise commit an id below the high-water mark and be missed.
SETTLE = timedelta(minutes=2)
# On the very first run, only events received this recently are looked at.
FIRST_RUN_LOOKBACK = timedelta(days=7)
# A moment that became due longer ago than this is not asked about (e.g. an imported history).
STALE_AFTER = timedelta(days=3)
SEND_BATCH = 1000


def new_token() -> str:
    return secrets.token_urlsafe(32)


# -- planning invitations --------------------------------------------------------------------


def _cursor() -> InvitationCursor:
    InvitationCursor.objects.get_or_create(pk=InvitationCursor.SINGLETON_ID)
    return InvitationCursor.objects.select_for_update().get(pk=InvitationCursor.SINGLETON_ID)


def _matches(survey: Survey, event: dict) -> bool:
    if survey.trigger_event_type != event["event_type"]:
        return False
    if survey.trigger_touchpoint_id and survey.trigger_touchpoint_id != event["touchpoint_id"]:
        return False
    if survey.trigger_stage_id and survey.trigger_stage_id != event["stage_at"]:
        return False
    return survey.starts_at is None or event["occurred_at"] >= survey.starts_at


def plan_invitations(*, now: datetime | None = None) -> int:
    """Schedule invitations for the events received since the last run; returns how many.

    One transaction holding the cursor row, so two runs never overlap. Members without an
    email or with a closed account are not asked; among several surveys matching one event
    the oldest wins (one invitation per member and event)."""
    now = now or timezone.now()
    with transaction.atomic():
        cursor = _cursor()
        new_events = CustomerEvent.objects.filter(
            pk__gt=cursor.last_event_id, received_at__lte=now - SETTLE
        )
        if cursor.last_event_id == 0:
            new_events = new_events.filter(received_at__gte=now - FIRST_RUN_LOOKBACK)
        high = new_events.aggregate(high=Max("pk"))["high"]
        if high is None:
            return 0
        surveys = [
            survey
            for survey in Survey.objects.filter(active=True)
            .exclude(trigger_event_type="")
            .order_by("pk")
            if survey.is_live(now)
        ]
        planned: list[Invitation] = []
        if surveys:
            planned = _plan(surveys, new_events.filter(pk__lte=high), now)
            Invitation.objects.bulk_create(planned, batch_size=1000, ignore_conflicts=True)
        cursor.last_event_id = high
        cursor.save(update_fields=["last_event_id", "updated_at"])
    logger.info("plan_invitations: %s scheduled, cursor at event %s", len(planned), high)
    return len(planned)


# What an invitation records of its trigger event (values of an events_with_stage() row).
TRIGGER_FIELDS = (
    "pk",
    "member_id",
    "event_type",
    "occurred_at",
    "channel",
    "touchpoint_id",
    "touchpoint__channel",
    "stage_at",
)


def events_with_stage(events: QuerySet[CustomerEvent]) -> QuerySet[CustomerEvent]:
    """The events with `stage_at`: the member's journey stage when each event happened."""
    stage_at = Subquery(
        StageTransition.objects.filter(
            member_id=OuterRef("member_id"), at__lte=OuterRef("occurred_at")
        )
        .order_by("-at", "-id")
        .values("to_stage_id")[:1]
    )
    return events.annotate(stage_at=stage_at)


def invitation_for(survey: Survey, event: dict, **fields) -> Invitation:
    """An unsaved invitation to `survey` about a trigger event (a row of TRIGGER_FIELDS)."""
    return Invitation(
        survey=survey,
        member_id=event["member_id"],
        trigger_event_id=event["pk"],
        event_type=event["event_type"],
        event_at=event["occurred_at"],
        stage_id=event["stage_at"],
        touchpoint_id=event["touchpoint_id"],
        channel=event["channel"] or event["touchpoint__channel"] or "",
        token=new_token(),
        **fields,
    )


def _plan(surveys: list[Survey], events, now: datetime) -> list[Invitation]:
    rows = (
        events_with_stage(
            events.filter(event_type__in={s.trigger_event_type for s in surveys})
            .filter(member__email__isnull=False)
            .exclude(member__email="")
            .exclude(member__status=MemberStatus.CLOSED)
        )
        .annotate(tier_id=Subquery(_tier_of("member_id")))
        .order_by("pk")
        .values(*TRIGGER_FIELDS, "tier_id")
    )
    planned = []
    for event in rows.iterator(chunk_size=2000):
        survey = next((s for s in surveys if _matches(s, event)), None)
        if survey is None:
            continue
        due = event["occurred_at"] + timedelta(hours=survey.delay_hours)
        if due < now - STALE_AFTER:
            continue
        planned.append(invitation_for(survey, event, tier_id=event["tier_id"], send_after=due))
    return planned


def _tier_of(member_field: str):
    return PointsAccount.objects.filter(member_id=OuterRef(member_field)).values("tier_id")[:1]


# -- sending ---------------------------------------------------------------------------------


MOMENTS = {
    EventType.PURCHASE: "your purchase",
    EventType.SUPPORT_CONTACT: "your contact with our support team",
    EventType.REVIEW: "your review",
    EventType.SIGNUP: "joining the program",
    EventType.REFERRAL: "your referral",
    EventType.CART_ABANDON: "your visit",
    EventType.PAGE_VIEW: "your visit",
}


def describe_moment(invitation: Invitation, zone) -> str:
    """What the invitation is about, as a member reads it: 'your purchase at Website checkout
    on 3 March 2026'."""
    if not invitation.event_type:
        return ""
    moment = MOMENTS.get(invitation.event_type) or "your " + invitation.event_type.replace("_", " ")
    if invitation.touchpoint_id:
        moment += f" at {invitation.touchpoint.name}"
    if invitation.event_at:
        local = invitation.event_at.astimezone(zone)
        moment += f" on {local.day} {local:%B %Y}"
    return moment


def invitation_url(invitation: Invitation) -> str:
    path = reverse("feedback:answer_link", args=[invitation.token])
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def _message(invitation: Invitation, program, zone) -> mail.EmailMessage:
    expires = invitation.expires_at.astimezone(zone)
    context = {
        "member": invitation.member,
        "survey": invitation.survey,
        "moment": describe_moment(invitation, zone),
        "url": invitation_url(invitation),
        "expires_on": f"{expires.day} {expires:%B %Y}",
        "program_name": program.name,
        "points_name": program.points_name,
    }
    return mail.EmailMessage(
        subject=render_to_string("emails/survey_invitation_subject.txt", context).strip(),
        body=render_to_string("emails/survey_invitation.txt", context),
        to=[invitation.member.email],
    )


def send_due_invitations(*, now: datetime | None = None, limit: int = SEND_BATCH) -> dict:
    """Send the scheduled invitations whose time has come; returns {"sent", "skipped"}.

    Each invitation is its own transaction (locked, skipped if another run holds it), so a
    failed email leaves it scheduled for the next run and the others still go."""
    now = now or timezone.now()
    program = program_settings()
    zone = ZoneInfo(program.timezone)
    due = list(
        Invitation.objects.filter(status=InvitationStatus.SCHEDULED, send_after__lte=now)
        .order_by("send_after", "id")
        .values_list("pk", flat=True)[:limit]
    )
    counts = {"sent": 0, "skipped": 0}
    if not due:
        return counts
    connection = mail.get_connection()
    for pk in due:
        try:
            outcome = _send_one(pk, now=now, program=program, zone=zone, connection=connection)
        except OSError:
            logger.exception("invitation %s: email failed, will retry", pk)
            continue
        if outcome:
            counts[outcome] += 1
    logger.info("send_due_invitations: %(sent)s sent, %(skipped)s not sent", counts)
    return counts


def _skip_reason(invitation: Invitation, now: datetime) -> str:
    member, survey = invitation.member, invitation.survey
    if member.status == MemberStatus.CLOSED:
        return "account closed"
    if not member.email:
        return "no email address"
    if not survey.is_live(now):
        return "survey no longer active"
    if survey.cooldown_days:
        recent = Invitation.objects.filter(
            member_id=member.pk, sent_at__gt=now - timedelta(days=survey.cooldown_days)
        )
        if recent.exists():
            return f"asked within the last {survey.cooldown_days} days"
    return ""


def _send_one(pk: int, *, now, program, zone, connection) -> str | None:
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("survey", "member", "touchpoint")
            .filter(pk=pk, status=InvitationStatus.SCHEDULED)
            .first()
        )
        if invitation is None:
            return None
        reason = _skip_reason(invitation, now)
        if reason:
            invitation.status, invitation.skip_reason = InvitationStatus.SKIPPED, reason
            invitation.save(update_fields=["status", "skip_reason"])
            return "skipped"
        invitation.status = InvitationStatus.SENT
        invitation.sent_at = now
        invitation.expires_at = now + timedelta(days=invitation.survey.invitation_valid_days)
        invitation.save(update_fields=["status", "sent_at", "expires_at"])
        connection.send_messages([_message(invitation, program, zone)])
        return "sent"


def run_invitations(*, now: datetime | None = None) -> dict:
    """The periodic job: schedule for new events, then send what is due."""
    now = now or timezone.now()
    planned = plan_invitations(now=now)
    return {"planned": planned, **send_due_invitations(now=now)}
