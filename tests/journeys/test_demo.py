import io
import random

import pytest
from django.db.models import Count, Max
from django.utils import timezone

from journeys.demo import seed_journeys
from journeys.models import CustomerEvent, MemberJourney, StageTransition, Touchpoint
from members.demo import seed_members

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_members(db):
    seed_members(rng=random.Random(7), stdout=io.StringIO(), count=40)


def _counts():
    return (
        CustomerEvent.objects.count(),
        StageTransition.objects.count(),
        MemberJourney.objects.count(),
        Touchpoint.objects.count(),
    )


def test_seed_journeys_is_idempotent(demo_members, stages):
    seed_journeys(rng=random.Random(1), stdout=io.StringIO())
    first = _counts()
    seed_journeys(rng=random.Random(2), stdout=io.StringIO())

    assert first[0] > 40 * 2
    assert _counts() == first


def test_seeded_events_are_plausible_and_stages_agree_with_them(demo_members, stages):
    seed_journeys(rng=random.Random(1), stdout=io.StringIO())

    types = dict(CustomerEvent.objects.values_list("event_type").annotate(n=Count("id")).order_by())
    assert types["signup"] == 40
    assert types["purchase"] > 40
    assert {"page_view", "cart_add", "cart_abandon"} <= set(types)
    assert not CustomerEvent.objects.filter(occurred_at__gt=timezone.now()).exists()
    assert not CustomerEvent.objects.filter(event_type="purchase", amount__isnull=True).exists()
    assert CustomerEvent.objects.values("channel").distinct().count() >= 4
    assert not CustomerEvent.objects.filter(touchpoint__isnull=True).exists()

    # Purchases per member vary a lot (gamma-distributed rates, dropout): some buy many times.
    per_member = list(
        CustomerEvent.objects.filter(event_type="purchase")
        .values("member_id")
        .annotate(n=Count("id"))
        .values_list("n", flat=True)
    )
    assert max(per_member) >= 4 * min(per_member)

    assert MemberJourney.objects.count() == 40
    last_moves = {
        row["member_id"]: row["last"]
        for row in StageTransition.objects.values("member_id").annotate(last=Max("at"))
    }
    for journey in MemberJourney.objects.all():
        latest = (
            StageTransition.objects.filter(member_id=journey.member_id)
            .order_by("-at", "-id")
            .first()
        )
        assert journey.stage_id == latest.to_stage_id
        assert journey.entered_at == last_moves[journey.member_id]
    buyers = set(
        CustomerEvent.objects.filter(event_type="purchase").values_list("member_id", flat=True)
    )
    entered_first_purchase = set(
        StageTransition.objects.filter(to_stage=stages["first-purchase"]).values_list(
            "member_id", flat=True
        )
    )
    assert entered_first_purchase == buyers
