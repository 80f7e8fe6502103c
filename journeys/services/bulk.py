"""COPY helpers for the bulk writers (the import, the stage replay): PostgreSQL loads CSV text
far faster than INSERTs, and building the text by hand skips model instances altogether."""

import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from django.db import connection


def csv_value(value) -> str:
    """One CSV field for COPY ... (FORMAT csv): NULL is an unquoted empty field, text is
    always quoted (so an empty string stays an empty string)."""
    if value is None:
        return ""
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def csv_line(values: Iterable) -> str:
    return ",".join(map(csv_value, values)) + "\n"


def copy_text(table: str, columns: Sequence[str], text: str | io.StringIO) -> None:
    """COPY CSV text (lines as csv_line makes them) into `table`; names are trusted constants."""
    source = io.StringIO(text) if isinstance(text, str) else text
    source.seek(0)
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    with connection.cursor() as cursor:
        copy_from(cursor, sql, source)


def copy_from(cursor, sql: str, source) -> None:
    raw = cursor.cursor
    if hasattr(raw, "copy_expert"):  # psycopg2
        raw.copy_expert(sql, source)
        return
    with raw.copy(sql) as copy:  # psycopg 3
        while chunk := source.read(1 << 20):
            copy.write(chunk)
