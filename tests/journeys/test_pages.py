import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from journeys.models import (
    CustomerEvent,
    MemberJourney,
    StageTransition,
    TouchpointChannel,
    TransitionCause,
)
from journeys.registry import touchpoint_annotators
from rewards.models import PointsAccount
from rewards.selectors import program_settings
from tests.conftest import PASSWORD, make_staff
from tests.journeys.factories import MemberFactory, TouchpointFactory
from tests.rewards.factories import TierFactory
from tests.rewards.helpers import at

pytestmark = pytest.mark.django_db

ACTIVITY = "/portal/activity/"
MAP = "/journeys/map/"


def _event(member, key, *, when, event_type="purchase", **extra):
    return CustomerEvent.objects.create(
        member=member,
        event_type=event_type,
        occurred_at=when,
        received_at=when,
        idempotency_key=key,
        **extra,
    )


def _login_member(client, member):
    client.force_login(member.user)


# -- the member's activity page --------------------------------------------------------------


def test_activity_shows_own_events_newest_first_with_points_in_program_time(client, stages):
    member = MemberFactory(email="ann@example.com", password=PASSWORD)
    other = MemberFactory(email="bob@example.com", password=PASSWORD)
    till = TouchpointFactory(name="Store till", channel=TouchpointChannel.STORE)
    _event(member, "a1", when=at(2025, 3, 1, 9, 0), event_type="page_view", channel="web")
    _event(
        member,
        "a2",
        when=at(2025, 3, 2, 23, 30),
        touchpoint=till,
        channel="store",
        amount=Decimal("42.50"),
        currency="EUR",
        points_awarded=42,
    )
    _event(other, "b1", when=at(2025, 3, 3, 10, 0), order_id="SECRET-ORDER")
    MemberJourney.objects.create(member=member, stage=stages["first-purchase"])
    _login_member(client, member)

    response = client.get(ACTIVITY)

    assert response.status_code == 200
    html = response.content.decode()
    assert "SECRET-ORDER" not in html
    assert [e.idempotency_key for e in response.context["page"]] == ["a2", "a1"]
    # 23:30 in Amsterdam is 22:30 UTC: shown in the program's zone.
    assert "2 Mar 2025, 23:30" in html
    assert "Store till" in html and "42.50 EUR" in html and "+42" in html
    assert "Page view" in html
    assert "First purchase" in html


def test_activity_requires_a_member(client):
    response = client.get(ACTIVITY)
    assert response.status_code == 302
    assert response["Location"].startswith("/portal/login/")


def test_activity_is_paginated_in_pages_of_25(client, stages):
    member = MemberFactory(password=PASSWORD)
    start = timezone.now() - timedelta(days=60)
    for n in range(30):
        _event(member, f"k{n}", when=start + timedelta(hours=n), event_type="page_view")
    _login_member(client, member)

    first = client.get(ACTIVITY)
    second = client.get(ACTIVITY, {"page": 2})

    assert len(first.context["page"].object_list) == 25
    assert first.context["page"].object_list[0].idempotency_key == "k29"
    assert [e.idempotency_key for e in second.context["page"]] == [
        f"k{n}" for n in range(4, -1, -1)
    ]
    assert "Page 2 of 2" in second.content.decode()


def test_activity_query_count_does_not_grow_with_events(
    client, stages, django_assert_max_num_queries
):
    member = MemberFactory(password=PASSWORD)
    touchpoints = [TouchpointFactory() for _ in range(5)]
    start = timezone.now() - timedelta(days=60)
    for n in range(25):
        _event(member, f"q{n}", when=start + timedelta(hours=n), touchpoint=touchpoints[n % 5])
    MemberJourney.objects.create(member=member, stage=stages["repeat"])
    _login_member(client, member)
    client.get(ACTIVITY)  # warm the program settings row

    with django_assert_max_num_queries(8):
        response = client.get(ACTIVITY)
    assert response.status_code == 200
    assert "Repeat" in response.content.decode()


