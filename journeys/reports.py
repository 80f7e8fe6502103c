"""Read queries for the journey pages: the member's activity and the journey map.

The map is computed with a handful of aggregate queries over the transitions and events, so
it costs the same whatever the number of members."""

from dataclasses import dataclass, field
from datetime import date, datetime, time
from statistics import median
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Count, Min, Q, QuerySet

from members.models import Member
from rewards.models import Tier

from .models import CustomerEvent, JourneyStage, MemberJourney, StageTransition, Touchpoint
from .registry import annotate_touchpoints

SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class MapFilters:
    """Who the map counts: members enrolled in a month (local), active on an event channel,
    in a tier. Empty values mean no filter."""

    cohort: date | None = None
    channel: str = ""
    tier_id: int | None = None

    @property
    def any(self) -> bool:
        return bool(self.cohort or self.channel or self.tier_id)


@dataclass
class TouchpointVolume:
    touchpoint: Touchpoint
    events: int
    notes: list[str] = field(default_factory=list)  # from registry.touchpoint_annotators


@dataclass
class StageColumn:
    stage: JourneyStage
    members: int = 0
    entered: int = 0
    converted: int = 0
    next_stage: JourneyStage | None = None
    median_seconds: float | None = None
    touchpoints: list[TouchpointVolume] = field(default_factory=list)

    @property
    def conversion(self) -> float | None:
        """Share of members who ever entered this stage that later entered the next one."""
        if self.next_stage is None or not self.entered:
            return None
        return self.converted / self.entered

    @property
    def median_days(self) -> float | None:
        if self.median_seconds is None:
            return None
        return self.median_seconds / SECONDS_PER_DAY

    @property
    def touchpoint_events(self) -> int:
        return sum(t.events for t in self.touchpoints)


@dataclass
class JourneyMap:
    stages: list[StageColumn]
    unassigned_touchpoints: list[TouchpointVolume]
    total_members: int


def member_activity(member: Member) -> QuerySet[CustomerEvent]:
    """The member's own events, newest first, with what the timeline shows beside them."""
    return (
        CustomerEvent.objects.filter(member_id=member.pk)
        .select_related("touchpoint")
        .only(
            "id",
            "event_type",
            "occurred_at",
            "channel",
            "amount",
            "currency",
            "order_id",
            "points_awarded",
            "source",
            "touchpoint__name",
            "touchpoint__channel",
        )
        .order_by("-occurred_at", "-id")
    )


def current_stage(member: Member) -> MemberJourney | None:
    return MemberJourney.objects.select_related("stage").filter(member_id=member.pk).first()


def admin_timeline(member_id: int, limit: int = 50) -> list[CustomerEvent]:
    return list(
        CustomerEvent.objects.filter(member_id=member_id)
        .select_related("touchpoint")
        .order_by("-occurred_at", "-id")[:limit]
    )


def admin_transitions(member_id: int) -> list[StageTransition]:
    return list(
        StageTransition.objects.filter(member_id=member_id)
        .select_related("from_stage", "to_stage")
        .order_by("-at", "-id")
    )


# -- the journey map -------------------------------------------------------------------------


def cohort_months(zone: ZoneInfo, today: date) -> list[date]:
    """First days of the months in which members enrolled, newest first."""
    first = Member.objects.aggregate(first=Min("enrolled_at"))["first"]
    if first is None:
        return []
    start = first.astimezone(zone).date().replace(day=1)
    months = []
    month = today.replace(day=1)
    while month >= start:
        months.append(month)
        month = (
            month.replace(year=month.year - 1, month=12)
            if month.month == 1
            else month.replace(month=month.month - 1)
        )
    return months


def tiers() -> list[Tier]:
    return list(Tier.objects.order_by("rank", "id"))


def _members(filters: MapFilters, zone: ZoneInfo) -> QuerySet[Member] | None:
    if not filters.any:
        return None
    members = Member.objects.all()
    if filters.cohort:
        start = datetime.combine(filters.cohort.replace(day=1), time.min, tzinfo=zone)
        month = start.month % 12 + 1
        end = start.replace(year=start.year + (start.month == 12), month=month)
        members = members.filter(enrolled_at__gte=start, enrolled_at__lt=end)
    if filters.tier_id:
        members = members.filter(points_account__tier_id=filters.tier_id)
    if filters.channel:
        members = members.filter(
            pk__in=CustomerEvent.objects.filter(_channel_q(filters.channel)).values("member_id")
        )
    return members.order_by().values("pk")


def _channel_q(channel: str, prefix: str = "") -> Q:
    """An event's channel is its own, or its touchpoint's when it names none."""
    return Q(**{f"{prefix}channel": channel}) | Q(
        **{f"{prefix}channel": "", f"{prefix}touchpoint__channel": channel}
    )


