"""The batch API's lean item validation gives exactly the serializer's attributes, and leaves
everything it does not plainly accept to the serializer (whose errors are the answer)."""

from decimal import Decimal

import pytest
from rest_framework import serializers

from journeys.api import EventSerializer, _lean_attrs, _Slow
from rewards.services.bulk import csv_line, csv_value

PLAIN = [
    {"member_id": 7, "event_type": "page_view", "idempotency_key": "k-1"},
    {
        "member_id": 7,
        "event_type": "purchase",
        "idempotency_key": "  k-2  ",
        "amount": "12.5",
        "currency": "eur",
        "order_id": " A-1 ",
        "channel": "web",
        "touchpoint": "web-shop",
        "properties": {"path": "/p/1", "n": 3, "nested": {"a": [1, None]}},
        "occurred_at": "2025-01-31T14:05:00+01:00",
    },
    {"member_number": "", "external_id": "crm-9", "event_type": "x", "idempotency_key": "k"},
    {"member_number": "1234", "event_type": "login", "idempotency_key": "k", "channel": ""},
    {"member_id": 1, "event_type": "purchase", "idempotency_key": "k", "amount": None},
    {"member_id": 1, "event_type": "purchase", "idempotency_key": "k", "amount": 3},
    {"member_id": 1, "event_type": "page_view", "idempotency_key": "k", "unknown": 1},
    {  # every text at its longest
        "member_number": "1" * 12,
        "external_id": "e" * 64,
        "event_type": "t" * 50,
        "idempotency_key": "k" * 190,
        "currency": "abc",
        "order_id": "o" * 100,
        "touchpoint": "t" * 100,
    },
]

SLOW = [
    {"member_id": "7", "event_type": "page_view", "idempotency_key": "k"},  # text id
    {"member_id": True, "event_type": "page_view", "idempotency_key": "k"},
    {"member_id": 0, "event_type": "page_view", "idempotency_key": "k"},
    {"member_id": 2**63, "event_type": "page_view", "idempotency_key": "k"},
    {"event_type": "page_view", "idempotency_key": "k"},  # no member
    {"member_number": "", "event_type": "page_view", "idempotency_key": "k"},
    {"member_id": 1, "idempotency_key": "k"},  # no type
    {"member_id": 1, "event_type": "  ", "idempotency_key": "k"},
    {"member_id": 1, "event_type": "page_view", "idempotency_key": "k" * 191},
    {"member_number": "1" * 13, "event_type": "page_view", "idempotency_key": "k"},
    {"external_id": "e" * 65, "event_type": "page_view", "idempotency_key": "k"},
    {"member_id": 1, "event_type": "t" * 51, "idempotency_key": "k"},
    {"member_id": 1, "event_type": "e", "idempotency_key": "k", "order_id": "o" * 101},
    {"member_id": 1, "event_type": "e", "idempotency_key": "k", "touchpoint": "t" * 101},
    {"member_id": 1, "event_type": "page_view", "idempotency_key": "k\x00"},
    {"member_id": 1, "event_type": "page_view", "idempotency_key": "k\ud800"},
    {"member_id": 1, "event_type": "page_view", "idempotency_key": 5},
    {"member_id": 1, "event_type": "page_view", "idempotency_key": "k", "channel": "fax"},
    {"member_id": 1, "event_type": "page_view", "idempotency_key": "k", "channel": None},
    {"member_id": 1, "event_type": "page_view", "idempotency_key": "k", "touchpoint": "a b"},
    {"member_id": 1, "event_type": "page_view", "idempotency_key": "k", "currency": "EURO"},
    {"member_id": 1, "event_type": "page_view", "idempotency_key": "k", "properties": []},
    {"member_id": 1, "event_type": "page_view", "idempotency_key": "k", "properties": None},
    {"member_id": 1, "event_type": "e", "idempotency_key": "k", "properties": {"a": "\x00"}},
    {"member_id": 1, "event_type": "purchase", "idempotency_key": "k", "amount": "1.234"},
    {"member_id": 1, "event_type": "purchase", "idempotency_key": "k", "amount": "NaN"},
    {"member_id": 1, "event_type": "e", "idempotency_key": "k", "occurred_at": "yesterday"},
    {"member_id": 1, "event_type": "e", "idempotency_key": "k", "occurred_at": "1899-12-31T00:00Z"},
]


@pytest.mark.parametrize("item", PLAIN)
def test_plain_items_get_the_serializers_attributes(item):
    serializer = EventSerializer()

    assert _lean_attrs(item, serializer.fields) == dict(serializer.run_validation(item))