# -- the journey map -------------------------------------------------------------------------


@pytest.fixture
def journey_data(stages):
    """Three members with hand-made histories (days after 1 Jan 2025):

    ann: awareness d0 -> consideration d2 -> first purchase d6 -> repeat d16   (now: repeat)
    bob: awareness d0 -> consideration d4                                       (consideration)
    cyd: awareness d0 -> first purchase d10 (skipped consideration)           (first purchase)

    Awareness: 3 entered, 2 later entered consideration (67%); stays 2, 4, 10 days, median 4.
    Consideration: 2 entered, 1 later entered first purchase (50%); completed stay: 4 days.
    First purchase: 2 entered, 1 later entered repeat (50%); completed stay: 10 days.
    """
    silver = TierFactory(name="Silver")
    ann = MemberFactory(email="ann@example.com", enrolled_at=at(2025, 1, 1, 12))
    bob = MemberFactory(email="bob@example.com", enrolled_at=at(2025, 1, 20, 12))
    cyd = MemberFactory(email="cyd@example.com", enrolled_at=at(2025, 2, 3, 12))
    PointsAccount.objects.update_or_create(member=ann, defaults={"tier": silver})
    day0 = at(2025, 1, 1, 12)
    histories = {
        ann: [("awareness", 0), ("consideration", 2), ("first-purchase", 6), ("repeat", 16)],
        bob: [("awareness", 0), ("consideration", 4)],
        cyd: [("awareness", 0), ("first-purchase", 10)],
    }
    for member, moves in histories.items():
        previous = None
        for slug, day in moves:
            StageTransition.objects.create(
                member=member,
                from_stage=previous,
                to_stage=stages[slug],
                at=day0 + timedelta(days=day),
                cause=TransitionCause.EVENT,
            )
            previous = stages[slug]
        MemberJourney.objects.create(member=member, stage=previous, entered_at=day0)
    web = TouchpointFactory(name="Product page", channel="web", stage=stages["consideration"])
    app = TouchpointFactory(name="App cart", channel="mobile_app", stage=stages["consideration"])
    till = TouchpointFactory(name="Store till", channel="store", stage=stages["repeat"])
    for n in range(3):
        _event(ann, f"w{n}", when=day0, event_type="page_view", touchpoint=web, channel="web")
    _event(bob, "w9", when=day0, event_type="page_view", touchpoint=web, channel="web")
    _event(bob, "a1", when=day0, event_type="cart_add", touchpoint=app, channel="mobile_app")
    _event(ann, "t1", when=day0, touchpoint=till, channel="store", amount=Decimal("9"))
    return {"ann": ann, "bob": bob, "cyd": cyd, "silver": silver}


def _columns(response):
    return {c.stage.slug: c for c in response.context["map"].stages}


@pytest.fixture
def analyst_client(client, analyst):
    client.force_login(analyst)
    return client


def test_map_counts_conversion_median_and_touchpoints(
    analyst_client, journey_data, django_assert_max_num_queries
):
    program_settings()  # the row exists, as in production
    # 12, plus one per registered touchpoint annotator (feedback's satisfaction).
    with django_assert_max_num_queries(12 + len(touchpoint_annotators)):
        response = analyst_client.get(MAP)

    assert response.status_code == 200
    columns = _columns(response)
    assert [c.stage.slug for c in response.context["map"].stages][:4] == [
        "awareness",
        "consideration",
        "first-purchase",
        "repeat",
    ]
    assert columns["awareness"].members == 0
    assert columns["consideration"].members == 1
    assert columns["first-purchase"].members == 1
    assert columns["repeat"].members == 1
    assert (columns["awareness"].entered, columns["awareness"].converted) == (3, 2)
    assert (columns["consideration"].entered, columns["consideration"].converted) == (2, 1)
    assert (columns["first-purchase"].entered, columns["first-purchase"].converted) == (2, 1)
    assert columns["repeat"].converted == 0
    assert columns["awareness"].median_days == pytest.approx(4)
    assert columns["consideration"].median_days == pytest.approx(4)
    assert columns["first-purchase"].median_days == pytest.approx(10)
    assert columns["repeat"].median_days is None
    volumes = {t.touchpoint.name: t.events for t in columns["consideration"].touchpoints}
    assert volumes == {"Product page": 4, "App cart": 1}
    assert columns["repeat"].touchpoint_events == 1
    html = response.content.decode()
    assert "67%" in html and "50%" in html


