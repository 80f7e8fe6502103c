"""Taking a member's answers: one response per invitation (or per member and survey without
one), the survey's points through the ledger, a follow-up for an unhappy score and a
survey_completed journey event."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from journeys.exceptions import InvalidEvent
from journeys.models import EventSource, EventType, MemberJourney
from journeys.services import ingest_event
from members.exceptions import MemberClosed
from members.models import Member, MemberStatus
from rewards.models import PointsAccount
from rewards.services import award_points

from ..exceptions import AlreadyAnswered, InvitationExpired, NotInvited, SurveyClosed
from ..models import (
    Answer,
    AnsweredVia,
    FollowUp,
    Invitation,
    InvitationStatus,
    Metric,
    Survey,
    SurveyResponse,
)
from .answers import CleanAnswer, validate_answers

logger = logging.getLogger(__name__)

FOLLOW_UP_DAYS = 2
DETRACTOR_NPS = 6
UNHAPPY_CSAT = 2


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


# metric -> (name in the follow-up's reason, highest score that opens a follow-up)
UNHAPPY_SCORES = {Metric.NPS: ("NPS", DETRACTOR_NPS), Metric.CSAT: ("CSAT", UNHAPPY_CSAT)}


def unhappy_reason(answers, survey: Survey) -> str:
    """Why the answers open a follow-up ("NPS 3 on “After purchase”"), or "" when they do not.
    `answers`: anything with .question and .score (clean answers, Answer rows)."""
    for answer in answers:
        metric = survey.metric_for(answer.question.kind)
        if metric not in UNHAPPY_SCORES:
            continue
        name, highest = UNHAPPY_SCORES[metric]
        if answer.score <= highest:
            return f"{name} {answer.score} on “{survey.name}”"
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


def points_key(*, survey_id: int, member_id: int, invitation_id: int | None) -> str:
    """The ledger's idempotency key for a response's points: once per invitation, or once per
    member and survey without one."""
    if invitation_id is not None:
        return f"survey:invitation:{invitation_id}"
    return f"survey:{survey_id}:member:{member_id}"


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
            "tier_id": _account_field(member, "tier_id"),
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
        key = points_key(
            survey_id=survey.pk,
            member_id=member.pk,
            invitation_id=invitation.pk if invitation is not None else None,
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
    reason = unhappy_reason(clean, survey)
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
        balance = _account_field(member, "balance") or 0
    return Submitted(response=response, points=survey.points, balance=balance, follow_up=follow_up)


def _account_field(member: Member, field: str):
    return PointsAccount.objects.filter(member_id=member.pk).values_list(field, flat=True).first()


def _record_event(response: SurveyResponse, clean: list[CleanAnswer], via: str) -> None:
    """The journey hears of the completed survey like any other event."""
    headline = next((a.score for a in clean if a.score is not None), None)
    properties = {"survey_id": response.survey_id, "response_id": response.pk}
    if headline is not None:
        properties["score"] = headline
    api = via == AnsweredVia.API
    try:
        ingest_event(
            member=response.member,
            event_type=EventType.SURVEY_COMPLETED,
            occurred_at=response.submitted_at,
            idempotency_key=f"survey-response:{response.pk}",
            channel=response.channel if api else "web",
            touchpoint=response.touchpoint if api else None,
            properties=properties,
            source=EventSource.API if api else EventSource.PORTAL,
        )
    except InvalidEvent as exc:
        logger.warning("survey response %s: event not recorded: %s", response.pk, exc)
