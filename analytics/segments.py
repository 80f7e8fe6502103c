"""Segments: which members match a segment's rules, and the nightly (or on-demand) refresh of
the stored membership that campaigns target.

Semantics: every rule that is set must hold (AND); a list rule (tiers, stages, RFM segments,
CLV bands, channels, countries) matches any of its values (OR). A rule left empty does not
filter. Closed members never match. Rules on the pipeline's figures (RFM segment, CLV band,
CLV, probability alive) match only members the pipeline has scored. "Last activity" is the
latest journey event, or the enrollment when a member has no event yet. Ages are whole years
on today's date in the program's timezone; a member without a birth date matches no age rule.

`segment_queryset` builds one SQL query (joins to the one-to-one points account, journey and
metrics rows, so no duplicates and no DISTINCT); `refresh_segments` writes the membership with
two set-based statements per segment, so its cost does not grow with Python loops over members.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from members.models import Member, MemberStatus

from .models import ConsentFilter, Segment, SegmentMembership
from .pipeline.common import program_zone

LIST_RULES = ("tiers", "stages", "rfm_segments", "clv_bands", "enrollment_channels", "countries")


@dataclass(frozen=True)
class SegmentRules:
    """A segment's rules as plain values: what a saved Segment holds, or what the admin form
    holds while a marketer edits (for the live count)."""

    tiers: tuple[int, ...] = ()
    stages: tuple[int, ...] = ()
    rfm_segments: tuple[str, ...] = ()
    clv_bands: tuple[str, ...] = ()
    min_clv: Decimal | None = None
    max_clv: Decimal | None = None
    min_p_alive: float | None = None
    max_p_alive: float | None = None
    active_within_days: int | None = None
    inactive_for_days: int | None = None
    enrollment_channels: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    min_age: int | None = None
    max_age: int | None = None
    marketing_consent: str = ConsentFilter.ANY

    @classmethod
    def from_mapping(cls, values: Mapping) -> SegmentRules:
        """Rules from a dict such as a form's cleaned_data (model instances become ids)."""
        kwargs = {}
        for f in fields(cls):
            if f.name not in values:
                continue
            value = values[f.name]
            if f.name in LIST_RULES:
                value = tuple(getattr(item, "pk", item) for item in (value or ()))
                if f.name == "countries":
                    value = tuple(code.upper() for code in value)
            elif f.name == "marketing_consent":
                value = value or ConsentFilter.ANY
            kwargs[f.name] = value
        return cls(**kwargs)

    @classmethod
    def from_segment(cls, segment: Segment) -> SegmentRules:
        """A saved segment's rules. Reads the tier and stage ids (from the prefetch cache when
        the caller prefetched them)."""
        values = {
            f.name: getattr(segment, f.name)
            for f in fields(cls)
            if f.name not in ("tiers", "stages")
        }
        values["tiers"] = [t.pk for t in segment.tiers.all()] if segment.pk else []
        values["stages"] = [s.pk for s in segment.stages.all()] if segment.pk else []
        return cls.from_mapping(values)

    def is_empty(self) -> bool:
        """No rule set: the segment is every member who is not closed."""
        return self == SegmentRules()


