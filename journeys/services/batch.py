"""Batches of up to 1,000 events: each event atomic on its own, answered in the given order.

Events are taken member by member, each member's in time order, in chunks of one
transaction (whole members, about CHUNK events each). A chunk first creates the members'
missing points accounts and journey rows (outside its transaction), then locks all accounts
and all journeys in member id order, so two batches never wait on each other in a circle.

Every member without a refund in the chunk takes a bulk path: events are validated in
Python first (a bad one is answered as an error and left out), the points of the good ones
are awarded together by rewards.services.bulk.award_events (the same awards as one by one),
stages are computed in memory, and the events (each with the answer a single call would have
given) and the stage moves are written with COPY. If anything there conflicts, those events
go through the one-by-one path instead, so the outcome is the same either way. Refunds (which
take points back from earlier orders) always go one by one.
"""

import bisect
import logging
from collections.abc import Sequence
from datetime import datetime

from django.db import DatabaseError, IntegrityError, connection, transaction

from members.exceptions import DomainError
from rewards.models import PointsAccount
from rewards.services import Award, EventInput, config_cache
from rewards.services.bulk import EventAward, award_events, copy_new, taken_keys

from ..exceptions import InvalidEvent
from ..models import CustomerEvent, EventType, MemberJourney
from .ingest import (
    AWARD_KEY_PREFIX,
    EventData,
    IngestContext,
    IngestResult,
    build_answer,
    duplicate_result,
    ingest_one,
    validate_event,
)
from .stages import COUNTED_TYPES, BulkWriter, HistoryCounter, JourneyState

logger = logging.getLogger(__name__)

MAX_BATCH_SIZE = 1000
# Events per transaction. A chunk holds its members' account and journey locks until it
# commits, and concurrent batches usually share members: smaller chunks let them overlap
# (one works on members another has finished with) instead of queueing behind the whole
# batch. Measured with three clients sending 1,000-event batches: 250 kept both cores busy
# where 1,000 left a third of the time idle on lock waits.
CHUNK = 250

Outcome = IngestResult | InvalidEvent


def ingest_events(*, events: Sequence[EventData]) -> list[Outcome]:
    """Ingest a batch; returns, in the given order, each event's result or the InvalidEvent
    that rejected it. A repeated key (also within the batch) answers with the first result."""
    if len(events) > MAX_BATCH_SIZE:
        raise ValueError(f"A batch holds at most {MAX_BATCH_SIZE} events.")
    with config_cache.allowed():
        return _ingest_events(events)


def _ingest_events(events: Sequence[EventData]) -> list[Outcome]:
    ctx = IngestContext()
    ctx.prefetch(events)
    results: dict[int, Outcome] = {}
    order = sorted(range(len(events)), key=lambda i: _apply_order(events[i], i))
    for chunk in _chunks(events, order):
        member_ids = sorted({events[i].member.pk for i in chunk})
        _create_rows(member_ids)
        with transaction.atomic():
            ctx.balances.update(_lock_accounts(member_ids))
            ctx.journeys = _locked_journeys(member_ids)
            plain, one_by_one = _split(events, chunk, ctx)
            for index in one_by_one:
                results[index] = _ingest_item(events[index], ctx)
            if plain:
                results.update(_ingest_plain(events, plain, ctx))
    return [results[i] for i in range(len(events))]


def _chunks(events: Sequence[EventData], order: list[int]):
    """The ordered events in chunks of about CHUNK, each ending with a member's last event."""
    chunk: list[int] = []
    for index in order:
        if len(chunk) >= CHUNK and events[index].member.pk != events[chunk[-1]].member.pk:
            yield chunk
            chunk = []
        chunk.append(index)
    if chunk:
        yield chunk


def _apply_order(event: EventData, index: int) -> tuple:
    """Member by member (the lock order), each member's events in time order."""
    moment = event.occurred_at
    timestamp = (
        moment.timestamp()
        if isinstance(moment, datetime) and moment.tzinfo is not None
        else float("-inf")  # rejected by validation anyway
    )
    return (event.member.pk, timestamp, index)


def _split(events, chunk: list[int], ctx: IngestContext) -> tuple[list[int], list[int]]:
    """Events of members without a refund in this chunk (bulk path), and the rest."""
    if connection.vendor != "postgresql":
        return [], chunk
    ledger_members = {
        events[i].member.pk for i in chunk if events[i].event_type == EventType.REFUND
    }
    plain = [i for i in chunk if events[i].member.pk not in ledger_members]
    others = [i for i in chunk if events[i].member.pk in ledger_members]
    return plain, others


