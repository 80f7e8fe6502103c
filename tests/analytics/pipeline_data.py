"""Small hand-made histories for the pipeline tests: events through journeys' ingestion service
at given local days in the program's timezone."""

import itertools
from datetime import date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

from journeys.services import ingest_event
from rewards.selectors import program_settings
from tests.members.factories import MemberFactory

_keys = itertools.count()


def zone() -> ZoneInfo:
    return ZoneInfo(program_settings().timezone)


def at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    """A local time on a day in the program's timezone."""
    return datetime.combine(day, time(hour, minute), tzinfo=zone())


def member(enrolled: date, **extra):
    return MemberFactory(enrolled_at=at(enrolled, 9), **extra)


def event(who, event_type: str, day: date, hour: int = 12, **extra):
    return ingest_event(
        member=who,
        event_type=event_type,
        occurred_at=at(day, hour),
        idempotency_key=f"test-{next(_keys)}",
        **extra,
    )


def purchase(who, day: date, amount: str, hour: int = 12, order_id: str = ""):
    order_id = order_id or f"order-{next(_keys)}"
    return event(
        who, "purchase", day, hour, amount=Decimal(amount), currency="EUR", order_id=order_id
    )


def refund(who, day: date, order_id: str, amount: str):
    return event(who, "refund", day, amount=Decimal(amount), currency="EUR", order_id=order_id)


def hand_checked_history() -> dict:
    """The members the pipeline and KPI tests check by hand (local days, as of 30 June 2026).

    A: enrolls 10 January, buys 10 May and twice on 20 June (one purchase day), views a page on
    25 June. B: enrolls 15 June, buys 16 June, buys 18 June but that order is refunded on 19
    June. C: enrolls 1 March, only views a page on 15 May."""
    a = member(date(2026, 1, 10))
    b = member(date(2026, 6, 15))
    c = member(date(2026, 3, 1))
    purchase(a, date(2026, 5, 10), "30.00")
    purchase(a, date(2026, 6, 20), "50.00", hour=10)
    purchase(a, date(2026, 6, 20), "10.00", hour=18)
    event(a, "page_view", date(2026, 6, 25))
    purchase(b, date(2026, 6, 16), "40.00")
    purchase(b, date(2026, 6, 18), "100.00", order_id="B-2")
    refund(b, date(2026, 6, 19), "B-2", "100.00")
    event(c, "page_view", date(2026, 5, 15))
    return {"a": a, "b": b, "c": c}
