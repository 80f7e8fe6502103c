"""Event ingestion: validate, store, award points through the rewards engine, move the stage,
all in one transaction, and answer what happened.

The idempotency key is unique on CustomerEvent and the first answer is stored on the event,
so a repeated key gets exactly the first answer. Two requests racing with one key: the unique
index makes the second wait for the first to commit, then fail; it rolls back everything it
did and returns the first event's stored answer.

Everything a request needs besides the member (stage rules, custom event types, which event
types can earn, touchpoints, balances) is read once per request or per batch (IngestContext);
batches are in batch.py.
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError
from django.utils import timezone

from members.models import Member, MemberStatus
from rewards.models import PointsAccount, ProgramSettings
from rewards.services import (
    Award,
    AwardLine,
    EventInput,
    award_for_event,
    config_cache,
    reverse_order,
)
from rewards.services import sql as statements
from rewards.services.bulk import taken_keys
from rewards.services.inserts import defer_insert, insert_one

from .. import selectors
from ..exceptions import InvalidEvent
from ..models import (
    EVENT_TYPE_PATTERN,
    STANDARD_EVENT_TYPES,
    AllowedEventType,
    CustomerEvent,
    EventSource,
    EventType,
    JourneyStage,
    StageRule,
    Touchpoint,
    TouchpointChannel,
)
from .stages import JourneyConfig, database_counter, lock_journey_for_event, save_moves

logger = logging.getLogger(__name__)

# What IngestContext takes from the configuration cache: saving one of these starts a new version.
config_cache.watch(JourneyStage, StageRule, AllowedEventType)

MAX_CLOCK_SKEW = timedelta(minutes=5)
KEY_MAX_LENGTH = 190
AWARD_KEY_PREFIX = "event:"
MAX_AMOUNT = Decimal("9999999999.99")
CHANNELS = frozenset(TouchpointChannel.values)  # .values builds a new list on every call
SOURCES = frozenset(EventSource.values)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class EventData:
    """One event to ingest (what ingest_event takes as keyword arguments)."""

    member: Member
    event_type: str
    occurred_at: datetime
    idempotency_key: str
    channel: str = ""
    touchpoint: Touchpoint | str | None = None
    amount: Decimal | None = None
    currency: str = ""
    order_id: str = ""
    properties: dict | None = None
    source: str = EventSource.API


@dataclass
class IngestResult:
    """What an event did. `created` is False for a repeated idempotency key; then the
    other fields come from the first answer."""

    created: bool
    event: CustomerEvent
    award: Award
    balance: int
    stage: JourneyStage | None

    @property
    def response(self) -> dict:
        """The answer the API gives, the same for the first request and every repeat."""
        return {"event_id": self.event.pk, **self.event.response}


class IngestContext:
    """Reads shared by every event of one request or batch, each done at most once; the
    program's configuration comes from the per-process cache (rewards.services.config_cache)
    while the settings row's version says it has not changed."""

    def __init__(self, settings_version=None) -> None:
        self.now = timezone.now()
        self._settings_version = settings_version
        self._settings: ProgramSettings | None = None
        self._config: JourneyConfig | None = None
        self._earning: set[str] | None = None
        self.custom_types: set[str] | None = None
        self.touchpoints: dict[str, Touchpoint] | None = None
        self.balances: dict[int, int] = {}
        self.existing: dict[str, CustomerEvent] | None = None
        self.journeys: dict = {}  # a batch chunk's locked journey states

    @property
    def settings(self) -> ProgramSettings:
        if self._settings is None:
            self._settings = config_cache.current_settings(self._settings_version)
        return self._settings

    @property
    def version(self):
        return self.settings.updated_at

    @property
    def config(self) -> JourneyConfig:
        if self._config is None:
            self._config = config_cache.get("journey_config", self.version, JourneyConfig.load)
        return self._config

    def prefetch(self, events: Sequence[EventData]) -> None:
        """Batch: one query each for known keys, custom types, touchpoints and balances."""
        keys = [e.idempotency_key for e in events if e.idempotency_key]
        taken = taken_keys("journeys_customerevent", keys)  # usually none
        self.existing = (
            {e.idempotency_key: e for e in CustomerEvent.objects.filter(idempotency_key__in=taken)}
            if taken
            else {}
        )
        self.custom_types = selectors.allowed_custom_event_types({e.event_type for e in events})
        self.touchpoints = selectors.touchpoints_by_slug(
            e.touchpoint for e in events if isinstance(e.touchpoint, str)
        )

    def find_existing(self, key: str) -> CustomerEvent | None:
        if self.existing is not None:
            return self.existing.get(key)
        return CustomerEvent.objects.filter(idempotency_key=key).first()

    def is_allowed(self, event_type: str) -> bool:
        if event_type in STANDARD_EVENT_TYPES:
            return True
        if self.custom_types is not None:
            return event_type in self.custom_types
        allowed = config_cache.get(
            "custom_event_types", self.version, selectors.allowed_custom_event_types
        )
        return event_type in allowed

    def touchpoint(self, slug: str) -> Touchpoint | None:
        if self.touchpoints is None:
            return selectors.touchpoints_by_slug([slug]).get(slug)
        return self.touchpoints.get(slug)

    def earns(self, event_type: str) -> bool:
        if event_type in (EventType.PURCHASE, EventType.REFUND):
            return True
        if self._earning is None:
            self._earning = config_cache.get(
                "earning_event_types", self.version, selectors.earning_event_types
            )
        return event_type in self._earning

    def currency(self) -> str:
        return self.settings.currency

    def balance(self, member_id: int) -> int:
        if member_id not in self.balances:
            row = PointsAccount.objects.filter(member_id=member_id).values_list("balance")
            self.balances[member_id] = next(iter(row), (0,))[0]
        return self.balances[member_id]


