"""Abandoned carts: a cart_add without a purchase within the wait becomes one cart_abandon."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django_celery_beat.models import PeriodicTask

from journeys import tasks
from journeys.models import CustomerEvent, EventSource
from journeys.selectors import journey_settings
from journeys.services import detect_abandoned_carts, ingest_event

from .factories import MemberFactory, TouchpointFactory

START = datetime(2025, 3, 3, 12, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))


def send(member, event_type, key, at, **extra):
    return ingest_event(
        member=member, event_type=event_type, occurred_at=at, idempotency_key=key, **extra
    )


def abandons(member=None):
    rows = CustomerEvent.objects.filter(event_type="cart_abandon")
    return rows.filter(member=member) if member else rows


@pytest.mark.django_db
def test_cart_without_purchase_becomes_one_abandon_even_when_run_twice():
    member = MemberFactory()
    touchpoint = TouchpointFactory(slug="web-cart")
    with time_machine.travel(START, tick=False):
        cart = send(
            member,
            "cart_add",
            "cart-1",
            START,
            touchpoint="web-cart",
            amount=Decimal("35.00"),
            properties={"sku": "ABC"},
        )

    with time_machine.travel(START + timedelta(hours=23), tick=False):
        assert detect_abandoned_carts() == 0
    with time_machine.travel(START + timedelta(hours=25), tick=False):
        assert detect_abandoned_carts() == 1
        assert detect_abandoned_carts() == 0
        assert tasks.detect_abandoned_carts() == 0

    abandon = abandons(member).get()
    assert abandon.occurred_at == START + timedelta(hours=24)
    assert abandon.idempotency_key == f"cart_abandon:{cart.event.pk}"
    assert abandon.source == EventSource.SYSTEM
    assert abandon.touchpoint == touchpoint
    assert abandon.amount == Decimal("35.00")
    assert abandon.properties == {"sku": "ABC", "cart_add_event_id": cart.event.pk}


@pytest.mark.django_db
def test_purchase_within_the_wait_means_no_abandon():
    member = MemberFactory()
    with time_machine.travel(START + timedelta(hours=3), tick=False):
        send(member, "cart_add", "cart-1", START)
        send(member, "purchase", "p-1", START + timedelta(hours=2), amount=Decimal("9.00"))
    with time_machine.travel(START + timedelta(days=2), tick=False):
        assert detect_abandoned_carts() == 0
    assert not abandons().exists()


@pytest.mark.django_db
def test_several_adds_close_together_are_one_cart_and_another_members_purchase_does_not_count():
    member, other = MemberFactory(), MemberFactory()
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        send(member, "cart_add", "cart-1", START)
        last = send(member, "cart_add", "cart-2", START + timedelta(minutes=30))
        send(other, "purchase", "p-other", START + timedelta(minutes=40), amount=Decimal("5.00"))
    with time_machine.travel(START + timedelta(days=2), tick=False):
        assert detect_abandoned_carts() == 1
    assert abandons(member).get().properties["cart_add_event_id"] == last.event.pk


@pytest.mark.django_db
def test_the_wait_is_a_setting():
    settings_row = journey_settings()
    settings_row.cart_abandon_hours = 2
    settings_row.save()
    member = MemberFactory()
    with time_machine.travel(START, tick=False):
        send(member, "cart_add", "cart-1", START)
    with time_machine.travel(START + timedelta(hours=3), tick=False):
        assert detect_abandoned_carts() == 1
    assert abandons(member).get().occurred_at == START + timedelta(hours=2)


@pytest.mark.django_db
def test_detection_and_nightly_stage_jobs_are_scheduled():
    tasks_by_name = dict(PeriodicTask.objects.values_list("task", "enabled"))
    assert tasks_by_name.get("journeys.tasks.detect_abandoned_carts") is True
    assert tasks_by_name.get("journeys.tasks.evaluate_stages") is True
