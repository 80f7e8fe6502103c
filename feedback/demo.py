"""Demo data for feedback: an NPS survey after purchases, a CSAT survey after support
contacts and an open CES survey about the app, with a year of invitations and plausible
answers (some detractors, whose follow-ups Support has partly worked).

Invitations follow the surveys' own rules (delay, one per event, cool-down across surveys),
replayed in memory over the demo events and written with bulk inserts; completion points go
through the ledger service like real answers. The invitation task's cursor is moved past the
demo history so it does not invite anyone for it. Idempotent: nothing is added once the demo
surveys have invitations."""

import random
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from journeys.models import CustomerEvent, EventType, MemberJourney
from members.demo import DEMO_MEMBER_EMAIL
from members.models import Member, MemberStatus
from rewards.models import PointsAccount
from rewards.services import award_points

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
    SurveyKind,
    SurveyResponse,
)
from .services import (
    FOLLOW_UP_DAYS,
    TRIGGER_FIELDS,
    events_with_stage,
    invitation_for,
    new_token,
    points_key,
    unhappy_reason,
)

HISTORY_DAYS = 365
BATCH = 2000
NPS_WEIGHTS = [2, 1, 1, 2, 2, 4, 6, 10, 16, 22, 18]  # scores 0..10
CSAT_WEIGHTS = [8, 8, 14, 34, 36]  # 1..5
CES_WEIGHTS = [4, 10, 18, 38, 30]  # 1..5 (5 = very easy)
REASONS = ["Price", "Product quality", "Delivery speed", "Staff", "Website or app"]
TEXTS = {
    "good": [
        "Fast delivery and friendly staff, thank you!",
        "Great quality products, I will buy again.",
        "The app makes collecting points really easy.",
        "Friendly staff in the store and quick checkout.",
        "Good prices and the rewards are worth it.",
        "Delivery was fast and the packaging was nice.",
    ],
    "neutral": [
        "Fine overall, delivery could be faster.",
        "Good products but prices went up.",
        "Checkout on the website was a bit slow.",
        "Okay experience, nothing special.",
    ],
    "bad": [
        "Delivery took too long and nobody answered my emails.",
        "The product arrived damaged and the return was difficult.",
        "The app crashed at checkout twice.",
        "Staff were unfriendly and the queue was long.",
        "My points were missing after the purchase.",
        "Waited forty minutes on the help line.",
    ],
}
OUTCOMES = [
    "Called the member, apologised and sent a replacement.",
    "Refunded the delivery costs; member satisfied.",
    "Explained the points timing; points were pending, now available.",
    "No answer after three attempts; closed.",
]


def seed_feedback(*, rng: random.Random, stdout) -> None:
    surveys = _seed_surveys()
    if Invitation.objects.filter(survey__in=surveys.values()).exists():
        stdout.write("feedback: demo invitations exist, nothing added")
        return
    now = timezone.now()
    counts = _seed_history(rng, surveys, now)
    high = CustomerEvent.objects.aggregate(high=Max("pk"))["high"] or 0
    cursor, _ = InvitationCursor.objects.get_or_create(pk=InvitationCursor.SINGLETON_ID)
    if cursor.last_event_id < high:
        cursor.last_event_id = high
        cursor.save(update_fields=["last_event_id", "updated_at"])
    stdout.write(
        f"feedback: {counts['invitations']} invitations, {counts['responses']} responses, "
        f"{counts['follow_ups']} follow-ups"
    )


def _seed_surveys() -> dict[str, Survey]:
    specs = [
        (
            "after-purchase-nps",
            dict(  # noqa: C408
                name="After purchase (NPS)",
                kind=SurveyKind.NPS,
                title="How likely are you to recommend us?",
                intro="Two quick questions about your purchase.",
                trigger_event_type=EventType.PURCHASE,
                delay_hours=24,
                cooldown_days=30,
                points=50,
            ),
            [
                (
                    QuestionKind.NPS,
                    "How likely are you to recommend us to a friend or colleague?",
                    True,
                    "",
                    ("Not at all likely", "Extremely likely"),
                ),
                (QuestionKind.SINGLE_CHOICE, "What mattered most?", False, REASONS, ("", "")),
                (QuestionKind.TEXT, "What is the main reason for your score?", False, "", ("", "")),
            ],
        ),
        (
            "support-csat",
            dict(  # noqa: C408
                name="After a support contact (CSAT)",
                kind=SurveyKind.CSAT,
                title="How did we do?",
                intro="You contacted our support team recently.",
                trigger_event_type=EventType.SUPPORT_CONTACT,
                delay_hours=2,
                cooldown_days=14,
                points=25,
            ),
            [
                (
                    QuestionKind.RATING,
                    "How satisfied are you with the help you got?",
                    True,
                    "",
                    ("Very unsatisfied", "Very satisfied"),
                ),
                (QuestionKind.TEXT, "Anything we could do better?", False, "", ("", "")),
            ],
        ),
        (
            "app-effort-ces",
            dict(  # noqa: C408
                name="App ease of use (CES)",
                kind=SurveyKind.CES,
                title="How easy is our app to use?",
                intro="Tell us once; it helps us improve the app.",
                open_to_all=True,
                points=20,
            ),
            [
                (
                    QuestionKind.RATING,
                    "How easy was it to collect and spend points in the app?",
                    True,
                    "",
                    ("Very difficult", "Very easy"),
                ),
                (
                    QuestionKind.MULTIPLE_CHOICE,
                    "Which features do you use?",
                    False,
                    ["Digital card", "Rewards catalogue", "Order history", "Offers"],
                    ("", ""),
                ),
            ],
        ),
    ]
    surveys = {}
    for slug, fields, questions in specs:
        survey, created = Survey.objects.get_or_create(slug=slug, defaults=fields)
        if created:
            Question.objects.bulk_create(
                Question(
                    survey=survey,
                    order=index,
                    kind=kind,
                    text=text,
                    required=required,
                    options="\n".join(options) if options else "",
                    low_label=labels[0],
                    high_label=labels[1],
                )
                for index, (kind, text, required, options, labels) in enumerate(questions, 1)
            )
        surveys[slug] = survey
    return surveys


