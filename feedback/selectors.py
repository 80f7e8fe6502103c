"""Reads shared by the portal, the API, the results page, the journey map and analytics."""

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from members.models import Member

from .models import (
    Answer,
    Invitation,
    InvitationStatus,
    Metric,
    QuestionKind,
    Survey,
    SurveyResponse,
)

ONE_DECIMAL = Decimal("0.1")
TWO_DECIMALS = Decimal("0.01")

# One aggregate gives every score: counts of each kind of answer and the parts of each score.
SCORE_AGGREGATES = {
    "nps_n": Count("id", filter=Q(metric=Metric.NPS)),
    "promoters": Count("id", filter=Q(metric=Metric.NPS, score__gte=9)),
    "detractors": Count("id", filter=Q(metric=Metric.NPS, score__lte=6)),
    "csat_n": Count("id", filter=Q(metric=Metric.CSAT)),
    "csat_good": Count("id", filter=Q(metric=Metric.CSAT, score__gte=4)),
    "ces_n": Count("id", filter=Q(metric=Metric.CES)),
    "ces_sum": Sum("score", filter=Q(metric=Metric.CES)),
}


def _ratio(part: int, whole: int, quantum: Decimal = ONE_DECIMAL) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(quantum, ROUND_HALF_UP)


def scores(row: dict) -> dict:
    """NPS, CSAT and CES from a row of SCORE_AGGREGATES (None where there are no answers)."""
    nps_n = row.get("nps_n") or 0
    ces_n = row.get("ces_n") or 0
    return {
        "nps": _ratio((row.get("promoters") or 0) - (row.get("detractors") or 0), nps_n),
        "csat": _ratio(row.get("csat_good") or 0, row.get("csat_n") or 0),
        "ces": (
            (Decimal(row.get("ces_sum") or 0) / ces_n).quantize(TWO_DECIMALS, ROUND_HALF_UP)
            if ces_n
            else None
        ),
        "nps_answers": nps_n,
        "csat_answers": row.get("csat_n") or 0,
        "ces_answers": ces_n,
    }


def satisfaction_summary(*, start: datetime | None, end: datetime) -> dict:
    """Program-wide satisfaction of the responses submitted in [start, end) (start None: from
    the beginning).

    Returns {"nps": Decimal | None, "csat": Decimal | None, "ces": Decimal | None,
    "responses": int}, a score being None when no answer counts towards it:

    - NPS: over answers to NPS questions (0–10), the share of promoters (9–10) minus the share
      of detractors (0–6), in percentage points: −100..100, one decimal.
    - CSAT: over rating answers (1–5) in CSAT surveys, the share (%) that are 4 or 5, one
      decimal.
    - CES: the mean of rating answers (1–5) in CES surveys, two decimals.
    - responses: the number of completed surveys (any kind) in the period.

    Two queries, whatever the number of answers.
    """
    filters = ResultFilters(start=start, end=end)
    result = scores(_answers(filters).aggregate(**SCORE_AGGREGATES))
    return {
        "nps": result["nps"],
        "csat": result["csat"],
        "ces": result["ces"],
        "responses": _responses(filters).count(),
    }


# -- the member's side ------------------------------------------------------------------------


def open_invitations(member: Member, *, at: datetime | None = None) -> QuerySet[Invitation]:
    """Invitations the member can still answer, oldest first."""
    at = at or timezone.now()
    return (
        Invitation.objects.filter(
            member_id=member.pk,
            status=InvitationStatus.SENT,
            expires_at__gt=at,
            survey__active=True,
        )
        .select_related("survey", "touchpoint")
        .order_by("sent_at", "id")
    )


def open_surveys(member: Member, *, at: datetime | None = None) -> list[Survey]:
    """Surveys open to every member that this member has not answered yet."""
    at = at or timezone.now()
    surveys = (
        Survey.objects.filter(open_to_all=True, active=True)
        .filter(Q(starts_at__isnull=True) | Q(starts_at__lte=at))
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=at))
        .exclude(pk__in=SurveyResponse.objects.filter(member_id=member.pk).values("survey_id"))
        .order_by("name", "id")
    )
    return list(surveys)