@pytest.mark.parametrize("item", SLOW)
def test_anything_unusual_is_left_to_the_serializer(item):
    serializer = EventSerializer()

    with pytest.raises(_Slow):
        _lean_attrs(item, serializer.fields)
    if item.get("member_id") == "7" or item.get("idempotency_key") == 5:
        serializer.run_validation(item)  # valid, only not plain: the serializer takes it
    else:
        with pytest.raises(serializers.ValidationError):
            serializer.run_validation(item)


def test_csv_line_writes_each_field_as_csv_value_does():
    from datetime import UTC, date, datetime

    row = (
        None,
        "",
        'a "quoted", text\nwith a newline',
        0,
        -12,
        True,
        False,
        Decimal("12.50"),
        datetime(2025, 1, 31, 13, 5, tzinfo=UTC),
        date(2025, 1, 31),
        1.5,
    )

    assert csv_line(row) == ",".join(csv_value(value) for value in row)


def test_copy_rows_stores_each_value_as_given(db):
    from datetime import UTC, datetime

    from django.db import connection

    from rewards.services.bulk import copy_rows

    rows = [
        ("", None, 'a "quoted", text\nwith a newline', 0, True, Decimal("12.50")),
        ("x", "y", "", -12, False, None),
    ]
    moment = datetime(2025, 1, 31, 13, 5, tzinfo=UTC)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE copy_check (a text, b text, c text, d integer, e boolean, "
            "f numeric(12, 2), g timestamptz)"
        )
        copy_rows("copy_check", "abcdefg", [(*row, moment) for row in rows])
        cursor.execute("SELECT a, b, c, d, e, f, g FROM copy_check ORDER BY d DESC")
        stored = cursor.fetchall()

    assert stored == [(*row, moment) for row in rows]


# -- the per-process configuration cache follows the admin's changes -------------------------


@pytest.mark.django_db(transaction=True)
def test_a_custom_event_type_added_after_the_list_was_cached_is_accepted_at_once():
    from django.utils import timezone

    from journeys.exceptions import InvalidEvent
    from journeys.services import ingest_event
    from tests.journeys.factories import AllowedEventTypeFactory, MemberFactory

    member = MemberFactory()

    def send(key: str):
        return ingest_event(
            member=member, event_type="store_visit", occurred_at=timezone.now(), idempotency_key=key
        )

    with pytest.raises(InvalidEvent):
        send("visit-1")  # the process now holds the list of allowed custom types
    AllowedEventTypeFactory(name="store_visit")

    assert send("visit-2").created


@pytest.mark.django_db(transaction=True)
def test_a_stage_rule_changed_after_the_journey_was_cached_applies_at_once():
    from django.utils import timezone

    from journeys.models import JourneyStage, StageRule
    from journeys.services import ingest_event
    from tests.journeys.factories import AllowedEventTypeFactory, MemberFactory

    AllowedEventTypeFactory(name="store_visit")
    member = MemberFactory()

    def send(key: str):
        return ingest_event(
            member=member, event_type="store_visit", occurred_at=timezone.now(), idempotency_key=key
        )

    assert send("visit-1").stage is None  # the process now holds the journey's stages and rules
    stage = JourneyStage.objects.get(slug="consideration")
    StageRule.objects.create(stage=stage, kind="on_event_type", event_type="store_visit")

    assert send("visit-2").stage == stage


@pytest.mark.django_db(transaction=True)
def test_a_program_setting_changed_after_it_was_cached_applies_at_once():
    from decimal import Decimal

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from journeys.services import ingest_event
    from rewards.selectors import program_settings
    from tests.journeys.factories import MemberFactory

    member = MemberFactory()

    def buy(key: str):
        return ingest_event(
            member=member,
            event_type="purchase",
            occurred_at=timezone.now(),
            idempotency_key=key,
            amount=Decimal("5.00"),
        )

    program_settings()  # the row exists (a first read creates it)
    assert buy("buy-1").event.currency == "EUR"  # the process now holds the settings row
    with CaptureQueriesContext(connection) as queries:
        buy("buy-2")
    whole_row_reads = [q for q in queries if '"rewards_programsettings"."currency"' in q["sql"]]
    assert whole_row_reads == []  # a hit reads the version only
    settings_row = program_settings()
    settings_row.currency = "USD"
    settings_row.save()

    assert buy("buy-3").event.currency == "USD"
