"""Batches: the bulk path (events that cannot touch the ledger) answers and moves stages
exactly as the one-by-one path does, with a bounded number of queries."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from journeys.exceptions import InvalidEvent
from journeys.models import CustomerEvent, MemberJourney, StageRule, StageRuleKind, StageTransition
from journeys.services import EventData, ingest_event, ingest_events
from tests.rewards.helpers import balance

from .factories import EarningRuleFactory, MemberFactory, TouchpointFactory

STEPS = [("page_view", 0), ("cart_add", 1), ("share", 2), ("page_view", 3), ("review", 4)]


def path(member):
    return [
        (t.from_stage.slug if t.from_stage else None, t.to_stage.slug, t.cause, t.event.event_type)
        for t in StageTransition.objects.filter(member=member)
        .select_related("from_stage", "to_stage", "event")
        .order_by("at", "id")
    ]


def comparable(answer):
    return {k: v for k, v in answer.items() if k not in ("event_id", "member_id", "member_number")}


@pytest.mark.django_db
def test_bulk_path_gives_the_same_answers_and_stages_as_one_by_one(stages):
    StageRule.objects.filter(kind=StageRuleKind.ADVOCACY_EVENTS).update(count=2)
    start = timezone.now() - timedelta(hours=1)
    one, other = MemberFactory(), MemberFactory()

    singles = [
        ingest_event(
            member=one,
            event_type=event_type,
            occurred_at=start + timedelta(minutes=minute),
            idempotency_key=f"one-{minute}",
        )
        for event_type, minute in STEPS
    ]
    batched = ingest_events(
        events=[
            EventData(
                member=other,
                event_type=event_type,
                occurred_at=start + timedelta(minutes=minute),
                idempotency_key=f"other-{minute}",
            )
            for event_type, minute in STEPS
        ]
    )

    assert [comparable(r.response) for r in batched] == [comparable(r.response) for r in singles]
    assert [r.stage.slug for r in batched] == ["awareness"] + ["consideration"] * 3 + ["advocate"]
    assert path(other) == path(one)
    assert path(other)[-1] == ("consideration", "advocate", "event", "review")
    journey = MemberJourney.objects.get(member=other)
    assert (journey.stage.slug, journey.last_activity_at) == (
        "advocate",
        start + timedelta(minutes=4),
    )


@pytest.mark.django_db
def test_bulk_path_handles_repeats_bad_items_and_keys_stored_before():
    member = MemberFactory()
    touchpoint = TouchpointFactory(slug="home", channel="web")
    now = timezone.now()
    before = ingest_event(
        member=member, event_type="page_view", occurred_at=now, idempotency_key="seen"
    )

    def view(key, **extra):
        return EventData(
            member=member,
            event_type=extra.pop("event_type", "page_view"),
            occurred_at=extra.pop("occurred_at", now),
            idempotency_key=key,
            **extra,
        )

    outcomes = ingest_events(
        events=[
            view("seen"),
            view("new-1", touchpoint="home"),
            view("new-1"),
            view("bad-1", touchpoint="nowhere"),
            view("bad-2", occurred_at=now + timedelta(hours=1)),
            view("new-2", event_type="cart_add", amount=Decimal("12.00")),
        ]
    )

    assert outcomes[0].created is False and outcomes[0].event.pk == before.event.pk
    assert outcomes[1].created is True
    assert outcomes[1].event.touchpoint == touchpoint and outcomes[1].event.channel == "web"
    assert outcomes[2].created is False and outcomes[2].event.pk == outcomes[1].event.pk
    assert isinstance(outcomes[3], InvalidEvent) and "touchpoint" in outcomes[3].errors
    assert isinstance(outcomes[4], InvalidEvent) and "occurred_at" in outcomes[4].errors
    assert outcomes[5].event.currency == "EUR"
    assert outcomes[5].response["stage"]["slug"] == "consideration"
    assert CustomerEvent.objects.filter(member=member).count() == 3
    assert CustomerEvent.objects.get(idempotency_key="new-1").response == outcomes[2].event.response


@pytest.mark.django_db
def test_members_with_ledger_events_take_the_one_by_one_path_in_the_same_batch():
    EarningRuleFactory(points_per_unit=Decimal("1"))
    buyer, browser = MemberFactory(), MemberFactory()
    now = timezone.now()

    outcomes = ingest_events(
        events=[
            EventData(member=buyer, event_type="page_view", occurred_at=now, idempotency_key="b-1"),
            EventData(
                member=buyer,
                event_type="purchase",
                occurred_at=now,
                idempotency_key="b-2",
                amount=Decimal("30.00"),
                order_id="o-1",
            ),
            EventData(member=browser, event_type="page_view", occurred_at=now, idempotency_key="v"),
            EventData(member=buyer, event_type="page_view", occurred_at=now, idempotency_key="b-3"),
        ]
    )

    assert [o.created for o in outcomes] == [True, True, True, True]
    assert outcomes[1].response["points_awarded"] == 30
    assert outcomes[3].response["balance"] == 30  # after the purchase before it
    assert outcomes[0].response["balance"] == 0
    assert balance(buyer) == 30
    assert MemberJourney.objects.get(member=buyer).stage.slug == "first-purchase"
    assert MemberJourney.objects.get(member=browser).stage.slug == "awareness"


@pytest.mark.django_db
def test_a_batch_of_page_views_takes_a_bounded_number_of_queries(django_assert_max_num_queries):
    members = [MemberFactory() for _ in range(20)]
    now = timezone.now()
    events = [
        EventData(
            member=members[i % 20],
            event_type="page_view",
            occurred_at=now - timedelta(seconds=i),
            idempotency_key=f"pv-{i}",
        )
        for i in range(200)
    ]

    with django_assert_max_num_queries(20):
        outcomes = ingest_events(events=events)

    assert all(o.created for o in outcomes)
    assert CustomerEvent.objects.count() == 200
    assert StageTransition.objects.count() == 20


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_sent_concurrently_stores_each_event_once():
    import threading

    from django.db import connection

    members = [MemberFactory() for _ in range(5)]
    now = timezone.now()
    events = [
        EventData(
            member=members[i % 5],
            event_type="cart_add" if i < 5 else "page_view",  # each member's newest
            occurred_at=now - timedelta(seconds=i),
            idempotency_key=f"same-{i}",
        )
        for i in range(60)
    ]
    count = 4
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def send(index: int) -> None:
        try:
            barrier.wait()
            results[index] = ingest_events(events=events)
        except Exception as exc:  # noqa: BLE001 - asserted below
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(isinstance(r, list) for r in results), results
    outcomes = [o for r in results for o in r]
    assert not [o for o in outcomes if isinstance(o, InvalidEvent)]
    assert sum(o.created for o in outcomes) == 60
    for position in range(60):
        assert len({r[position].event.pk for r in results}) == 1
    assert CustomerEvent.objects.count() == 60
    assert MemberJourney.objects.count() == 5
    assert StageTransition.objects.count() == 10  # awareness, then consideration, per member


def test_chunks_hold_whole_members(monkeypatch):
    from types import SimpleNamespace

    from journeys.services import batch

    monkeypatch.setattr(batch, "CHUNK", 2)
    events = [SimpleNamespace(member=SimpleNamespace(pk=pk)) for pk in (1, 1, 1, 2, 3, 3, 4)]

    assert list(batch._chunks(events, list(range(7)))) == [[0, 1, 2], [3, 4, 5], [6]]


def _mixed_batch(members, now, prefix):
    events = []
    for n, member in enumerate(members):
        for minute in range(3):
            kind = "purchase" if minute == 1 else "page_view"
            events.append(
                EventData(
                    member=member,
                    event_type=kind,
                    occurred_at=now + timedelta(minutes=minute),
                    idempotency_key=f"{prefix}-{n}-{minute}",
                    amount=Decimal(f"{10 * (n + 1)}.00") if kind == "purchase" else None,
                )
            )
    # A key sent again for another member, in a later chunk: the first event's answer.
    events.append(
        EventData(
            member=members[-1],
            event_type="page_view",
            occurred_at=now,
            idempotency_key=f"{prefix}-0-0",
        )
    )
    return events


@pytest.mark.django_db
def test_a_batch_in_several_chunks_answers_as_in_one(monkeypatch):
    from journeys.services import batch

    EarningRuleFactory(points_per_unit=Decimal("1"))
    now = timezone.now() - timedelta(hours=1)
    whole = [MemberFactory() for _ in range(4)]
    chunked = [MemberFactory() for _ in range(4)]

    in_one = ingest_events(events=_mixed_batch(whole, now, "whole"))
    monkeypatch.setattr(batch, "CHUNK", 2)
    in_chunks = ingest_events(events=_mixed_batch(chunked, now, "chunked"))

    assert [comparable(o.response) for o in in_chunks] == [comparable(o.response) for o in in_one]
    assert [o.created for o in in_chunks] == [True] * 12 + [False]
    assert in_chunks[-1].event.pk == in_chunks[0].event.pk
    assert [balance(m) for m in chunked] == [balance(m) for m in whole] == [10, 20, 30, 40]
    assert [path(m) for m in chunked] == [path(m) for m in whole]