def _years_ago(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a year that has none
        return today.replace(year=today.year - years, day=28)


def _as_rules(segment_or_rules: Segment | SegmentRules | Mapping) -> SegmentRules:
    if isinstance(segment_or_rules, SegmentRules):
        return segment_or_rules
    if isinstance(segment_or_rules, Segment):
        return SegmentRules.from_segment(segment_or_rules)
    return SegmentRules.from_mapping(segment_or_rules)


def rules_q(rules: SegmentRules, *, now: datetime, today: date) -> Q:
    """The rules as one Q over Member (the activity rules need `_last_activity` annotated)."""
    q = Q()
    if rules.tiers:
        q &= Q(points_account__tier_id__in=rules.tiers)
    if rules.stages:
        q &= Q(journey__stage_id__in=rules.stages)
    if rules.rfm_segments:
        q &= Q(metrics__rfm_segment__in=rules.rfm_segments)
    if rules.clv_bands:
        q &= Q(metrics__clv_band__in=rules.clv_bands)
    if rules.min_clv is not None:
        q &= Q(metrics__clv_12m__gte=rules.min_clv)
    if rules.max_clv is not None:
        q &= Q(metrics__clv_12m__lte=rules.max_clv)
    if rules.min_p_alive is not None:
        q &= Q(metrics__p_alive__gte=rules.min_p_alive)
    if rules.max_p_alive is not None:
        q &= Q(metrics__p_alive__lte=rules.max_p_alive)
    if rules.active_within_days is not None:
        q &= Q(_last_activity__gte=now - timedelta(days=rules.active_within_days))
    if rules.inactive_for_days is not None:
        q &= Q(_last_activity__lt=now - timedelta(days=rules.inactive_for_days))
    if rules.enrollment_channels:
        q &= Q(enrollment_channel__in=rules.enrollment_channels)
    if rules.countries:
        q &= Q(country__in=rules.countries)
    if rules.min_age is not None:
        q &= Q(birth_date__lte=_years_ago(today, rules.min_age))
    if rules.max_age is not None:
        # Younger than max_age + 1 on today's date.
        q &= Q(birth_date__gt=_years_ago(today, rules.max_age + 1))
    if rules.marketing_consent == ConsentFilter.GIVEN:
        q &= Q(marketing_consent=True)
    elif rules.marketing_consent == ConsentFilter.NOT_GIVEN:
        q &= Q(marketing_consent=False)
    return q


def segment_queryset(
    segment_or_rules: Segment | SegmentRules | Mapping,
    *,
    now: datetime | None = None,
    zone: ZoneInfo | None = None,
) -> QuerySet[Member]:
    """Members (not closed) matching every set rule, evaluated now: one SQL query."""
    rules = _as_rules(segment_or_rules)
    now = now or timezone.now()
    if zone is None:
        ages = rules.min_age is not None or rules.max_age is not None
        zone = program_zone() if ages else None
    today = now.astimezone(zone).date() if zone else now.date()
    members = Member.objects.exclude(status=MemberStatus.CLOSED)
    if rules.active_within_days is not None or rules.inactive_for_days is not None:
        members = members.annotate(
            _last_activity=Coalesce("journey__last_activity_at", "enrolled_at")
        )
    return members.filter(rules_q(rules, now=now, today=today))


def count_matching(rules: Segment | SegmentRules | Mapping, *, now: datetime | None = None) -> int:
    """How many members the rules match right now (the admin's live count)."""
    return segment_queryset(rules, now=now).count()


def members_in_segment(segment: Segment | int) -> QuerySet[Member]:
    """The segment's members as of its last refresh (what campaigns target)."""
    segment_id = getattr(segment, "pk", segment)
    return Member.objects.filter(segment_memberships__segment_id=segment_id)


def refresh_segment(*, segment_id: int, now: datetime | None = None) -> int:
    """Rewrite one segment's stored membership; stayers keep `added_at` (campaigns read it as
    "entered the segment"), newcomers get `now`, leavers are deleted. One transaction, under a
    lock on the segment row so two refreshes of one segment do not interleave."""
    now = now or timezone.now()
    with transaction.atomic():
        segment = (
            Segment.objects.select_for_update()
            .prefetch_related("tiers", "stages")
            .get(pk=segment_id)
        )
        matching = segment_queryset(segment, now=now).order_by().values("pk")
        SegmentMembership.objects.filter(segment_id=segment_id).exclude(
            member_id__in=matching
        ).delete()
        select_sql, select_params = matching.query.sql_with_params()
        table = connection.ops.quote_name(SegmentMembership._meta.db_table)
        with connection.cursor() as cursor:
            # The SELECT is the ORM's own SQL with its parameters kept separate.
            insert_sql = (
                f"INSERT INTO {table} (segment_id, member_id, added_at) "  # noqa: S608
                f"SELECT %s, matched.pk, %s FROM ({select_sql}) matched WHERE true "
                "ON CONFLICT (segment_id, member_id) DO NOTHING"
            )
            cursor.execute(insert_sql, [segment_id, now, *select_params])
        count = SegmentMembership.objects.filter(segment_id=segment_id).count()
        Segment.objects.filter(pk=segment_id).update(member_count=count, refreshed_at=now)
    return count


def refresh_segments(
    *, segment_ids: Iterable[int] | None = None, now: datetime | None = None
) -> dict[int, int]:
    """Refresh the given segments (default: every active one), one transaction each; returns
    {segment id: member count}."""
    if segment_ids is None:
        segment_ids = Segment.objects.filter(active=True).values_list("pk", flat=True)
    now = now or timezone.now()
    return {pk: refresh_segment(segment_id=pk, now=now) for pk in list(segment_ids)}
