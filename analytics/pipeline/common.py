"""Shared by the pipeline's steps: local days and their UTC boundaries, raw SQL helpers."""

from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from rewards.selectors import program_settings


class PipelineError(RuntimeError):
    pass


def program_zone() -> ZoneInfo:
    return ZoneInfo(program_settings().timezone)


def local_today() -> date:
    return timezone.now().astimezone(program_zone()).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local day (an aware datetime)."""
    return datetime.combine(day, time.min, tzinfo=zone)


def cutoff(as_of: date, zone: ZoneInfo) -> datetime:
    """Events count as of a date when they occurred before the next local day started."""
    return day_start(as_of + timedelta(days=1), zone)


def window_start(as_of: date, days: int, zone: ZoneInfo) -> datetime:
    """Start of the window of `days` local days that ends with `as_of` (inclusive)."""
    return day_start(as_of - timedelta(days=days - 1), zone)


def month_start(day: date) -> date:
    return day.replace(day=1)


def months_between(earlier: date, later: date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise PipelineError("The analytics pipeline needs PostgreSQL (set DATABASE_URL).")


def fetch(sql: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.fetchall()


def fetch_one(sql: str, params=None) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.fetchone()


def execute(sql: str, params=None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.rowcount


def copy_out(sql: str, params=None) -> io.StringIO:
    """The rows of a SELECT as CSV text, through COPY (fast for a million rows)."""
    with connection.cursor() as cursor:
        query = cursor.mogrify(sql, params or {}).decode()
        buffer = io.StringIO()
        cursor.cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", buffer)
    buffer.seek(0)
    return buffer


def copy_in(table: str, columns: list[str], text: io.StringIO) -> None:
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", text
        )