# -- public ----------------------------------------------------------------------------------


def ingest_event(
    *,
    member: Member,
    event_type: str,
    occurred_at: datetime,
    idempotency_key: str,
    channel: str = "",
    touchpoint: Touchpoint | str | None = None,
    amount: Decimal | None = None,
    currency: str = "",
    order_id: str = "",
    properties: dict | None = None,
    source: str = EventSource.API,
    settings_version=None,
) -> IngestResult:
    """Validate, store, award and move the stage, in one transaction.

    Raises InvalidEvent (field errors) for bad input. The same idempotency key again returns
    the first result with created=False and changes nothing. A caller that has read the
    configuration's version (journeys.selectors.find_member_and_version) passes it."""
    data = EventData(
        member=member,
        event_type=event_type,
        occurred_at=occurred_at,
        idempotency_key=idempotency_key,
        channel=channel,
        touchpoint=touchpoint,
        amount=amount,
        currency=currency,
        order_id=order_id,
        properties=properties,
        source=source,
    )
    with config_cache.allowed():
        return ingest_one(data, IngestContext(settings_version))


# -- the work --------------------------------------------------------------------------------


def ingest_one(data: EventData, ctx: IngestContext) -> IngestResult:
    """A repeated key is found by the unique index when the event is written (then the work is
    rolled back and the first answer returned), or before when the batch looked keys up, or
    when the repeat does not validate (it still gets the first answer)."""
    key = (data.idempotency_key or "").strip()
    if key and ctx.existing is not None:
        existing = ctx.existing.get(key)
        if existing is not None:
            return duplicate_result(existing)
    try:
        touchpoint, currency = validate_event(data, ctx)
    except InvalidEvent:
        existing = CustomerEvent.objects.filter(idempotency_key=key).first() if key else None
        if existing is not None:
            return duplicate_result(existing)
        raise
    for attempt in range(2):
        try:
            with statements.atomic():
                return _write(data, ctx, touchpoint=touchpoint, currency=currency)
        except IntegrityError:
            existing = CustomerEvent.objects.filter(idempotency_key=key).first()
            if existing is not None:
                return duplicate_result(existing)
            if attempt:
                raise
            # Another unique row (an order recorded at the same moment) won a race: once more.
    raise AssertionError("unreachable")