def _member_clause(members: QuerySet | None, column: str) -> tuple[str, list]:
    if members is None:
        return "", []
    sql, params = members.query.sql_with_params()
    return f" AND {column} IN ({sql})", list(params)


_ENTERED_SQL = """
WITH firsts AS (
    SELECT member_id, to_stage_id, MIN(at) AS first_at, MAX(at) AS last_at
    FROM journeys_stagetransition
    WHERE TRUE {members}
    GROUP BY member_id, to_stage_id
)
SELECT a.to_stage_id, COUNT(*), COUNT(b.member_id)
FROM firsts a
LEFT JOIN firsts b
    ON b.member_id = a.member_id
    AND b.to_stage_id = (CASE a.to_stage_id {next_cases} ELSE NULL END)
    AND b.last_at >= a.first_at
GROUP BY a.to_stage_id
"""

_STAYS_SQL = """
SELECT to_stage_id, {seconds}
FROM (
    SELECT member_id, to_stage_id, at,
        LEAD(at) OVER (PARTITION BY member_id ORDER BY at, id) AS next_at
    FROM journeys_stagetransition
    WHERE TRUE {members}
) stays
WHERE next_at IS NOT NULL
{group}
"""


def _entered_and_converted(
    stage_ids: list[int], members: QuerySet | None
) -> dict[int, tuple[int, int]]:
    """{stage: (members who ever entered it, of those who later entered the next stage)}."""
    clause, params = _member_clause(members, "member_id")
    cases = " ".join("WHEN %s THEN %s" for _ in stage_ids[1:]) or "WHEN NULL THEN NULL"
    case_params = [value for pair in zip(stage_ids, stage_ids[1:], strict=False) for value in pair]
    sql = _ENTERED_SQL.format(members=clause, next_cases=cases)
    with connection.cursor() as cursor:
        cursor.execute(sql, params + case_params)
        return {row[0]: (row[1], row[2]) for row in cursor.fetchall()}


def _median_seconds(members: QuerySet | None) -> dict[int, float]:
    """Median time in each stage, over completed stays (a move in, then the next move)."""
    clause, params = _member_clause(members, "member_id")
    if connection.vendor == "postgresql":
        sql = _STAYS_SQL.format(
            members=clause,
            seconds="percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM next_at - at))",
            group="GROUP BY to_stage_id",
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return {stage: float(seconds) for stage, seconds in cursor.fetchall()}
    sql = _STAYS_SQL.format(members=clause, seconds="at, next_at", group="")
    by_stage: dict[int, list[float]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for stage, at, next_at in cursor.fetchall():
            at, next_at = (
                datetime.fromisoformat(v) if isinstance(v, str) else v for v in (at, next_at)
            )
            by_stage.setdefault(stage, []).append((next_at - at).total_seconds())
    return {stage: median(values) for stage, values in by_stage.items()}


def journey_map(*, filters: MapFilters, zone: ZoneInfo) -> JourneyMap:
    stages = list(JourneyStage.objects.order_by("order", "id"))
    members = _members(filters, zone)

    journeys = MemberJourney.objects.filter(stage__isnull=False)
    if members is not None:
        journeys = journeys.filter(member_id__in=members)
    current = dict(journeys.order_by().values_list("stage_id").annotate(n=Count("id")))

    entered = _entered_and_converted([s.pk for s in stages], members)
    medians = _median_seconds(members)

    events = CustomerEvent.objects.filter(touchpoint__isnull=False)
    if members is not None:
        events = events.filter(member_id__in=members)
    if filters.channel:
        events = events.filter(_channel_q(filters.channel))
    volumes = dict(events.order_by().values_list("touchpoint_id").annotate(n=Count("id")))

    columns = {}
    for index, stage in enumerate(stages):
        ever, converted = entered.get(stage.pk, (0, 0))
        columns[stage.pk] = StageColumn(
            stage=stage,
            members=current.get(stage.pk, 0),
            entered=ever,
            converted=converted,
            next_stage=stages[index + 1] if index + 1 < len(stages) else None,
            median_seconds=medians.get(stage.pk),
        )
    unassigned = []
    touchpoints = list(Touchpoint.objects.order_by("name"))
    notes = annotate_touchpoints(t.pk for t in touchpoints)
    for touchpoint in touchpoints:
        volume = TouchpointVolume(
            touchpoint, volumes.get(touchpoint.pk, 0), notes.get(touchpoint.pk, [])
        )
        if filters.channel and touchpoint.channel != filters.channel and not volume.events:
            continue
        column = columns.get(touchpoint.stage_id)
        (column.touchpoints if column else unassigned).append(volume)
    for column in columns.values():
        column.touchpoints.sort(key=lambda t: (-t.events, t.touchpoint.name))
    return JourneyMap(
        stages=list(columns.values()),
        unassigned_touchpoints=unassigned,
        total_members=sum(current.values()),
    )
