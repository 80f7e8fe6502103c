import io
import random

import pytest
from django.db.models import Count

from feedback.demo import seed_feedback
from feedback.models import (
    Answer,
    FollowUp,
    Invitation,
    InvitationCursor,
    InvitationStatus,
    SurveyResponse,
)
from journeys.demo import seed_journeys
from journeys.models import CustomerEvent
from members.demo import DEMO_MEMBER_EMAIL, seed_members
from rewards.demo import seed_rewards
from rewards.models import PointsAccount, PointsTransaction
from rewards.services import check_ledger

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_world(db):
    out = io.StringIO()
    seed_members(rng=random.Random(7), stdout=out, count=300)
    seed_rewards(rng=random.Random(7), stdout=out)
    seed_journeys(rng=random.Random(7), stdout=out)


def counts():
    return (
        Invitation.objects.count(),
        SurveyResponse.objects.count(),
        Answer.objects.count(),
        FollowUp.objects.count(),
        PointsTransaction.objects.filter(source="survey").count(),
    )


def test_seed_feedback_is_idempotent_and_plausible(demo_world):
    seed_feedback(rng=random.Random(1), stdout=io.StringIO())
    first = counts()
    seed_feedback(rng=random.Random(2), stdout=io.StringIO())
    assert counts() == first

    invitations, responses, _, follow_ups, awards = first
    assert invitations > 20
    assert 0 < responses < invitations + 300
    assert 0 < follow_ups < responses
    assert awards == responses  # every completion earned its points, once
    kinds = set(SurveyResponse.objects.values_list("survey__kind", flat=True))
    assert kinds == {"nps", "csat", "ces"}
    # Detractors and only detractors have follow-ups; some are resolved with an outcome.
    for response in SurveyResponse.objects.prefetch_related("answers").select_related("follow_up"):
        scored = next(a for a in response.answers.all() if a.metric)
        unhappy = (scored.metric == "nps" and scored.score <= 6) or (
            scored.metric == "csat" and scored.score <= 2
        )
        assert hasattr(response, "follow_up") is unhappy
    resolved = FollowUp.objects.filter(status="resolved")
    assert resolved.exists()
    assert not resolved.filter(outcome="").exists()
    # One invitation per trigger event; the task will not invite anyone for the history.
    assert not (
        Invitation.objects.exclude(trigger_event=None)
        .values("member", "trigger_event")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )
    cursor = InvitationCursor.objects.get()
    assert cursor.last_event_id == CustomerEvent.objects.order_by("-pk").first().pk
    # The demo login has a survey waiting in the portal.
    assert Invitation.objects.filter(
        member__email=DEMO_MEMBER_EMAIL, status=InvitationStatus.SENT
    ).exists()
    for account in PointsAccount.objects.filter(member__in=SurveyResponse.objects.values("member"))[
        :20
    ]:
        assert check_ledger(account.member) == []