def validate_event(data: EventData, ctx: IngestContext) -> tuple[Touchpoint | None, str]:
    errors: dict[str, list[str]] = {}

    def error(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    key = (data.idempotency_key or "").strip()
    if not key:
        error("idempotency_key", "An idempotency key is required.")
    elif len(key) > KEY_MAX_LENGTH:
        error("idempotency_key", f"At most {KEY_MAX_LENGTH} characters.")

    if not data.event_type or not re.match(EVENT_TYPE_PATTERN, data.event_type):
        error("event_type", "Lower-case letters, digits and underscores, starting with a letter.")
    elif not ctx.is_allowed(data.event_type):
        error(
            "event_type",
            f"Unknown event type '{data.event_type}'. Use a standard type "
            f"({', '.join(sorted(STANDARD_EVENT_TYPES))}) or one the program allows.",
        )

    if data.member.status == MemberStatus.CLOSED:
        error("member", "This member's account is closed.")

    occurred_at = data.occurred_at
    if not isinstance(occurred_at, datetime):
        error("occurred_at", "A date and time is required.")
    elif timezone.is_naive(occurred_at):
        error("occurred_at", "Give the time zone (e.g. 2025-01-31T14:05:00+01:00).")
    elif occurred_at > ctx.now + MAX_CLOCK_SKEW:
        error(
            "occurred_at",
            f"This is in the future ({occurred_at.isoformat()}); at most "
            f"{int(MAX_CLOCK_SKEW.total_seconds() // 60)} minutes of clock skew are allowed.",
        )

    amount = data.amount
    if amount is not None:
        if not isinstance(amount, Decimal) or not amount.is_finite():
            error("amount", "A decimal number is required.")
        elif amount < 0:
            error("amount", "The amount must not be negative.")
        elif amount != amount.quantize(CENT) or amount > MAX_AMOUNT:
            error("amount", "At most 10 digits before and 2 after the decimal point.")
    elif data.event_type == EventType.PURCHASE:
        error("amount", "A purchase needs an amount.")

    currency = (data.currency or "").strip().upper()
    if currency and (len(currency) != 3 or not currency.isalpha()):
        error("currency", "A three-letter ISO 4217 code, e.g. EUR.")
    if data.event_type == EventType.REFUND and not data.order_id:
        error("order_id", "A refund needs the order id of the purchase it refunds.")
    if len(data.order_id or "") > 100:
        error("order_id", "At most 100 characters.")
    if data.channel and data.channel not in CHANNELS:
        error("channel", f"One of: {', '.join(TouchpointChannel.values)}.")
    if data.properties is not None and not isinstance(data.properties, dict):
        error("properties", "An object is required.")
    if data.source not in SOURCES:
        error("source", f"One of: {', '.join(EventSource.values)}.")

    touchpoint = data.touchpoint
    if isinstance(touchpoint, str):
        found = ctx.touchpoint(touchpoint) if touchpoint else None
        if touchpoint and found is None:
            error("touchpoint", f"Unknown touchpoint '{touchpoint}'.")
        touchpoint = found
    if errors:
        raise InvalidEvent(errors)
    if amount is not None and not currency:
        currency = ctx.currency()
    return touchpoint, currency


def _write(
    data: EventData, ctx: IngestContext, *, touchpoint: Touchpoint | None, currency: str
) -> IngestResult:
    member = data.member
    key = data.idempotency_key.strip()
    channel = data.channel or (touchpoint.channel if touchpoint else "")
    award, balance = _award(
        data, ctx, key=key, channel=channel, touchpoint=touchpoint, currency=currency
    )
    journey = lock_journey_for_event(member_id=member.pk, activity_at=data.occurred_at)
    state = journey.state
    if balance is None:
        balance = journey.balance
    ctx.balances[member.pk] = balance
    moves = ctx.config.on_event(
        state, data.event_type, data.occurred_at, database_counter(member.pk)
    )
    stage = ctx.config.stage(state.stage_id)
    event = CustomerEvent(
        id=journey.event_id,
        member=member,
        event_type=data.event_type,
        occurred_at=data.occurred_at,
        received_at=ctx.now,
        channel=channel,
        touchpoint=touchpoint,
        amount=data.amount,
        currency=currency,
        order_id=data.order_id or "",
        properties=data.properties or {},
        idempotency_key=key,
        source=data.source,
        points_awarded=award.points,
        response=build_answer(data, award=award, balance=balance, stage=stage, moved=bool(moves)),
    )
    if event.pk is None:
        insert_one(event)
    else:  # with the transaction's last round trip
        defer_insert(event, with_pk=True)
    save_moves(
        journey_id=journey.journey_id,
        member_id=member.pk,
        state=state,
        moves=moves,
        event_id=event.pk,
    )
    return IngestResult(created=True, event=event, award=award, balance=balance, stage=stage)


def _award(
    data: EventData,
    ctx: IngestContext,
    *,
    key: str,
    channel: str,
    touchpoint: Touchpoint | None,
    currency: str,
) -> tuple[Award, int | None]:
    """Points for the event (a refund takes the order's points back) and the balance after
    (None when unknown yet: the journey lock reads it)."""
    member = data.member
    known = ctx.balances.get(member.pk)
    award_key = f"{AWARD_KEY_PREFIX}{key}"
    if data.event_type == EventType.REFUND:
        txn = reverse_order(
            member=member,
            order_id=data.order_id,
            idempotency_key=award_key,
            reason=f"Order {data.order_id} refunded",
        )
        if txn is None:
            return Award(0, [AwardLine(None, "Order earned no points", 0, data.order_id)]), known
        if txn.idempotency_key != award_key:
            line = AwardLine(None, "Order already refunded", 0, data.order_id)
            return Award(0, [line], txn), known
        points = txn.points + txn.pending_points
        shortfall = (txn.breakdown or {}).get("shortfall") or 0
        note = f"{shortfall} already spent, not taken back" if shortfall else ""
        line = AwardLine(None, f"Refund of order {data.order_id}", points, note)
        return Award(points, [line], txn), txn.balance_after
    if not ctx.earns(data.event_type):
        return Award(0, []), known
    award = award_for_event(
        member=member,
        event=EventInput(
            event_type=data.event_type,
            occurred_at=data.occurred_at,
            amount=data.amount,
            currency=currency,
            channel=channel,
            touchpoint=touchpoint.slug if touchpoint else "",
            order_id=data.order_id or "",
            properties=data.properties or {},
        ),
        idempotency_key=award_key,
        settings_row=ctx.settings,
        savepoint=False,  # a lost race on the key fails the event's unique key too: see ingest_one
    )
    if award.transaction is not None:
        return award, award.transaction.balance_after
    return award, known


def build_answer(
    data: EventData, *, award: Award, balance: int, stage: JourneyStage | None, moved: bool
) -> dict:
    """The answer stored with the event (the API adds the event id)."""
    return {
        "member_id": data.member.pk,
        "member_number": data.member.member_number,
        "event_type": data.event_type,
        "occurred_at": data.occurred_at.isoformat(),
        "points_awarded": award.points,
        "breakdown": [line.as_dict() for line in award.lines],
        "balance": balance,
        "stage": {"slug": stage.slug, "name": stage.name} if stage else None,
        "stage_changed": moved,
    }


def duplicate_result(event: CustomerEvent) -> IngestResult:
    answer = event.response or {}
    lines = [AwardLine(**line) for line in answer.get("breakdown", [])]
    stage = answer.get("stage")
    return IngestResult(
        created=False,
        event=event,
        award=Award(event.points_awarded, lines),
        balance=answer.get("balance", 0),
        stage=JourneyStage(slug=stage["slug"], name=stage["name"]) if stage else None,
    )
