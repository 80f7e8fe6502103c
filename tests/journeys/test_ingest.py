"""The ingestion service: validation, points through the engine, idempotency, refunds."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from journeys.exceptions import InvalidEvent
from journeys.models import CustomerEvent, EventSource, MemberJourney, StageTransition
from journeys.services import EventData, ingest_event, ingest_events
from members.services import close_member
from rewards.models import EarningRuleKind, PointsTransaction, Purchase, TransactionKind
from rewards.services import redeem_reward
from tests.rewards.factories import RewardFactory
from tests.rewards.helpers import assert_consistent, balance

from .factories import AllowedEventTypeFactory, EarningRuleFactory, MemberFactory, TouchpointFactory


def purchase(member, key="order-1", amount="25.00", **extra):
    fields = {
        "member": member,
        "event_type": "purchase",
        "occurred_at": timezone.now(),
        "idempotency_key": key,
        "amount": Decimal(amount),
        "order_id": key,
        **extra,
    }
    return ingest_event(**fields)


@pytest.fixture
def one_point_per_euro(db):
    return EarningRuleFactory(name="Base", points_per_unit=Decimal("1"))


@pytest.mark.django_db
def test_purchase_awards_points_stores_the_event_and_enters_first_purchase(one_point_per_euro):
    member = MemberFactory()

    result = purchase(member, amount="25.40", channel="web")

    assert result.created is True
    assert result.award.points == 25
    assert result.balance == 25 == balance(member)
    assert result.stage.slug == "first-purchase"
    event = CustomerEvent.objects.get(member=member)
    assert (event.event_type, event.amount, event.currency) == ("purchase", Decimal("25.40"), "EUR")
    assert event.points_awarded == 25
    assert event.source == EventSource.API
    assert event.received_at is not None
    answer = result.response
    assert answer["event_id"] == event.pk
    assert answer["points_awarded"] == 25
    assert answer["breakdown"] == [
        {
            "rule_id": one_point_per_euro.pk,
            "rule_name": "Base",
            "points": 25,
            "note": answer["breakdown"][0]["note"],
        }
    ]
    assert answer["balance"] == 25
    assert answer["stage"] == {"slug": "first-purchase", "name": "First purchase"}
    assert MemberJourney.objects.get(member=member).stage.slug == "first-purchase"
    transition = StageTransition.objects.get(member=member)
    assert (transition.from_stage, transition.to_stage.slug) == (None, "first-purchase")
    assert transition.event_id == event.pk
    assert_consistent(member)


@pytest.mark.django_db
def test_same_key_twice_returns_the_first_answer_and_changes_nothing(one_point_per_euro):
    member = MemberFactory()
    first = purchase(member, key="k-1", amount="30.00")
    one_point_per_euro.points_per_unit = Decimal("10")  # would give a different answer now
    one_point_per_euro.save()

    again = purchase(member, key="k-1", amount="30.00")

    assert again.created is False
    assert again.response == first.response
    assert again.event.pk == first.event.pk
    assert again.award.points == 30
    assert CustomerEvent.objects.count() == 1
    assert PointsTransaction.objects.filter(member=member).count() == 1
    assert StageTransition.objects.filter(member=member).count() == 1
    assert balance(member) == 30


@pytest.mark.django_db(transaction=True)
def test_same_key_sent_concurrently_is_stored_and_awarded_once():
    EarningRuleFactory(points_per_unit=Decimal("1"))
    member = MemberFactory()
    count = 12
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def send(index: int) -> None:
        try:
            barrier.wait()
            results[index] = purchase(member, key="race-1", amount="40.00")
        except Exception as exc:  # noqa: BLE001 - asserted below
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(not isinstance(r, Exception) for r in results), results
    assert sum(r.created for r in results) == 1
    assert len({r.event.pk for r in results}) == 1
    assert {r.response["points_awarded"] for r in results} == {40}
    assert CustomerEvent.objects.filter(idempotency_key="race-1").count() == 1
    assert PointsTransaction.objects.filter(member=member).count() == 1
    assert Purchase.objects.filter(member=member).count() == 1
    assert StageTransition.objects.filter(member=member).count() == 1
    assert balance(member) == 40
    assert_consistent(member)


@pytest.mark.django_db(transaction=True)
def test_concurrent_events_of_one_new_member_each_count_once():
    """Different keys at once for a member without a journey row yet: one row, every event."""
    member = MemberFactory()
    count = 8
    barrier = threading.Barrier(count)
    errors: list = []

    def send(index: int) -> None:
        try:
            barrier.wait()
            ingest_event(
                member=member,
                event_type="page_view",
                occurred_at=timezone.now(),
                idempotency_key=f"view-{index}",
            )
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert CustomerEvent.objects.filter(member=member).count() == count
    assert MemberJourney.objects.filter(member=member).count() == 1
    assert StageTransition.objects.filter(member=member).count() == 1  # → awareness, once


@pytest.mark.django_db
def test_refund_event_takes_back_the_orders_points(one_point_per_euro):
    member = MemberFactory()
    purchase(member, key="order-9", amount="50.00")
    assert balance(member) == 50

    result = ingest_event(
        member=member,
        event_type="refund",
        occurred_at=timezone.now(),
        idempotency_key="refund-order-9",
        order_id="order-9",
    )

    assert result.created is True
    assert result.award.points == -50
    assert result.balance == 0 == balance(member)
    assert result.response["breakdown"][0]["points"] == -50
    assert result.event.points_awarded == -50
    reversal = PointsTransaction.objects.get(member=member, kind=TransactionKind.REVERSE)
    assert (reversal.points, reversal.source_ref) == (-50, "order-9")
    assert Purchase.objects.get(member=member, order_id="order-9").refunded_at is not None
    assert_consistent(member)


@pytest.mark.django_db
def test_refund_after_points_were_spent_takes_back_what_is_left(one_point_per_euro):
    member = MemberFactory()
    purchase(member, key="order-5", amount="150.00")
    redeem_reward(member=member, reward=RewardFactory(points_cost=100), idempotency_key="r-1")

    result = ingest_event(
        member=member,
        event_type="refund",
        occurred_at=timezone.now(),
        idempotency_key="refund-5",
        order_id="order-5",
    )

    assert result.award.points == -50
    assert "100 already spent" in result.award.lines[0].note
    assert balance(member) == 0
    assert_consistent(member)


@pytest.mark.django_db
def test_second_refund_of_an_order_takes_nothing_more(one_point_per_euro):
    member = MemberFactory()
    purchase(member, key="order-7", amount="20.00")
    purchase(member, key="order-8", amount="30.00")
    ingest_event(
        member=member,
        event_type="refund",
        occurred_at=timezone.now(),
        idempotency_key="refund-a",
        order_id="order-7",
    )

    second = ingest_event(
        member=member,
        event_type="refund",
        occurred_at=timezone.now(),
        idempotency_key="refund-b",
        order_id="order-7",
    )

    assert second.award.points == 0
    assert second.award.lines[0].rule_name == "Order already refunded"
    assert balance(member) == 30


@pytest.mark.django_db
def test_fixed_rule_event_awards_and_non_earning_event_writes_no_ledger_rows():
    EarningRuleFactory(kind=EarningRuleKind.FIXED, event_type="review", points=15)
    member = MemberFactory()

    review = ingest_event(
        member=member, event_type="review", occurred_at=timezone.now(), idempotency_key="rv-1"
    )
    view = ingest_event(
        member=member, event_type="page_view", occurred_at=timezone.now(), idempotency_key="pv-1"
    )

    assert review.award.points == 15
    assert view.award.points == 0
    assert view.balance == 15
    assert PointsTransaction.objects.filter(member=member).count() == 1


@pytest.mark.django_db
def test_page_view_takes_few_queries(django_assert_max_num_queries):
    member = MemberFactory()
    ingest_event(
        member=member, event_type="page_view", occurred_at=timezone.now(), idempotency_key="pv-0"
    )

    # key check, stages+rules, earning types, balance, savepoint pair, journey lock, event insert
    with django_assert_max_num_queries(9):
        ingest_event(
            member=member,
            event_type="page_view",
            occurred_at=timezone.now(),
            idempotency_key="pv-1",
        )


@pytest.mark.django_db
def test_touchpoint_by_slug_sets_the_channel_when_none_is_given():
    touchpoint = TouchpointFactory(slug="checkout-app", channel="mobile_app")
    member = MemberFactory()

    result = ingest_event(
        member=member,
        event_type="cart_add",
        occurred_at=timezone.now(),
        idempotency_key="c-1",
        touchpoint="checkout-app",
        amount=Decimal("12.00"),
    )

    assert result.event.touchpoint == touchpoint
    assert result.event.channel == "mobile_app"
    assert result.event.currency == "EUR"


@pytest.mark.django_db
def test_custom_event_type_is_accepted_only_when_the_program_allows_it():
    member = MemberFactory()
    with pytest.raises(InvalidEvent) as rejected:
        ingest_event(
            member=member,
            event_type="store_visit",
            occurred_at=timezone.now(),
            idempotency_key="sv-1",
        )
    assert "Unknown event type 'store_visit'" in rejected.value.errors["event_type"][0]

    AllowedEventTypeFactory(name="store_visit")
    result = ingest_event(
        member=member, event_type="store_visit", occurred_at=timezone.now(), idempotency_key="sv-1"
    )
    assert result.created


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"occurred_at": timedelta(minutes=6)}, "occurred_at", "in the future"),
        ({"amount": Decimal("-1.00")}, "amount", "must not be negative"),
        ({"amount": None}, "amount", "A purchase needs an amount"),
        ({"amount": Decimal("1.005")}, "amount", "2 after the decimal point"),
        ({"touchpoint": "nowhere"}, "touchpoint", "Unknown touchpoint 'nowhere'"),
        ({"event_type": "Bad Type"}, "event_type", "Lower-case letters"),
        ({"channel": "fax"}, "channel", "One of"),
        ({"currency": "EURO"}, "currency", "three-letter"),
        ({"idempotency_key": " "}, "idempotency_key", "required"),
        ({"event_type": "refund", "order_id": ""}, "order_id", "needs the order id"),
    ],
)
def test_bad_events_are_rejected_with_field_errors_and_nothing_is_written(changes, field, message):
    member = MemberFactory()
    fields = {
        "member": member,
        "event_type": "purchase",
        "occurred_at": timezone.now(),
        "idempotency_key": "bad-1",
        "amount": Decimal("10.00"),
        "order_id": "o-1",
    }
    for name, value in changes.items():
        fields[name] = fields[name] + value if isinstance(value, timedelta) else value

    with pytest.raises(InvalidEvent) as rejected:
        ingest_event(**fields)

    assert message in " ".join(rejected.value.errors[field])
    assert CustomerEvent.objects.count() == 0
    assert PointsTransaction.objects.count() == 0


@pytest.mark.django_db
def test_small_clock_skew_is_accepted():
    member = MemberFactory()
    result = ingest_event(
        member=member,
        event_type="page_view",
        occurred_at=timezone.now() + timedelta(minutes=4),
        idempotency_key="skew-1",
    )
    assert result.created


@pytest.mark.django_db
def test_naive_time_and_closed_member_are_rejected():
    member = MemberFactory()
    with pytest.raises(InvalidEvent) as naive:
        ingest_event(
            member=member,
            event_type="page_view",
            occurred_at=timezone.now().replace(tzinfo=None),
            idempotency_key="n-1",
        )
    assert "time zone" in naive.value.errors["occurred_at"][0]

    member = close_member(member=member)
    with pytest.raises(InvalidEvent) as closed:
        ingest_event(
            member=member, event_type="page_view", occurred_at=timezone.now(), idempotency_key="n-2"
        )
    assert "closed" in closed.value.errors["member"][0]


@pytest.mark.django_db
def test_batch_answers_each_item_and_keeps_going_past_bad_ones(one_point_per_euro):
    alice, bob = MemberFactory(), MemberFactory()
    purchase(alice, key="seen-before", amount="5.00")
    now = timezone.now()

    def item(member, key, **extra):
        return EventData(
            member=member,
            event_type=extra.pop("event_type", "purchase"),
            occurred_at=extra.pop("occurred_at", now),
            idempotency_key=key,
            amount=extra.pop("amount", Decimal("10.00")),
            order_id=key,
            **extra,
        )

    outcomes = ingest_events(
        events=[
            item(bob, "b-1"),
            item(alice, "seen-before", amount=Decimal("5.00")),
            item(alice, "a-neg", amount=Decimal("-3.00")),
            item(alice, "a-1", amount=Decimal("20.00")),
            item(bob, "b-future", occurred_at=now + timedelta(hours=1)),
            item(bob, "b-1"),  # the same key twice in one batch
        ]
    )

    assert [type(o).__name__ for o in outcomes] == [
        "IngestResult",
        "IngestResult",
        "InvalidEvent",
        "IngestResult",
        "InvalidEvent",
        "IngestResult",
    ]
    assert [getattr(o, "created", None) for o in outcomes] == [True, False, None, True, None, False]
    assert "amount" in outcomes[2].errors
    assert "occurred_at" in outcomes[4].errors
    assert outcomes[5].event.pk == outcomes[0].event.pk
    assert balance(alice) == 25
    assert balance(bob) == 10
    assert outcomes[3].response["balance"] == 25
    assert CustomerEvent.objects.count() == 3
    assert_consistent(alice)
    assert_consistent(bob)
