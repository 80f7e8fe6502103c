"""Every write in the feedback app: planning and sending invitations, taking answers (points,
follow-ups, the survey_completed event) and working follow-ups.

Invitations: journeys never calls feedback, so a periodic task reads the events that arrived
since its last run (a high-water mark on CustomerEvent.id), schedules one invitation per member
and trigger event (a unique constraint holds it, so a repeated run adds nothing) for event time
+ the survey's delay, and sends the invitations that are due unless the member was asked
anything within the survey's cool-down.
"""

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import mail
from django.db import IntegrityError, transaction
from django.db.models import Max, OuterRef, Subquery
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from journeys.exceptions import InvalidEvent
from journeys.models import CustomerEvent, EventSource, EventType, MemberJourney, StageTransition
from journeys.services import ingest_event
from members.exceptions import MemberClosed
from members.models import Member, MemberStatus
from rewards.models import PointsAccount
from rewards.selectors import program_settings
from rewards.services import award_points

from .exceptions import (
    AlreadyAnswered,
    InvalidAnswers,
    InvitationExpired,
    NotInvited,
    SurveyClosed,
)
from .models import (
    Answer,
    AnsweredVia,
    FollowUp,
    FollowUpStatus,
    Invitation,
    InvitationCursor,
    InvitationStatus,
    Metric,
    Question,
    QuestionKind,
    Survey,
    SurveyResponse,
)

logger = logging.getLogger(__name__)

# Events are considered once they are this old: an ingestion transaction still open when the
# task runs would otherwise commit an id below the high-water mark and be missed.
SETTLE = timedelta(minutes=2)
# On the very first run, only events received this recently are looked at.
FIRST_RUN_LOOKBACK = timedelta(days=7)
# A moment that became due longer ago than this is not asked about (e.g. an imported history).
STALE_AFTER = timedelta(days=3)
FOLLOW_UP_DAYS = 2
MAX_TEXT_LENGTH = 2000
SEND_BATCH = 1000
DETRACTOR_NPS = 6
UNHAPPY_CSAT = 2


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


def _plan(surveys: list[Survey], events, now: datetime) -> list[Invitation]:
    stage_at = Subquery(
        StageTransition.objects.filter(
            member_id=OuterRef("member_id"), at__lte=OuterRef("occurred_at")
        )
        .order_by("-at", "-id")
        .values("to_stage_id")[:1]
    )
    rows = (
        events.filter(event_type__in={s.trigger_event_type for s in surveys})
        .filter(member__email__isnull=False)
        .exclude(member__email="")
        .exclude(member__status=MemberStatus.CLOSED)
        .annotate(stage_at=stage_at, tier_id=Subquery(_tier_of("member_id")))
        .order_by("pk")
        .values(
            "pk",
            "member_id",
            "event_type",
            "occurred_at",
            "channel",
            "touchpoint_id",
            "touchpoint__channel",
            "stage_at",
            "tier_id",
        )
    )
    planned = []
    for event in rows.iterator(chunk_size=2000):
        survey = next((s for s in surveys if _matches(s, event)), None)
        if survey is None:
            continue
        due = event["occurred_at"] + timedelta(hours=survey.delay_hours)
        if due < now - STALE_AFTER:
            continue
        planned.append(
            Invitation(
                survey=survey,
                member_id=event["member_id"],
                trigger_event_id=event["pk"],
                event_type=event["event_type"],
                event_at=event["occurred_at"],
                stage_id=event["stage_at"],
                touchpoint_id=event["touchpoint_id"],
                channel=event["channel"] or event["touchpoint__channel"] or "",
                tier_id=event["tier_id"],
                token=new_token(),
                send_after=due,
            )
        )
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


# -- answering -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CleanAnswer:
    question: Question
    score: int | None = None
    choices: tuple[str, ...] = ()
    text: str = ""


_INTEGER = re.compile(r"^\s*-?\d{1,3}\s*$")


def _as_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    return None


def _is_empty(value) -> bool:
    return (
        value is None
        or (isinstance(value, str | list | tuple) and not value)
        or (isinstance(value, str) and not value.strip())
    )


def _check(question: Question, value) -> tuple[CleanAnswer | None, str]:
    """The cleaned answer, or an error message."""
    if question.scale:
        low, high = question.scale
        score = _as_int(value)
        if score is None or not low <= score <= high:
            return None, f"Give a whole number from {low} to {high}."
        return CleanAnswer(question, score=score), ""
    if question.kind == QuestionKind.SINGLE_CHOICE:
        if isinstance(value, list | tuple) and len(value) == 1:
            value = value[0]
        if not isinstance(value, str) or value not in question.option_list:
            return None, f"Choose one of: {', '.join(question.option_list)}."
        return CleanAnswer(question, choices=(value,)), ""
    if question.kind == QuestionKind.MULTIPLE_CHOICE:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
            return None, "Give a list of options."
        unknown = [v for v in values if v not in question.option_list]
        if unknown:
            return None, (
                f"Unknown choice: {', '.join(unknown)[:200]}. "
                f"Choose from: {', '.join(question.option_list)}."
            )
        chosen = tuple(option for option in question.option_list if option in values)
        return CleanAnswer(question, choices=chosen), ""
    if not isinstance(value, str):
        return None, "Give a text."
    if "\x00" in value:
        return None, "Text may not contain NUL characters."
    if len(value) > MAX_TEXT_LENGTH:
        return None, f"At most {MAX_TEXT_LENGTH} characters."
    return CleanAnswer(question, text=value.strip()), ""