def _ingest_item(data: EventData, ctx: IngestContext) -> Outcome:
    try:
        result = ingest_one(data, ctx)
    except InvalidEvent as exc:
        return exc
    except DomainError as exc:
        return InvalidEvent({"non_field_errors": [exc.message]})
    except DatabaseError:
        logger.exception("event %s could not be stored", data.idempotency_key)
        return InvalidEvent({"non_field_errors": ["The event could not be stored; send it again."]})
    if ctx.existing is not None:
        ctx.existing[result.event.idempotency_key] = result.event
    return result


def _create_rows(member_ids: list[int]) -> None:
    """The members' points accounts and journey rows, created where missing before the
    chunk's transaction (committed at once when the caller holds none): the chunk then takes
    every lock it needs up front, in member order, and never waits on a row another
    transaction is inserting while holding locks of its own."""
    for model in (PointsAccount, MemberJourney):
        _insert_missing(model, member_ids)


def _insert_missing(model, member_ids: list[int]) -> None:
    """INSERT ... SELECT FROM unnest(member ids) ON CONFLICT DO NOTHING, every other column
    at the value a new instance gets: what bulk_create(ignore_conflicts=True) writes, without
    building an instance per member."""
    template = model(member_id=0)
    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.attname == "member_id":
            continue
        columns.append(connection.ops.quote_name(field.column))
        values.append(field.get_db_prep_save(field.pre_save(template, add=True), connection))
    table = model._meta.db_table
    placeholders = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (member_id, {', '.join(columns)}) "  # noqa: S608
            f"SELECT m, {placeholders} FROM unnest(%s::bigint[]) AS m "
            "ON CONFLICT DO NOTHING",
            [*values, member_ids],
        )


def _lock_accounts(member_ids: list[int]) -> dict[int, int]:
    """Take the points accounts' locks, then the journeys', in member order, and return the
    balances."""
    balances = dict.fromkeys(member_ids, 0)
    balances.update(
        PointsAccount.objects.select_for_update()
        .filter(member_id__in=member_ids)
        .order_by("member_id")
        .values_list("member_id", "balance")
    )
    return balances


# -- the bulk path ---------------------------------------------------------------------------


def _ingest_plain(events, indexes: list[int], ctx: IngestContext) -> dict[int, Outcome]:
    results: dict[int, Outcome] = {}
    todo: list[tuple[int, EventData, object, str]] = []
    first_of_key: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []
    for index in indexes:
        data = events[index]
        key = (data.idempotency_key or "").strip()
        existing = ctx.find_existing(key) if key else None
        if existing is not None:
            results[index] = duplicate_result(existing)
            continue
        try:
            touchpoint, currency = validate_event(data, ctx)
        except InvalidEvent as exc:
            results[index] = exc
            continue
        if key in first_of_key:
            repeats.append((index, first_of_key[key]))
            continue
        first_of_key[key] = index
        todo.append((index, data, touchpoint, currency))
    if todo:
        balances = dict(ctx.balances)
        try:
            with transaction.atomic():
                results.update(_write_plain(todo, ctx))
        except (IntegrityError, DatabaseError):
            # A key or a journey changed under us: the one-by-one path sorts it out.
            ctx.balances = balances
            for index, data, _, _ in todo:
                results[index] = _ingest_item(data, ctx)
    for index, first in repeats:
        earlier = results[first]
        if isinstance(earlier, IngestResult):
            results[index] = duplicate_result(earlier.event)
        else:
            results[index] = _ingest_item(events[index], ctx)
    return results


