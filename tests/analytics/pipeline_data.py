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
