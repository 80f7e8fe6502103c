"""Statements of the event and ledger hot paths, prepared once per database connection.

A round trip to PostgreSQL costs more processor time (on both sides) than the simple
statements the event paths run, and PostgreSQL spends more on parsing and planning such a
statement than on executing it. The hot paths therefore send few statements, each written
once (with %s or %(name)s placeholders, as for cursor.execute) and, on PostgreSQL, run as a
prepared statement: `PREPARE` the first time a connection sees it (through the driver's own
cursor, so query counts in tests do not depend on which statements a connection has seen),
then `EXECUTE name(...)`. A successful PREPARE survives a rolled-back transaction; a new
connection starts with none.

Inside `write_behind()`, a statement whose result nobody reads (an insert without RETURNING,
an update) can be deferred: it goes to the server in the same round trip as the next
statement the connection runs, whatever runs it (the ORM included, so reads see the writes),
or at the end of the block. An error in a deferred statement is raised by the statement that
carried it, inside the same transaction.

Set DATABASE_PREPARED_STATEMENTS=0 behind a pooler that shares server connections between
clients per transaction (PgBouncer's transaction mode), where a statement prepared on one
server connection is missing on the next.
"""

import itertools
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|%%")
_names: dict[str, str] = {}
_counter = itertools.count(1)
_lock = threading.Lock()


def execute(cursor, sql: str, params: Sequence | Mapping = ()) -> None:
    """cursor.execute(sql, params), as a statement prepared on this connection when the
    database is PostgreSQL (and DATABASE_PREPARED_STATEMENTS is on)."""
    sql, params = _as_prepared(cursor, sql, params)
    cursor.execute(sql, params)


def _use_prepared() -> bool:
    return connection.vendor == "postgresql" and getattr(
        settings, "DATABASE_PREPARED_STATEMENTS", True
    )


def _as_prepared(cursor, sql: str, params: Sequence | Mapping) -> tuple[str, Sequence | Mapping]:
    """The EXECUTE statement and its parameters for `sql` (prepared on this connection now if
    needed), or `sql` as it is when prepared statements are off."""
    if not _use_prepared():
        return sql, params
    name, body, order = _prepared(sql)
    prepared = _prepared_here()
    if name not in prepared:
        raw = cursor.cursor if hasattr(cursor, "cursor") else cursor
        raw.execute(f"PREPARE {name} AS {body}")
        prepared.add(name)
    if isinstance(params, Mapping):
        params = [params[key] for key in order]
    elif len(params) != len(order):
        raise ValueError(f"{len(order)} parameters expected, {len(params)} given")
    if params:
        return f"EXECUTE {name}({', '.join(['%s'] * len(params))})", list(params)
    return f"EXECUTE {name}", ()


# -- write-behind --------------------------------------------------------------------------


class _Queue:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        """Django execute wrapper: the queued statements go first, in the same round trip."""
        if not self.statements:
            return execute(sql, params, many, context)
        if many or connection.vendor != "postgresql":
            self._send(context["cursor"])
            return execute(sql, params, many, context)
        queued = "; ".join(self.statements)
        self.statements = []
        if params is None:
            return execute(f"{queued}; {sql}", params, many, context)
        return execute(f"{queued.replace('%', '%%')}; {sql}", params, many, context)

    def _send(self, cursor) -> None:
        """The queue as one statement string (one round trip), through Django's cursor."""
        queued, self.statements = self.statements, []
        cursor.execute("; ".join(queued))


@contextmanager
def write_behind() -> Iterator[None]:
    """A block in which defer() may queue statements; the queue is sent with the next
    statement and at the end of the block (not when it ends with an exception: the caller's
    transaction is rolled back then)."""
    outer = getattr(connection, "_loyalty_queue", None)
    if outer is not None:  # nested: the outer block sends the queue
        yield
        return
    queue = _Queue()
    connection._loyalty_queue = queue
    try:
        with connection.execute_wrapper(queue):
            yield
            flush()
    finally:
        connection._loyalty_queue = None


def defer(sql: str, params: Sequence | Mapping = ()) -> None:
    """Run a statement that returns nothing with the next one (inside write_behind()), or now
    (outside)."""
    queue = getattr(connection, "_loyalty_queue", None)
    with connection.cursor() as cursor:
        if queue is None or connection.vendor != "postgresql":
            execute(cursor, sql, params)
            return
        sql, params = _as_prepared(cursor, sql, params)
        queue.statements.append(cursor.cursor.mogrify(sql, params or None).decode())


def flush() -> None:
    """Send the queued statements now (before a statement that bypasses Django's cursor, such
    as COPY, or at the end of the block)."""
    queue = getattr(connection, "_loyalty_queue", None)
    if queue is not None and queue.statements:
        with connection.cursor() as cursor:
            queue._send(cursor)


def fetchone(sql: str, params: Sequence | Mapping = ()) -> tuple | None:
    """The first row `sql` returns, or None."""
    with connection.cursor() as cursor:
        execute(cursor, sql, params)
        return cursor.fetchone()


def fetchall(sql: str, params: Sequence | Mapping = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        execute(cursor, sql, params)
        return cursor.fetchall()


def run(sql: str, params: Sequence | Mapping = ()) -> int:
    """Run a statement that returns no rows; returns the row count."""
    with connection.cursor() as cursor:
        execute(cursor, sql, params)
        return cursor.rowcount


def _prepared(sql: str) -> tuple[str, str, list]:
    """(statement name, body with $n placeholders, the parameters' order: positions or
    names). The same text gets the same name in every thread."""
    found = _names.get(sql)
    if found is None:
        with _lock:
            found = _names.get(sql)
            if found is None:
                found = _names[sql] = f"loyalty_{next(_counter)}"
    name = found
    body, order = _numbered(sql)
    return name, body, order


_bodies: dict[str, tuple[str, list]] = {}


def _numbered(sql: str) -> tuple[str, list]:
    cached = _bodies.get(sql)
    if cached is not None:
        return cached
    order: list = []
    positions: dict[str, int] = {}

    def number(match: re.Match) -> str:
        if match.group(0) == "%%":
            return "%"
        key = match.group(1)
        if key is None:  # positional
            order.append(len(order))
            return f"${len(order)}"
        if key not in positions:
            order.append(key)
            positions[key] = len(order)
        return f"${positions[key]}"

    body = _PLACEHOLDER.sub(number, sql)
    named = [key for key in order if isinstance(key, str)]
    if named and len(named) != len(order):
        raise ValueError("Mix of positional and named placeholders")
    _bodies[sql] = (body, order)
    return body, order


def _prepared_here() -> set[str]:
    """The statements prepared on this thread's current database connection."""
    raw = connection.connection
    held = getattr(connection, "_loyalty_prepared", None)
    if held is None or held[0] is not raw:
        held = (raw, set())
        connection._loyalty_prepared = held
    return held[1]


__all__ = ["defer", "execute", "fetchall", "fetchone", "flush", "run", "write_behind"]