def member_responses(member: Member) -> QuerySet[SurveyResponse]:
    return (
        SurveyResponse.objects.filter(member_id=member.pk)
        .select_related("survey")
        .order_by("-submitted_at", "-id")
    )


def export_feedback(member: Member) -> list[dict]:
    """The member's answers, for their data export."""
    responses = member_responses(member).prefetch_related("answers__question")
    return [
        {
            "survey": response.survey.name,
            "submitted_at": response.submitted_at.isoformat(),
            "points_awarded": response.points_awarded,
            "answers": [
                {"question": answer.question.text, "answer": answer.display()}
                for answer in response.answers.all()
            ],
        }
        for response in responses
    ]


# -- results for analysts --------------------------------------------------------------------

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves also get got really much many one would could i'm it's don't didn't wasn't isn't
    can't i've you're we're they're there's that's very bit lot""".split()  # noqa: SIM905
)
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
MIN_TERM_LENGTH = 3
TEXT_SAMPLE = 5000


def tokenise(text: str) -> list[str]:
    """Lower-cased words of three letters or more that are not stop words."""
    return [
        word
        for word in WORD.findall(text.lower())
        if len(word) >= MIN_TERM_LENGTH and word not in STOP_WORDS
    ]


def top_terms(texts, limit: int = 20) -> list[tuple[str, int]]:
    """The most frequent terms, counting each term once per answer."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(set(tokenise(text)))
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


@dataclass(frozen=True)
class ResultFilters:
    start: datetime | None = None
    end: datetime | None = None
    survey_id: int | None = None


@dataclass
class ResultRow:
    key: object
    label: str
    responses: int = 0
    invitations: int = 0
    invited_responses: int = 0
    nps: Decimal | None = None
    csat: Decimal | None = None
    ces: Decimal | None = None
    nps_answers: int = 0
    csat_answers: int = 0
    ces_answers: int = 0

    @property
    def response_rate(self) -> Decimal | None:
        """Of the invitations sent in the period, the share answered."""
        return _ratio(self.invited_responses, self.invitations)


# dimension -> (field on Invitation and SurveyResponse, label field through the relation)
DIMENSIONS = {
    "survey": ("survey_id", "survey__name"),
    "stage": ("stage_id", "stage__name"),
    "touchpoint": ("touchpoint_id", "touchpoint__name"),
    "channel": ("channel", None),
    "tier": ("tier_id", "tier__name"),
    "month": ("month", None),
}
DIMENSION_TITLES = {
    "survey": "By survey",
    "stage": "By journey stage",
    "touchpoint": "By touchpoint",
    "channel": "By channel",
    "tier": "By tier",
    "month": "By month",
}


def _filtered(qs: QuerySet, filters: ResultFilters, at: str, survey: str) -> QuerySet:
    """`qs` narrowed to the filters' period (on the `at` field) and survey."""
    if filters.start:
        qs = qs.filter(**{f"{at}__gte": filters.start})
    if filters.end:
        qs = qs.filter(**{f"{at}__lt": filters.end})
    if filters.survey_id:
        qs = qs.filter(**{survey: filters.survey_id})
    return qs


def _responses(filters: ResultFilters) -> QuerySet[SurveyResponse]:
    return _filtered(SurveyResponse.objects.all(), filters, "submitted_at", "survey_id")


def _invitations(filters: ResultFilters) -> QuerySet[Invitation]:
    qs = Invitation.objects.filter(sent_at__isnull=False)
    return _filtered(qs, filters, "sent_at", "survey_id")


def _answers(filters: ResultFilters) -> QuerySet[Answer]:
    qs = Answer.objects.exclude(metric="")
    return _filtered(qs, filters, "response__submitted_at", "response__survey_id")


def _text_answers(filters: ResultFilters) -> QuerySet[Answer]:
    qs = Answer.objects.filter(question__kind=QuestionKind.TEXT).exclude(text="")
    return _filtered(qs, filters, "response__submitted_at", "response__survey_id")


def _channel_labels() -> dict[str, str]:
    from journeys.models import TouchpointChannel

    return dict(TouchpointChannel.choices)


