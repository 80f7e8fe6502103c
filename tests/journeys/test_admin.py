"""The journey's admin screens: marketers configure, everybody else reads events."""

import pytest
from django.utils import timezone

from journeys.models import JourneyStage
from journeys.services import ingest_event
from tests.conftest import make_staff

from .factories import MemberFactory, TouchpointFactory


def login(client, role):
    user = make_staff(f"user-{role.lower()}", role)
    client.force_login(user)
    return user


@pytest.mark.django_db
def test_marketer_sees_the_stages_in_order_with_their_rules(client):
    login(client, "Marketer")
    response = client.get("/admin/journeys/journeystage/")
    assert response.status_code == 200
    text = response.content.decode()
    text = text[text.index('id="result_list"') :]
    names = [stage.name for stage in JourneyStage.objects.all()]
    positions = [text.index(f">{name}<") for name in names]
    assert positions == sorted(positions)
    assert "2 purchases in 365 days" in text
    assert "90 days without events" in text
    stage = JourneyStage.objects.get(slug="repeat")
    assert client.get(f"/admin/journeys/journeystage/{stage.pk}/change/").status_code == 200
    assert client.get("/admin/journeys/touchpoint/add/").status_code == 200
    assert client.get("/admin/journeys/journeysettings/").status_code == 302


@pytest.mark.django_db
def test_events_list_filters_by_type_and_cannot_be_edited(client):
    member = MemberFactory()
    TouchpointFactory(slug="home")
    for key, event_type in [("a", "page_view"), ("b", "cart_add")]:
        ingest_event(
            member=member,
            event_type=event_type,
            occurred_at=timezone.now(),
            idempotency_key=key,
            touchpoint="home",
        )
    login(client, "Support")

    response = client.get("/admin/journeys/customerevent/", {"event_type": "cart_add"})

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert client.get("/admin/journeys/customerevent/add/").status_code == 403
    assert client.get("/admin/journeys/journeystage/add/").status_code == 403
    assert client.get("/admin/journeys/stagetransition/").status_code == 200