def _events(survey: Survey, since: datetime):
    return (
        events_with_stage(
            CustomerEvent.objects.filter(
                event_type=survey.trigger_event_type,
                occurred_at__gte=since,
                member__external_id__startswith="DEMO-",
                member__email__isnull=False,
            ).exclude(member__status=MemberStatus.CLOSED)
        )
        .order_by("occurred_at", "pk")
        .values(*TRIGGER_FIELDS)
    )


def _seed_history(rng: random.Random, surveys: dict[str, Survey], now: datetime) -> dict:
    since = now - timedelta(days=HISTORY_DAYS)
    tiers = dict(PointsAccount.objects.values_list("member_id", "tier_id"))
    nps, csat, ces = (
        surveys["after-purchase-nps"],
        surveys["support-csat"],
        surveys["app-effort-ces"],
    )
    candidates = [(e, csat) for e in _events(csat, since)] + [
        (e, nps) for e in _events(nps, since) if rng.random() < 0.2
    ]
    candidates.sort(key=lambda item: item[0]["occurred_at"] + timedelta(hours=item[1].delay_hours))
    last_sent: dict[int, datetime] = {}
    invitations: list[Invitation] = []
    for event, survey in candidates:
        member_id, at = event["member_id"], event["occurred_at"]
        sent_at = at + timedelta(hours=survey.delay_hours)
        if sent_at > now:
            continue
        previous = last_sent.get(member_id)
        if previous and sent_at - previous < timedelta(days=survey.cooldown_days):
            continue
        last_sent[member_id] = sent_at
        invitations.append(
            invitation_for(
                survey,
                event,
                tier_id=tiers.get(member_id),
                status=InvitationStatus.SENT,
                send_after=sent_at,
                sent_at=sent_at,
                expires_at=sent_at + timedelta(days=survey.invitation_valid_days),
                created_at=at,
            )
        )
    demo_member = Member.objects.filter(email=DEMO_MEMBER_EMAIL).first()
    with transaction.atomic():
        Invitation.objects.bulk_create(invitations, batch_size=BATCH)
        questions = {s.pk: list(s.questions.order_by("order", "id")) for s in (nps, csat, ces)}
        responses, answers, follow_ups = [], [], []
        for invitation in invitations:
            if invitation.expires_at > now and rng.random() < 0.5:
                continue  # still open: the member may answer in the portal
            if rng.random() > 0.27:
                continue
            answered_at = invitation.sent_at + timedelta(hours=rng.uniform(0.2, 72))
            if answered_at > now:
                continue
            invitation.status, invitation.answered_at = InvitationStatus.ANSWERED, answered_at
            responses.append(
                _response(invitation.survey, invitation.member_id, answered_at, invitation)
            )
        # The open CES survey: answered in the app by some recently active members.
        recent = list(
            MemberJourney.objects.filter(
                last_activity_at__gte=now - timedelta(days=120),
                member__external_id__startswith="DEMO-",
            )
            .exclude(member__status=MemberStatus.CLOSED)
            .exclude(member=demo_member)
            .values_list("member_id", "stage_id")
        )
        for member_id, stage_id in rng.sample(recent, min(len(recent) // 12, 80)):
            answered_at = now - timedelta(days=rng.uniform(0, 110))
            response = _response(ces, member_id, answered_at, None)
            response.stage_id, response.tier_id = stage_id, tiers.get(member_id)
            response.channel, response.answered_via = "mobile_app", AnsweredVia.API
            responses.append(response)
        SurveyResponse.objects.bulk_create(responses, batch_size=BATCH)
        Invitation.objects.bulk_update(
            [i for i in invitations if i.status == InvitationStatus.ANSWERED],
            ["status", "answered_at"],
            batch_size=BATCH,
        )
        for response in responses:
            made, unhappy = _answers(rng, response, questions[response.survey_id])
            answers.extend(made)
            if unhappy:
                follow_ups.append(_follow_up(rng, response, unhappy, now))
        Answer.objects.bulk_create(answers, batch_size=BATCH)
        FollowUp.objects.bulk_create(follow_ups, batch_size=BATCH)
        members = Member.objects.in_bulk({r.member_id for r in responses})
        for response in responses:
            key = points_key(
                survey_id=response.survey_id,
                member_id=response.member_id,
                invitation_id=response.invitation_id,
            )
            award_points(
                member=members[response.member_id],
                points=response.points_awarded,
                reason=f"Survey completed: {response.survey.name}",
                idempotency_key=key,
                source="survey",
                qualifying=False,  # a bonus for answering: it does not count towards tiers
                source_ref=str(response.pk),
                occurred_at=response.submitted_at,
            )
        if demo_member is not None:
            _invite_demo_member(demo_member, nps, tiers, now)
    return {
        "invitations": len(invitations),
        "responses": len(responses),
        "follow_ups": len(follow_ups),
    }


def _response(survey, member_id, at, invitation) -> SurveyResponse:
    response = SurveyResponse(
        survey=survey,
        member_id=member_id,
        invitation=invitation,
        submitted_at=at,
        answered_via=AnsweredVia.LINK,
        points_awarded=survey.points,
    )
    if invitation is not None:
        response.stage_id = invitation.stage_id
        response.touchpoint_id = invitation.touchpoint_id
        response.channel = invitation.channel
        response.tier_id = invitation.tier_id
    return response


def _answers(rng: random.Random, response: SurveyResponse, questions) -> tuple[list, str]:
    survey = response.survey
    made, band = [], "neutral"
    for question in questions:
        answer = Answer(response=response, question=question)
        if question.kind == QuestionKind.NPS:
            answer.score = rng.choices(range(11), weights=NPS_WEIGHTS)[0]
            answer.metric = Metric.NPS
            band = "good" if answer.score >= 9 else "bad" if answer.score <= 6 else "neutral"
        elif question.kind == QuestionKind.RATING:
            weights = CSAT_WEIGHTS if survey.kind == SurveyKind.CSAT else CES_WEIGHTS
            answer.score = rng.choices(range(1, 6), weights=weights)[0]
            answer.metric = survey.metric_for(question.kind)
            band = "good" if answer.score >= 4 else "bad" if answer.score <= 2 else "neutral"
        elif question.kind == QuestionKind.SINGLE_CHOICE:
            if rng.random() < 0.7:
                answer.choices = [rng.choice(question.option_list)]
        elif question.kind == QuestionKind.MULTIPLE_CHOICE:
            options = question.option_list
            answer.choices = [o for o in options if rng.random() < 0.45] or [options[0]]
        elif question.kind == QuestionKind.TEXT and rng.random() < (0.8 if band == "bad" else 0.45):
            answer.text = rng.choice(TEXTS[band])
        if answer.score is not None or answer.choices or answer.text:
            made.append(answer)
    return made, unhappy_reason(made, survey)


def _follow_up(rng: random.Random, response: SurveyResponse, reason: str, now) -> FollowUp:
    created = response.submitted_at
    due = created + timedelta(days=FOLLOW_UP_DAYS)
    follow_up = FollowUp(
        response=response,
        member_id=response.member_id,
        reason=reason,
        due_at=due,
        created_at=created,
    )
    age = now - created
    if age > timedelta(days=14) or (age > timedelta(days=3) and rng.random() < 0.6):
        follow_up.status = FollowUpStatus.RESOLVED
        follow_up.resolved_at = created + timedelta(days=rng.uniform(0.2, 3))
        follow_up.outcome = rng.choice(OUTCOMES)
        follow_up.notes = "Called the member."
    elif rng.random() < 0.4:
        follow_up.status = FollowUpStatus.CONTACTED
        follow_up.notes = "Left a voicemail; will try again."
    return follow_up


def _invite_demo_member(member: Member, survey: Survey, tiers: dict, now: datetime) -> None:
    """The demo login has a survey waiting in the portal (about their latest purchase)."""
    latest = (
        CustomerEvent.objects.filter(member_id=member.pk, event_type=survey.trigger_event_type)
        .order_by("-occurred_at")
        .first()
    )
    Invitation.objects.create(
        survey=survey,
        member=member,
        trigger_event=None,  # the event may have had its invitation in the history already
        event_type=survey.trigger_event_type,
        event_at=latest.occurred_at if latest else None,
        touchpoint_id=latest.touchpoint_id if latest else None,
        channel=latest.channel if latest else "",
        tier_id=tiers.get(member.pk),
        token=new_token(),
        status=InvitationStatus.SENT,
        send_after=now,
        sent_at=now,
        expires_at=now + timedelta(days=survey.invitation_valid_days),
    )
