"""POST /api/v1/events/ and /api/v1/events/batch/: answers, repeats and clear 400s."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from journeys.models import CustomerEvent
from members.services import create_api_key
from rewards.models import PointsTransaction
from tests.conftest import make_staff

from .factories import EarningRuleFactory, MemberFactory, TouchpointFactory

URL = "/api/v1/events/"
BATCH_URL = "/api/v1/events/batch/"


def event(member=None, key="e-1", **fields):
    body = {
        "event_type": "purchase",
        "occurred_at": timezone.now().isoformat(),
        "idempotency_key": key,
        "amount": "42.50",
        "order_id": key,
        **fields,
    }
    if member is not None and not {"member_id", "member_number", "external_id"} & set(fields):
        body["member_id"] = member.pk
    return body


@pytest.fixture
def rule(db):
    return EarningRuleFactory(name="Base", points_per_unit=Decimal("2"))


@pytest.mark.django_db
def test_purchase_answers_201_with_points_breakdown_balance_and_stage_then_200_on_repeat(api, rule):
    member = MemberFactory()

    first = api.post(URL, event(member, channel="web"), format="json")

    assert first.status_code == 201, first.content
    body = first.json()
    assert body["event_id"] == CustomerEvent.objects.get().pk
    assert body["member_number"] == member.member_number
    assert body["points_awarded"] == 85
    assert body["breakdown"][0]["rule_name"] == "Base"
    assert body["breakdown"][0]["points"] == 85
    assert body["balance"] == 85
    assert body["stage"] == {"slug": "first-purchase", "name": "First purchase"}

    again = api.post(URL, event(member, channel="web"), format="json")

    assert again.status_code == 200
    assert again.json() == body
    assert CustomerEvent.objects.count() == 1
    assert PointsTransaction.objects.count() == 1


@pytest.mark.django_db
def test_member_by_number_or_external_id(api):
    member = MemberFactory(external_id="CRM-5")
    by_number = api.post(
        URL,
        event(key="n-1", event_type="page_view", member_number=member.member_number),
        format="json",
    )
    by_external = api.post(
        URL, event(key="x-1", event_type="page_view", external_id="CRM-5"), format="json"
    )
    assert (by_number.status_code, by_external.status_code) == (201, 201)
    assert {by_number.json()["member_id"], by_external.json()["member_id"]} == {member.pk}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"member_id": 999999}, "member_id", "No member has this identifier"),
        ({"external_id": "nobody"}, "external_id", "No member has this identifier"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at", "in the future"),
        ({"amount": "-5.00"}, "amount", "must not be negative"),
        ({"touchpoint": "no-such-page"}, "touchpoint", "Unknown touchpoint"),
        ({"event_type": "teleport"}, "event_type", "Unknown event type 'teleport'"),
        ({"amount": None}, "amount", "A purchase needs an amount"),
        ({"amount": "1.234"}, "amount", "decimal places"),
        ({"channel": "fax"}, "channel", "not a valid choice"),
        ({"occurred_at": "yesterday"}, "occurred_at", "wrong format"),
        ({"idempotency_key": ""}, "idempotency_key", "blank"),
        ({"properties": {"note": "a\x00b"}}, "properties", "NUL"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api, fields, field, message):
    member = MemberFactory()

    response = api.post(URL, event(member, **fields), format="json")

    assert response.status_code == 400, response.content
    assert message in " ".join(response.json()[field])
    assert CustomerEvent.objects.count() == 0


@pytest.mark.django_db
def test_identifiers_of_two_different_members_are_a_400(api):
    one, two = MemberFactory(), MemberFactory(external_id="CRM-2")
    response = api.post(URL, event(member_id=one.pk, external_id="CRM-2"), format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"member_id", "external_id"}
    assert two.pk != one.pk


@pytest.mark.django_db
def test_no_member_identifier_is_a_400(api):
    response = api.post(URL, event(), format="json")
    assert response.status_code == 400
    assert "member_id" in response.json()


@pytest.mark.django_db
def test_touchpoint_and_properties_are_stored(api):
    touchpoint = TouchpointFactory(slug="product-page", channel="web")
    member = MemberFactory()
    response = api.post(
        URL,
        event(
            member,
            event_type="page_view",
            amount=None,
            touchpoint="product-page",
            properties={"url": "/p/1", "items": [1, 2]},
        ),
        format="json",
    )
    assert response.status_code == 201, response.content
    stored = CustomerEvent.objects.get()
    assert (stored.touchpoint, stored.channel) == (touchpoint, "web")
    assert stored.properties == {"url": "/p/1", "items": [1, 2]}


@pytest.mark.django_db
def test_sending_events_needs_the_add_customerevent_permission():
    member = MemberFactory()
    user = get_user_model().objects.create_user(username="no-rights")
    _, raw = create_api_key(user=user, name="k")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert client.post(URL, event(member), format="json").status_code == 403
    assert client.post(BATCH_URL, {"events": [event(member)]}, format="json").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Support", "Marketer"])
def test_support_and_marketer_may_send_events(role):
    user = make_staff(f"staff-{role}", role)
    assert user.has_perm("journeys.add_customerevent")


@pytest.mark.django_db
def test_batch_answers_each_item_created_duplicate_or_error(api, rule):
    alice, bob = MemberFactory(), MemberFactory(external_id="CRM-B")
    api.post(URL, event(alice, key="old-1", amount="10.00"), format="json")
    future = (timezone.now() + timedelta(hours=2)).isoformat()

    response = api.post(
        BATCH_URL,
        {
            "events": [
                event(alice, key="b-1", amount="5.00"),
                event(key="b-2", external_id="CRM-B", amount="7.00"),
                event(alice, key="old-1", amount="10.00"),
                event(key="b-3", member_id=123456789),
                event(alice, key="b-4", amount="-1.00"),
                event(alice, key="b-5", occurred_at=future),
                event(alice, key="b-6", event_type="teleport"),
                "not an object",
                event(alice, key="b-1", amount="5.00"),
                event(bob, key="b-7", event_type="review", amount=None),
            ]
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    statuses = [item["status"] for item in body["results"]]
    assert statuses == [
        "created",
        "created",
        "duplicate",
        "error",
        "error",
        "error",
        "error",
        "error",
        "duplicate",
        "created",
    ]
    assert [item["index"] for item in body["results"]] == list(range(10))
    assert (body["created"], body["duplicates"], body["errors"]) == (3, 2, 5)
    results = body["results"]
    assert results[0]["points_awarded"] == 10
    assert results[1]["member_id"] == bob.pk
    assert "member_id" in results[3]["errors"]
    assert "amount" in results[4]["errors"]
    assert "occurred_at" in results[5]["errors"]
    assert "event_type" in results[6]["errors"]
    assert results[8]["event_id"] == results[0]["event_id"]
    assert results[9]["stage"]["slug"] == "advocate"
    assert CustomerEvent.objects.count() == 4
    assert not CustomerEvent.objects.filter(idempotency_key__in=["b-3", "b-4", "b-5"]).exists()


@pytest.mark.django_db
def test_batch_of_more_than_1000_is_a_400_and_writes_nothing(api):
    member = MemberFactory()
    items = [event(member, key=f"k-{i}", event_type="page_view") for i in range(1001)]
    response = api.post(BATCH_URL, {"events": items}, format="json")
    assert response.status_code == 400
    assert "events" in response.json()
    assert CustomerEvent.objects.count() == 0


@pytest.mark.django_db
def test_batch_of_1000_is_accepted(api):
    members = [MemberFactory() for _ in range(5)]
    items = [
        event(members[i % 5], key=f"k-{i}", event_type="page_view", amount=None)
        for i in range(1000)
    ]
    response = api.post(BATCH_URL, {"events": items}, format="json")
    assert response.status_code == 200
    assert response.json()["created"] == 1000
    assert CustomerEvent.objects.count() == 1000


@pytest.mark.django_db
def test_empty_or_missing_batch_is_a_400(api):
    assert api.post(BATCH_URL, {"events": []}, format="json").status_code == 400
    assert api.post(BATCH_URL, {}, format="json").status_code == 400
