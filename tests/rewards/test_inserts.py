"""insert_one writes the row save() would write, and the member look-up of the event paths
builds the Member the ORM would."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from journeys.models import CustomerEvent
from journeys.selectors import find_member
from members.models import Member
from rewards.models import ProgramSettings
from rewards.services.inserts import insert_one
from tests.journeys.factories import MemberFactory, TouchpointFactory

pytestmark = pytest.mark.django_db


def _row(model, pk) -> dict:
    return {
        field.attname: getattr(model.objects.get(pk=pk), field.attname)
        for field in model._meta.concrete_fields
        if not field.primary_key
    }


def _fields(obj) -> dict:
    return {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}


def test_insert_one_writes_what_save_writes():
    member = MemberFactory()
    touchpoint = TouchpointFactory()
    values = {
        "member": member,
        "event_type": "purchase",
        "occurred_at": timezone.now() - timedelta(days=1),
        "received_at": timezone.now(),
        "channel": "web",
        "touchpoint": touchpoint,
        "amount": Decimal("12.50"),
        "currency": "EUR",
        "order_id": "o-1",
        "properties": {"sku": ["a", "b"], "n": 2, "note": "ünïcode"},
        "source": "api",
        "points_awarded": 12,
        "response": {"balance": 12, "stage": None},
    }
    saved = CustomerEvent.objects.create(idempotency_key="by-save", **values)
    inserted = insert_one(CustomerEvent(idempotency_key="by-insert", **values))

    assert inserted.pk is not None and inserted.pk != saved.pk
    assert inserted._state.adding is False
    by_save, by_insert = _row(CustomerEvent, saved.pk), _row(CustomerEvent, inserted.pk)
    assert by_insert.pop("idempotency_key") == "by-insert"
    by_save.pop("idempotency_key")
    assert by_insert == by_save


def test_insert_one_sets_auto_now_fields_and_raises_integrity_errors():
    before = timezone.now()
    row = insert_one(ProgramSettings(pk=None, name="second"))  # auto_now updated_at
    assert row.updated_at >= before
    assert ProgramSettings.objects.get(pk=row.pk).updated_at == row.updated_at

    member = MemberFactory()
    event = {"member": member, "event_type": "page_view", "occurred_at": timezone.now()}
    insert_one(CustomerEvent(idempotency_key="once", received_at=timezone.now(), **event))
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_one(CustomerEvent(idempotency_key="once", received_at=timezone.now(), **event))


def test_find_member_builds_the_member_the_orm_builds():
    referrer = MemberFactory()
    member = MemberFactory(external_id="CRM-7", first_name="Ana")
    Member.objects.filter(pk=member.pk).update(
        birth_date=timezone.now().date() - timedelta(days=9000),
        referred_by=referrer,
        marketing_consent=True,
        consent_changed_at=timezone.now(),
    )
    expected = _fields(Member.objects.get(pk=member.pk))

    for identifiers in (
        {"member_id": member.pk},
        {"member_number": member.member_number},
        {"external_id": "CRM-7"},
        {"member_id": member.pk, "member_number": member.member_number, "external_id": "CRM-7"},
    ):
        found = find_member(**identifiers)
        assert _fields(found) == expected
        assert found._state.adding is False and found.referred_by == referrer

    assert find_member(member_id=member.pk, external_id="CRM-8") is None  # must agree
    assert find_member(member_id=referrer.pk, member_number=member.member_number) is None
    assert find_member() is None