def test_map_filters_by_cohort_tier_and_channel(analyst_client, journey_data):
    january = _columns(analyst_client.get(MAP, {"cohort": "2025-01-01"}))
    assert january["awareness"].entered == 2  # ann and bob enrolled in January
    assert (january["consideration"].entered, january["consideration"].converted) == (2, 1)
    assert january["first-purchase"].members == 0

    silver = _columns(analyst_client.get(MAP, {"tier": journey_data["silver"].pk}))
    assert silver["awareness"].entered == 1
    assert silver["repeat"].members == 1
    assert silver["consideration"].touchpoint_events == 3  # ann's page views only

    app = _columns(analyst_client.get(MAP, {"channel": "mobile_app"}))
    assert app["awareness"].entered == 1  # only bob used the app
    assert app["consideration"].members == 1
    assert {t.touchpoint.name: t.events for t in app["consideration"].touchpoints} == {
        "App cart": 1
    }


def test_map_downloads_the_table_as_csv(analyst_client, journey_data):
    response = analyst_client.get(MAP, {"format": "csv", "cohort": "2025-01-01"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    by_stage = {row["stage"]: row for row in rows}
    assert by_stage["Awareness"]["ever_entered"] == "2"
    assert by_stage["Awareness"]["conversion_to_next"] == "1.0000"
    assert by_stage["Consideration"]["conversion_to_next"] == "0.5000"
    assert by_stage["Consideration"]["members_now"] == "1"
    assert by_stage["Awareness"]["median_days_in_stage"] == "3.00"  # stays of 2 and 4 days
    assert by_stage["Lapsed"]["conversion_to_next"] == ""


@pytest.mark.parametrize("role", ["Analyst", "Marketer"])
def test_map_is_open_to_analysts_and_marketers(client, stages, role):
    client.force_login(make_staff("someone", role))
    assert client.get(MAP).status_code == 200


def test_map_is_open_to_superusers(client, stages):
    client.force_login(make_staff("root", None, is_superuser=True))
    assert client.get(MAP).status_code == 200


def test_map_refuses_support_staff_and_members(client, stages):
    client.force_login(make_staff("helper", "Support"))
    assert client.get(MAP).status_code == 403
    member = MemberFactory(password=PASSWORD)
    client.force_login(member.user)
    assert client.get(MAP).status_code == 403


def test_map_sends_anonymous_visitors_to_the_admin_login(client, stages):
    response = client.get(MAP)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert "next=/journeys/map/" in response["Location"]


# -- the admin timeline ----------------------------------------------------------------------


def test_support_sees_the_member_timeline_and_stage_moves_in_the_admin(
    client, support, journey_data
):
    ann = journey_data["ann"]
    for n in range(55):
        _event(ann, f"many{n}", when=at(2025, 2, 1) + timedelta(hours=n), event_type="page_view")
    client.force_login(support)

    response = client.get(reverse("admin:members_member_change", args=[ann.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "activity timeline (latest 50 events)" in html.lower()
    assert "journey stage moves" in html.lower()
    formsets = {
        f.formset.model.__name__: f.formset for f in response.context["inline_admin_formsets"]
    }
    assert len(formsets["CustomerEvent"].forms) == 50
    assert len(formsets["StageTransition"].forms) == 4
    assert formsets["StageTransition"].forms[0].instance.to_stage.slug == "repeat"
    assert 'name="events-0-event_type"' not in html  # read-only