def breakdown(dimension: str, filters: ResultFilters, zone) -> list[ResultRow]:
    """Scores, responses and response rate per value of one dimension: three queries."""
    field, label_field = DIMENSIONS[dimension]
    responses = _responses(filters)
    invitations = _invitations(filters)
    answers = _answers(filters)
    if dimension == "month":
        responses = responses.annotate(month=TruncMonth("submitted_at", tzinfo=zone))
        invitations = invitations.annotate(month=TruncMonth("sent_at", tzinfo=zone))
        answers = answers.annotate(month=TruncMonth("response__submitted_at", tzinfo=zone))
        answer_field = "month"
    else:
        answer_field = f"response__{field}"
    labels: dict = {}
    rows: dict = {}

    def row(key) -> ResultRow:
        if key not in rows:
            rows[key] = ResultRow(key=key, label="")
        return rows[key]

    values = [field] + ([label_field] if label_field else [])
    for item in (
        responses.order_by()
        .values(*values)
        .annotate(n=Count("id"), invited=Count("id", filter=Q(invitation__isnull=False)))
    ):
        key = item[field]
        labels[key] = item.get(label_field) if label_field else None
        found = row(key)
        found.responses, found.invited_responses = item["n"], item["invited"]
    for item in invitations.order_by().values(*values).annotate(n=Count("id")):
        key = item[field]
        labels.setdefault(key, item.get(label_field) if label_field else None)
        row(key).invitations = item["n"]
    for item in answers.order_by().values(key=F(answer_field)).annotate(**SCORE_AGGREGATES):
        found = row(item["key"])
        for name, value in scores(item).items():
            setattr(found, name, value)
    channel_labels = _channel_labels() if dimension == "channel" else {}
    for key, found in rows.items():
        if dimension == "month":
            found.label = key.strftime("%Y-%m") if key else "—"
        elif dimension == "channel":
            found.label = channel_labels.get(key, key) or "No channel"
        else:
            found.label = labels.get(key) or "(none)"
    if dimension == "month":
        return sorted(rows.values(), key=lambda r: r.label)
    return sorted(rows.values(), key=lambda r: (-r.responses, r.label))


def overall(filters: ResultFilters) -> ResultRow:
    found = ResultRow(key=None, label="All responses")
    counts = _responses(filters).aggregate(
        n=Count("id"), invited=Count("id", filter=Q(invitation__isnull=False))
    )
    found.responses, found.invited_responses = counts["n"], counts["invited"]
    found.invitations = _invitations(filters).count()
    for name, value in scores(_answers(filters).aggregate(**SCORE_AGGREGATES)).items():
        setattr(found, name, value)
    return found


def text_answers(filters: ResultFilters, limit: int = 50) -> QuerySet[Answer]:
    return (
        _text_answers(filters)
        .select_related("response__survey", "question")
        .order_by("-response__submitted_at", "-id")[:limit]
    )


def text_terms(filters: ResultFilters, limit: int = 20) -> list[tuple[str, int]]:
    texts = (
        _text_answers(filters)
        .order_by("-response__submitted_at")
        .values_list("text", flat=True)[:TEXT_SAMPLE]
    )
    return top_terms(texts, limit)


def touchpoint_satisfaction(touchpoint_ids) -> dict[int, str]:
    """A short label per touchpoint for the journey map: NPS and CSAT with answer counts."""
    ids = [pk for pk in touchpoint_ids if pk is not None]
    if not ids:
        return {}
    rows = (
        Answer.objects.exclude(metric="")
        .filter(response__touchpoint_id__in=ids)
        .order_by()
        .values(touchpoint=F("response__touchpoint_id"))
        .annotate(**SCORE_AGGREGATES)
    )
    labels = {}
    for row in rows:
        result = scores(row)
        parts = []
        if result["nps"] is not None:
            parts.append(f"NPS {result['nps']:+.0f} (n={result['nps_answers']})")
        if result["csat"] is not None:
            parts.append(f"CSAT {result['csat']:.0f}% (n={result['csat_answers']})")
        if result["ces"] is not None:
            parts.append(f"CES {result['ces']} (n={result['ces_answers']})")
        if parts:
            labels[row["touchpoint"]] = " · ".join(parts)
    return labels
