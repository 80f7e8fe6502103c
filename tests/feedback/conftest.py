from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from feedback import services
from feedback.models import Invitation, InvitationStatus, Question, QuestionKind, Survey, SurveyKind
from journeys.services import ingest_event, seed_default_stages
from tests.feedback.factories import QuestionFactory, SurveyFactory


@pytest.fixture(autouse=True)
def _default_stages(request):
    """The data migration seeds the stages; a transactional test's flush removes them."""
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        request.getfixturevalue("_django_db_helper")
        seed_default_stages()


@pytest.fixture(autouse=True)
def _locmem_email(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PORTAL_BASE_URL = "https://loyalty.example.com"


def send_event(member, event_type="purchase", *, key, at: datetime | None = None, **extra):
    """A real event through journeys ingestion (received now, occurred at `at`)."""
    if event_type == "purchase":
        extra.setdefault("amount", __import__("decimal").Decimal("20.00"))
    return ingest_event(
        member=member,
        event_type=event_type,
        occurred_at=at or timezone.now(),
        idempotency_key=key,
        **extra,
    ).event


def nps_survey(**fields) -> Survey:
    """An NPS survey after purchases: an NPS question and an optional free-text question."""
    survey = SurveyFactory(**fields)
    QuestionFactory(survey=survey, kind=QuestionKind.NPS, text="How likely...?", order=1)
    QuestionFactory(survey=survey, kind=QuestionKind.TEXT, text="Why?", required=False, order=2)
    return survey


def csat_survey(**fields) -> Survey:
    fields.setdefault("kind", SurveyKind.CSAT)
    fields.setdefault("trigger_event_type", "support_contact")
    survey = SurveyFactory(**fields)
    QuestionFactory(survey=survey, kind=QuestionKind.RATING, text="How satisfied?", order=1)
    return survey


def question(survey: Survey, kind: str) -> Question:
    return survey.questions.get(kind=kind)


def sent_invitation(survey, member, **fields) -> Invitation:
    """An invitation emailed just now, open for two weeks."""
    now = timezone.now()
    defaults = {
        "token": services.new_token(),
        "status": InvitationStatus.SENT,
        "send_after": now,
        "sent_at": now,
        "expires_at": now + timedelta(days=14),
    }
    return Invitation.objects.create(survey=survey, member=member, **{**defaults, **fields})