def validate_answers(questions: list[Question], raw) -> list[CleanAnswer]:
    """Answers checked against their questions, keyed by question id (str or int).

    Raises InvalidAnswers mapping each failing question id to its messages."""
    if not isinstance(raw, dict):
        raise InvalidAnswers({"answers": ["An object mapping question ids to answers."]})
    given = {str(key): value for key, value in raw.items()}
    known = {str(question.pk) for question in questions}
    errors: dict[str, list[str]] = {
        key[:20]: ["Not a question of this survey."] for key in given if key not in known
    }
    clean = []
    for question in questions:
        key = str(question.pk)
        value = given.get(key)
        if _is_empty(value):
            if question.required:
                errors[key] = ["This question needs an answer."]
            continue
        answer, error = _check(question, value)
        if error:
            errors[key] = [error]
        elif answer.text or answer.score is not None or answer.choices:
            clean.append(answer)
        elif question.required:
            errors[key] = ["This question needs an answer."]
    if errors:
        raise InvalidAnswers(errors)
    return clean


@dataclass
class Submitted:
    response: SurveyResponse
    points: int
    balance: int
    follow_up: FollowUp | None


def _locked_invitation(invitation: Invitation, member: Member, now: datetime) -> Invitation:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.member_id != member.pk:
        raise NotInvited()
    if invitation.status == InvitationStatus.ANSWERED:
        raise AlreadyAnswered()
    if invitation.status != InvitationStatus.SENT:
        raise NotInvited("This invitation was not sent.")
    if invitation.is_expired(now):
        raise InvitationExpired()
    return invitation


def _pending_invitation(survey: Survey, member: Member, now: datetime) -> Invitation | None:
    return (
        Invitation.objects.select_for_update()
        .filter(
            survey_id=survey.pk,
            member_id=member.pk,
            status=InvitationStatus.SENT,
            expires_at__gt=now,
        )
        .order_by("sent_at", "id")
        .first()
    )


def _check_uninvited(survey: Survey, member: Member, now: datetime) -> None:
    answered = SurveyResponse.objects.filter(survey_id=survey.pk, member_id=member.pk)
    if not survey.open_to_all:
        if answered.exists():
            raise AlreadyAnswered()
        raise NotInvited()
    if answered.filter(invitation__isnull=True).exists():
        raise AlreadyAnswered()
    if not survey.is_live(now):
        raise SurveyClosed()


def _unhappy(answers: list[CleanAnswer], survey: Survey) -> str:
    for answer in answers:
        metric = survey.metric_for(answer.question.kind)
        if metric == Metric.NPS and answer.score <= DETRACTOR_NPS:
            return f"NPS {answer.score} on “{survey.name}”"
        if metric == Metric.CSAT and answer.score <= UNHAPPY_CSAT:
            return f"CSAT {answer.score} on “{survey.name}”"
    return ""


def submit_response(
    *,
    survey: Survey,
    member: Member,
    answers: dict,
    via: str,
    invitation: Invitation | None = None,
    channel: str = "",
    touchpoint=None,
    now: datetime | None = None,
) -> Submitted:
    """Take a member's answers: validated per question, one response per invitation (or per
    member and survey without one), the survey's points through the ledger once, a follow-up
    for an unhappy score, and a survey_completed journey event; one transaction.

    Raises InvalidAnswers (400), or AlreadyAnswered, InvitationExpired, NotInvited,
    SurveyClosed, MemberClosed (409)."""
    now = now or timezone.now()
    if member.status == MemberStatus.CLOSED:
        raise MemberClosed()
    if not survey.active:
        raise SurveyClosed()
    questions = list(survey.questions.all())
    clean = validate_answers(questions, answers)
    try:
        with transaction.atomic():
            if invitation is not None:
                invitation = _locked_invitation(invitation, member, now)
            else:
                invitation = _pending_invitation(survey, member, now)
                if invitation is None:
                    _check_uninvited(survey, member, now)
            result = _record(
                survey=survey,
                member=member,
                clean=clean,
                via=via,
                invitation=invitation,
                channel=channel,
                touchpoint=touchpoint,
                now=now,
            )
    except IntegrityError as exc:
        # A concurrent answer to the same survey won the unique constraint.
        raise AlreadyAnswered() from exc
    logger.info("survey %s answered by member %s (%s points)", survey.pk, member.pk, result.points)
    return result


