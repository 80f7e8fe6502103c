"""Reads shared by the API, services, tasks and the admin."""

import functools
from collections.abc import Iterable

from django.db import connection
from django.db.models import QuerySet

from members.models import Member
from rewards.models import EarningRule, EarningRuleKind
from rewards.services import config_cache
from rewards.services import sql as statements

from .models import (
    STANDARD_EVENT_TYPES,
    AllowedEventType,
    CustomerEvent,
    EventType,
    JourneySettings,
    MemberJourney,
    StageTransition,
    Touchpoint,
)

MEMBER_IDENTIFIERS = ("member_id", "member_number", "external_id")


def journey_settings() -> JourneySettings:
    """The journey settings row, created with defaults on first read."""
    row, _ = JourneySettings.objects.get_or_create(pk=JourneySettings.SINGLETON_ID)
    return row


def find_member(
    *, member_id: int | None = None, member_number: str = "", external_id: str = ""
) -> Member | None:
    """The member all the given identifiers point at (they must agree), or None.

    Every event asks, so the statement is written once per set of identifiers given, not
    compiled by the ORM on each call; the row becomes a Member as the ORM would build it."""
    return find_member_and_version(
        member_id=member_id, member_number=member_number, external_id=external_id
    )[0]


def find_member_and_version(
    *, member_id: int | None = None, member_number: str = "", external_id: str = ""
) -> tuple[Member | None, object]:
    """find_member, and in the same statement the program configuration's version (what
    rewards.services.config_cache.current_settings() would read next: the event API passes it
    on instead)."""
    given = tuple(
        (name, value)
        for name, value in (
            ("id", member_id),
            ("member_number", member_number),
            ("external_id", external_id),
        )
        if value not in (None, "")
    )
    if not given:
        return None, None
    sql = _member_sql(tuple(name for name, _ in given))
    with connection.cursor() as cursor:
        statements.execute(cursor, sql, [value for _, value in given])
        row = cursor.fetchone()
    if row is None:
        return None, None
    return Member.from_db(connection.alias, _MEMBER_FIELDS, row[:-1]), row[-1]


_MEMBER_FIELDS = [field.attname for field in Member._meta.concrete_fields]


@functools.cache
def _member_sql(names: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    selected = ", ".join(quote(field.column) for field in Member._meta.concrete_fields)
    where = " AND ".join(f"{quote(Member._meta.get_field(name).column)} = %s" for name in names)
    return (
        f"SELECT {selected}, ({config_cache.VERSION_SQL}) "  # noqa: S608
        f"FROM {quote(Member._meta.db_table)} WHERE {where}"
    )


def find_member_for(attrs) -> Member | None:
    """find_member for a validated payload carrying some of MEMBER_IDENTIFIERS."""
    return find_member(
        member_id=attrs.get("member_id"),
        member_number=attrs.get("member_number") or "",
        external_id=attrs.get("external_id") or "",
    )


def find_members(identities: Iterable[dict]) -> dict[tuple, Member]:
    """Members for many identities at once (a batch): one query per kind of identifier.

    Returns {(member_id, member_number, external_id): member} for identities that resolve to
    one member on every identifier they give."""
    identities = [
        (i.get("member_id"), i.get("member_number") or "", i.get("external_id") or "")
        for i in identities
    ]
    ids = {i[0] for i in identities if i[0] is not None}
    numbers = {i[1] for i in identities if i[1]}
    externals = {i[2] for i in identities if i[2]}
    found: dict[int, Member] = {}
    by_number: dict[str, int] = {}
    by_external: dict[str, int] = {}
    if ids:
        found.update(Member.objects.in_bulk(ids))
    if numbers:
        for member in Member.objects.filter(member_number__in=numbers):
            found[member.pk] = member
            by_number[member.member_number] = member.pk
    if externals:
        for member in Member.objects.filter(external_id__in=externals):
            found[member.pk] = member
            by_external[member.external_id] = member.pk
    result = {}
    for identity in identities:
        member_id, number, external = identity
        candidates = set()
        if member_id is not None:
            candidates.add(member_id if member_id in found else None)
        if number:
            candidates.add(by_number.get(number))
        if external:
            candidates.add(by_external.get(external))
        if len(candidates) == 1 and None not in candidates:
            result[identity] = found[candidates.pop()]
    return result


def allowed_custom_event_types(names: Iterable[str] | None = None) -> set[str]:
    """Active custom event types (only those among `names` when given)."""
    rows = AllowedEventType.objects.filter(active=True)
    if names is not None:
        names = set(names) - STANDARD_EVENT_TYPES
        if not names:
            return set()
        rows = rows.filter(name__in=names)
    return set(rows.values_list("name", flat=True))


def earning_event_types() -> set[str]:
    """Event types some active purchase or fixed earning rule could give points for.

    The rewards engine gives no points, and writes nothing, for an event of any other type
    (multipliers only scale points a base rule gave), so ingestion skips the engine for
    those: a page view then costs no ledger queries."""
    types = set()
    rows = EarningRule.objects.filter(
        is_active=True, kind__in=[EarningRuleKind.PURCHASE, EarningRuleKind.FIXED]
    ).values_list("kind", "event_type")
    for kind, event_type in rows:
        if kind == EarningRuleKind.PURCHASE:
            types.add(event_type or EventType.PURCHASE)
        elif event_type:
            types.add(event_type)
    return types


def touchpoints_by_slug(slugs: Iterable[str]) -> dict[str, Touchpoint]:
    slugs = {s for s in slugs if s}
    if not slugs:
        return {}
    return {t.slug: t for t in Touchpoint.objects.filter(slug__in=slugs)}


def member_events(member: Member) -> QuerySet[CustomerEvent]:
    """The member's events, newest first (the activity timeline)."""
    return CustomerEvent.objects.filter(member_id=member.pk).select_related("touchpoint")


def member_journey(member: Member) -> MemberJourney | None:
    return MemberJourney.objects.select_related("stage").filter(member_id=member.pk).first()


def member_transitions(member: Member) -> QuerySet[StageTransition]:
    return StageTransition.objects.filter(member_id=member.pk).select_related(
        "from_stage", "to_stage"
    )


def export_journey(member: Member) -> dict:
    """The member's events and stages for their data export (right of access)."""
    journey = member_journey(member)
    return {
        "stage": journey.stage.name if journey and journey.stage_id else None,
        "events": [
            {
                "event_type": e.event_type,
                "occurred_at": e.occurred_at.isoformat(),
                "channel": e.channel,
                "touchpoint": e.touchpoint.slug if e.touchpoint_id else None,
                "amount": str(e.amount) if e.amount is not None else None,
                "currency": e.currency,
                "order_id": e.order_id,
                "properties": e.properties,
                "source": e.source,
                "points_awarded": e.points_awarded,
            }
            for e in member_events(member).order_by("occurred_at", "id")
        ],
        "stage_history": [
            {
                "from": t.from_stage.name if t.from_stage_id else None,
                "to": t.to_stage.name,
                "at": t.at.isoformat(),
                "cause": t.cause,
            }
            for t in member_transitions(member)
        ],
    }