def _write_plain(todo, ctx: IngestContext) -> dict[int, Outcome]:
    member_ids = sorted({data.member.pk for _, data, _, _ in todo})
    journeys = {m: ctx.journeys[m] for m in member_ids}
    taken = taken_keys(
        "journeys_customerevent", [data.idempotency_key.strip() for _, data, _, _ in todo]
    )
    if taken:  # stored since the batch began: let the one-by-one path answer those
        raise IntegrityError("idempotency keys taken meanwhile")
    counted = {data.member.pk for _, data, _, _ in todo if data.event_type in COUNTED_TYPES}
    history = _history(sorted(counted))
    config = ctx.config
    awards = _awards(todo, ctx)
    rows: list[CustomerEvent] = []
    moves_per_row = []
    stages = []
    for _, data, touchpoint, currency in todo:
        member_id = data.member.pk
        state = journeys[member_id]
        times = history.setdefault(member_id, {})
        if data.event_type in COUNTED_TYPES:
            bisect.insort(times.setdefault(data.event_type, []), data.occurred_at)
        moves = config.on_event(state, data.event_type, data.occurred_at, HistoryCounter(times))
        stage = config.stage(state.stage_id)
        award = awards.get(data.idempotency_key.strip(), NO_AWARD)
        if award.transaction is not None:
            ctx.balances[member_id] = award.transaction.balance_after
        answer = build_answer(
            data, award=award, balance=ctx.balance(member_id), stage=stage, moved=bool(moves)
        )
        stages.append(stage)
        rows.append(
            CustomerEvent(
                member_id=member_id,
                event_type=data.event_type,
                occurred_at=data.occurred_at,
                received_at=ctx.now,
                channel=data.channel or (touchpoint.channel if touchpoint else ""),
                touchpoint=touchpoint,
                amount=data.amount,
                currency=currency,
                order_id=data.order_id or "",
                properties=data.properties or {},
                idempotency_key=data.idempotency_key.strip(),
                source=data.source,
                points_awarded=award.points,
                response=answer,
            )
        )
        moves_per_row.append(moves)
    copy_new(rows)
    writer = BulkWriter()
    for event, moves in zip(rows, moves_per_row, strict=True):
        writer.add(event.member_id, moves, event.pk)
    for member_id in member_ids:
        writer.state(member_id, journeys[member_id])
    writer.write()
    results: dict[int, Outcome] = {}
    for (index, data, _, _), event, stage in zip(todo, rows, stages, strict=True):
        event.member = data.member
        results[index] = IngestResult(
            created=True,
            event=event,
            award=awards.get(event.idempotency_key, NO_AWARD),
            balance=event.response["balance"],
            stage=stage,
        )
        if ctx.existing is not None:
            ctx.existing[event.idempotency_key] = event
    return results


NO_AWARD = Award(0, [])


def _awards(todo, ctx: IngestContext) -> dict[str, Award]:
    """The points of the events that can earn, all at once (in member and time order, as
    they were sorted), by idempotency key."""
    earning = [
        (data, touchpoint, currency)
        for _, data, touchpoint, currency in todo
        if ctx.earns(data.event_type)
    ]
    if not earning:
        return {}
    items = [
        EventAward(
            member=data.member,
            event=EventInput(
                event_type=data.event_type,
                occurred_at=data.occurred_at,
                amount=data.amount,
                currency=currency,
                channel=data.channel or (touchpoint.channel if touchpoint else ""),
                touchpoint=touchpoint.slug if touchpoint else "",
                order_id=data.order_id or "",
                properties=data.properties or {},
            ),
            idempotency_key=f"{AWARD_KEY_PREFIX}{data.idempotency_key.strip()}",
        )
        for data, touchpoint, currency in earning
    ]
    awards = award_events(items=items)
    return {
        data.idempotency_key.strip(): award
        for (data, _, _), award in zip(earning, awards, strict=True)
    }


def _locked_journeys(member_ids: list[int]) -> dict[int, JourneyState]:
    """The members' journey rows (created by _create_rows), locked in member order, after
    their accounts: the order the one-by-one path takes them in too."""
    rows = (
        MemberJourney.objects.select_for_update()
        .filter(member_id__in=member_ids)
        .order_by("member_id")
        .values_list(
            "member_id", "stage_id", "entered_at", "last_activity_at", "last_lifecycle_stage_id"
        )
    )
    return {row[0]: JourneyState(*row[1:]) for row in rows}


def _history(member_ids: list[int]) -> dict[int, dict[str, list]]:
    history: dict[int, dict[str, list]] = {}
    if not member_ids:
        return history
    rows = (
        CustomerEvent.objects.filter(member_id__in=member_ids, event_type__in=COUNTED_TYPES)
        .order_by("member_id", "occurred_at")
        .values_list("member_id", "event_type", "occurred_at")
    )
    for member_id, event_type, occurred_at in rows:
        history.setdefault(member_id, {}).setdefault(event_type, []).append(occurred_at)
    return history