def _record(*, survey, member, clean, via, invitation, channel, touchpoint, now) -> Submitted:
    if invitation is not None:
        dims = {
            "stage_id": invitation.stage_id,
            "touchpoint_id": invitation.touchpoint_id,
            "channel": invitation.channel,
            "tier_id": invitation.tier_id,
        }
    else:
        dims = {
            "stage_id": MemberJourney.objects.filter(member_id=member.pk)
            .values_list("stage_id", flat=True)
            .first(),
            "touchpoint_id": touchpoint.pk if touchpoint else None,
            "channel": channel or (touchpoint.channel if touchpoint else ""),
            "tier_id": PointsAccount.objects.filter(member_id=member.pk)
            .values_list("tier_id", flat=True)
            .first(),
        }
    response = SurveyResponse.objects.create(
        survey=survey,
        member=member,
        invitation=invitation,
        submitted_at=now,
        answered_via=via,
        points_awarded=survey.points,
        **dims,
    )
    Answer.objects.bulk_create(
        [
            Answer(
                response=response,
                question=answer.question,
                metric=survey.metric_for(answer.question.kind),
                score=answer.score,
                choices=list(answer.choices),
                text=answer.text,
            )
            for answer in clean
        ]
    )
    balance = None
    if survey.points:
        key = (
            f"survey:invitation:{invitation.pk}"
            if invitation is not None
            else f"survey:{survey.pk}:member:{member.pk}"
        )
        txn = award_points(
            member=member,
            points=survey.points,
            reason=f"Survey completed: {survey.name}",
            idempotency_key=key,
            source="survey",
            qualifying=False,  # a bonus for answering: it does not count towards tiers
            source_ref=str(response.pk),
            occurred_at=now,
        )
        balance = txn.balance_after
    follow_up = None
    reason = _unhappy(clean, survey)
    if reason:
        follow_up = FollowUp.objects.create(
            response=response,
            member=member,
            reason=reason,
            due_at=now + timedelta(days=FOLLOW_UP_DAYS),
            created_at=now,
        )
    if invitation is not None:
        invitation.status, invitation.answered_at = InvitationStatus.ANSWERED, now
        invitation.save(update_fields=["status", "answered_at"])
    _record_event(response, clean, via)
    if balance is None:
        balance = (
            PointsAccount.objects.filter(member_id=member.pk)
            .values_list("balance", flat=True)
            .first()
            or 0
        )
    return Submitted(response=response, points=survey.points, balance=balance, follow_up=follow_up)


def _record_event(response: SurveyResponse, clean: list[CleanAnswer], via: str) -> None:
    """The journey hears of the completed survey like any other event."""
    headline = next((a.score for a in clean if a.score is not None), None)
    properties = {"survey_id": response.survey_id, "response_id": response.pk}
    if headline is not None:
        properties["score"] = headline
    try:
        ingest_event(
            member=response.member,
            event_type=EventType.SURVEY_COMPLETED,
            occurred_at=response.submitted_at,
            idempotency_key=f"survey-response:{response.pk}",
            channel=response.channel if via == AnsweredVia.API else "web",
            touchpoint=response.touchpoint if via == AnsweredVia.API else None,
            properties=properties,
            source=EventSource.API if via == AnsweredVia.API else EventSource.PORTAL,
        )
    except InvalidEvent as exc:
        logger.warning("survey response %s: event not recorded: %s", response.pk, exc)


# -- follow-ups ------------------------------------------------------------------------------


class OutcomeRequired(ValueError):
    pass


def update_follow_up(
    *,
    follow_up: FollowUp,
    actor,
    status: str,
    assignee=None,
    notes: str = "",
    due_at: datetime | None = None,
    outcome: str = "",
    now: datetime | None = None,
) -> FollowUp:
    """Support works a follow-up; resolving needs an outcome and records who and when."""
    now = now or timezone.now()
    if status == FollowUpStatus.RESOLVED and not (outcome or "").strip():
        raise OutcomeRequired("Record the outcome to resolve the follow-up.")
    with transaction.atomic():
        row = FollowUp.objects.select_for_update().get(pk=follow_up.pk)
        if status == FollowUpStatus.RESOLVED and row.status != FollowUpStatus.RESOLVED:
            row.resolved_at, row.resolved_by = now, actor
        elif status != FollowUpStatus.RESOLVED:
            row.resolved_at, row.resolved_by = None, None
        row.status = status
        row.assignee = assignee
        row.notes = notes
        row.outcome = (outcome or "").strip()
        if due_at is not None:
            row.due_at = due_at
        row.save()
    logger.info("follow-up %s: %s by %s", row.pk, status, getattr(actor, "pk", None))
    return row


__all__ = [
    "OutcomeRequired",
    "Submitted",
    "new_token",
    "plan_invitations",
    "run_invitations",
    "send_due_invitations",
    "submit_response",
    "update_follow_up",
    "validate_answers",
]
