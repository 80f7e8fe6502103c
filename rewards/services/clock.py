"""Calendar arithmetic in the program's timezone (storage is UTC, periods are local)."""

import calendar
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime


def program_zone(settings_row) -> ZoneInfo:
    return ZoneInfo(settings_row.timezone)


def add_months(moment: datetime, months: int) -> datetime:
    """The same wall-clock time `months` later, clamped to the month's last day."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_months_local(moment: datetime, months: int, zone: ZoneInfo) -> datetime:
    local = moment.astimezone(zone)
    return add_months(local.replace(tzinfo=None), months).replace(tzinfo=zone)


def start_of_day(moment: datetime, zone: ZoneInfo) -> datetime:
    return datetime.combine(moment.astimezone(zone).date(), time.min, tzinfo=zone)


def start_of_week(moment: datetime, zone: ZoneInfo) -> datetime:
    day = moment.astimezone(zone).date()
    return datetime.combine(day - timedelta(days=day.weekday()), time.min, tzinfo=zone)


def start_of_month(moment: datetime, zone: ZoneInfo) -> datetime:
    day = moment.astimezone(zone).date().replace(day=1)
    return datetime.combine(day, time.min, tzinfo=zone)


def end_of_following_year(moment: datetime, zone: ZoneInfo) -> datetime:
    """The instant the calendar year after `moment`'s year ends (local midnight, 1 January)."""
    return datetime(moment.astimezone(zone).year + 2, 1, 1, tzinfo=zone)


def parse_as_of(value: str | date | datetime | None, zone: ZoneInfo | None = None) -> datetime:
    """A task's ISO date or datetime as an aware datetime (naive ones in `zone`).

    A bare date means the end of that day in `zone` (UTC when not given); nothing means now.
    """
    zone = zone or ZoneInfo("UTC")
    if value is None or value == "":
        return timezone.now()
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime.combine(value + timedelta(days=1), time.min, tzinfo=zone)
    day = parse_date(value)
    if day is not None:
        return parse_as_of(day, zone)
    moment = parse_datetime(value)
    if moment is None:
        raise ValueError(f"Not an ISO date or datetime: {value!r}")
    return parse_as_of(moment, zone)
