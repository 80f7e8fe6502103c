"""Statements of the event and ledger hot paths: prepared once per database connection, and
sent in as few round trips as possible.

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

import functools
import itertools
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s|%%")
_counter = itertools.count(1)
_lock = threading.Lock()


class _Statement:
    """A statement's prepared name, its body with $n placeholders and the order of its
    parameters (positions, or names for %(name)s placeholders). The same text gets the same
    name in every thread."""

    __slots__ = ("name", "body", "names", "count", "execute")

    def __init__(self, sql: str):
        self.name = f"loyalty_{next(_counter)}"
        order: list = []
        positions: dict[str, int] = {}

        def number(match: re.Match) -> str:
            if match.group(0) == "%%":
                return "%"
            key = match.group(1)
            if key is None:
                order.append(len(order))
                return f"${len(order)}"
            if key not in positions:
                order.append(key)
                positions[key] = len(order)
            return f"${positions[key]}"

        self.body = _PLACEHOLDER.sub(number, sql)
        named = [key for key in order if isinstance(key, str)]
        if named and len(named) != len(order):
            raise ValueError("Mix of positional and named placeholders")
        self.names = named or None
        self.count = len(order)
        self.execute = (
            f"EXECUTE {self.name}({', '.join(['%s'] * self.count)})"
            if self.count
            else f"EXECUTE {self.name}"
        )


_statements: dict[str, _Statement] = {}


def _statement(sql: str) -> _Statement:
    found = _statements.get(sql)
    if found is None:
        with _lock:
            found = _statements.get(sql)
            if found is None:
                found = _statements[sql] = _Statement(sql)
    return found


def execute(cursor, sql: str, params: Sequence | Mapping = ()) -> None:
    """cursor.execute(sql, params), as a statement prepared on this connection when the
    database is PostgreSQL (and DATABASE_PREPARED_STATEMENTS is on)."""
    sql, params = _as_prepared(cursor, sql, params)
    cursor.execute(sql, params)


def _as_prepared(cursor, sql: str, params: Sequence | Mapping) -> tuple[str, Sequence | Mapping]:
    """The EXECUTE statement and its parameters for `sql` (prepared on this connection now if
    needed), or `sql` as it is when prepared statements are off."""
    db = cursor.db
    if db.vendor != "postgresql" or not settings.DATABASE_PREPARED_STATEMENTS:
        return sql, params
    statement = _statement(sql)
    raw = db.connection
    held = db.__dict__.get("_loyalty_prepared")
    if held is None or held[0] is not raw:
        held = db._loyalty_prepared = (raw, set())
    if statement.name not in held[1]:
        cursor.cursor.execute(f"PREPARE {statement.name} AS {statement.body}")
        held[1].add(statement.name)
    if statement.names is not None:
        params = [params[key] for key in statement.names]
    elif len(params) != statement.count:
        raise ValueError(f"{statement.count} parameters expected, {len(params)} given")
    return statement.execute, params


def fetchone(sql: str, params: Sequence | Mapping = ()) -> tuple | None:
    """The first row `sql` returns, or None."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        execute(cursor, sql, params)
        return cursor.fetchone()


def fetchall(sql: str, params: Sequence | Mapping = ()) -> list[tuple]:
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        execute(cursor, sql, params)
        return cursor.fetchall()


def run(sql: str, params: Sequence | Mapping = ()) -> int:
    """Run a statement that returns no rows; returns the row count."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        execute(cursor, sql, params)
        return cursor.rowcount


@functools.cache
def sequence(table: str) -> str:
    """The id sequence of `table` (quoted for nextval), for statements that draw the id of a
    row they will insert later: `nextval('<sequence>')`."""
    row = fetchone("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    return row[0]


# -- write-behind --------------------------------------------------------------------------


class _Queue:
    """Statements deferred in a write_behind() block, as (sql, params); in an atomic() block
    that began the transaction, also the BEGIN still to send."""

    def __init__(self, *, begin: bool = False) -> None:
        self.statements: list[tuple[str, Sequence | Mapping]] = []
        self.begin = begin  # BEGIN goes with the next statement
        self.began = False

    def __call__(self, execute, sql, params, many, context):
        """Django execute wrapper: BEGIN and the queued statements go first, in the same
        round trip."""
        if not self.statements and not self.begin:
            return execute(sql, params, many, context)
        cursor = context["cursor"]
        if many:
            self.send(cursor)
            return execute(sql, params, many, context)
        queued = self._text(cursor)
        if params is not None:
            queued = queued.replace("%", "%%")
        return execute(f"{queued}; {sql}", params, many, context)

    def _text(self, cursor, *, commit: bool = False) -> str:
        """BEGIN, the queue and COMMIT as SQL text with the queue's values inlined by the
        driver (as cursor.execute would send them); the queue is emptied."""
        queued, self.statements = self.statements, []
        mogrify = cursor.cursor.mogrify
        texts = ["BEGIN"] if self.begin else []
        if self.begin:
            self.begin, self.began = False, True
        for sql, params in queued:
            sql, params = _as_prepared(cursor, sql, params)
            texts.append(mogrify(sql, params or None).decode())
        if commit:
            texts.append("COMMIT")
        return "; ".join(texts)

    def send(self, cursor, *, commit: bool = False) -> None:
        """BEGIN, the queue (and COMMIT) as one statement string (one round trip), through
        Django's cursor."""
        text = self._text(cursor, commit=commit)
        if text:
            cursor.execute(text)


@contextmanager
def write_behind() -> Iterator[None]:
    """A block in which defer() may queue statements (PostgreSQL); the queue is sent with the
    next statement and at the end of the block (not when it ends with an exception: the
    caller's transaction is rolled back then)."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.__dict__.get("_loyalty_queue") is not None or db.vendor != "postgresql":
        yield  # nested (the outer block sends the queue), or nothing to defer to
        return
    queue = _Queue()
    db._loyalty_queue = queue
    try:
        with db.execute_wrapper(queue):
            yield
            if queue.statements:
                with db.cursor() as cursor:
                    queue.send(cursor)
    finally:
        db._loyalty_queue = None


@contextmanager
def atomic() -> Iterator[None]:
    """transaction.atomic() with write_behind() inside, in two round trips fewer when this
    block begins the transaction (on PostgreSQL, outside any atomic block): BEGIN goes with
    the block's first statement, COMMIT with its last deferred ones.

    The driver stays in autocommit mode (it would send a BEGIN of its own otherwise) while
    Django's connection is marked as inside an atomic block, as transaction.atomic() marks
    it: nested atomic blocks make savepoints, select_for_update() is allowed, on_commit()
    callbacks wait for the commit (and are dropped by a rollback). Anything run inside must
    go through Django's cursors (COPY and other raw-cursor calls: flush() first), and must not
    commit or roll back by itself, which Django forbids inside atomic blocks anyway."""
    db = connections[DEFAULT_DB_ALIAS]
    if (
        db.vendor != "postgresql"
        or db.in_atomic_block
        or not db.get_autocommit()
        or db.__dict__.get("_loyalty_queue") is not None
    ):
        with transaction.atomic(), write_behind():
            yield
        return
    db.close_if_health_check_failed()
    db.ensure_connection()
    queue = _Queue(begin=True)
    block = transaction.Atomic(DEFAULT_DB_ALIAS, savepoint=True, durable=False)
    db.commit_on_exit = True
    db.needs_rollback = False
    db.autocommit = False  # Django's view of it; the driver's stays on
    db.in_atomic_block = True
    db.atomic_blocks.append(block)
    db._loyalty_queue = queue
    committed = False
    try:
        with db.execute_wrapper(queue):
            try:
                yield
            finally:
                db.atomic_blocks.remove(block)
                db.in_atomic_block = False
            if not db.needs_rollback and not db.closed_in_transaction:
                if queue.statements or queue.began:
                    with db.cursor() as cursor:
                        queue.send(cursor, commit=True)
                committed = True
                db.errors_occurred = False
    except BaseException:
        if queue.began and not db.closed_in_transaction:
            _rollback(db)
        raise
    else:
        if not committed and queue.began and not db.closed_in_transaction:
            _rollback(db)
    finally:
        db._loyalty_queue = None
        db.in_atomic_block = False
        db.autocommit = True
        if db.closed_in_transaction:
            db.connection = None
        if committed:
            db.run_and_clear_commit_hooks()
        else:
            db.run_on_commit = []
        db.needs_rollback = False


def _rollback(db) -> None:
    try:
        with db.cursor() as cursor:
            cursor.cursor.execute("ROLLBACK")
    except Exception:  # the connection is broken: drop it, the next one starts clean
        db.close()


def defer(sql: str, params: Sequence | Mapping = ()) -> None:
    """Run a statement that returns nothing with the next one (inside write_behind()), or now
    (outside)."""
    db = connections[DEFAULT_DB_ALIAS]
    queue = db.__dict__.get("_loyalty_queue")
    if queue is not None:
        queue.statements.append((sql, params))
        return
    with db.cursor() as cursor:
        execute(cursor, sql, params)


def flush() -> None:
    """Send BEGIN and the queued statements now (before a statement that bypasses Django's
    cursor, such as COPY)."""
    db = connections[DEFAULT_DB_ALIAS]
    queue = db.__dict__.get("_loyalty_queue")
    if queue is not None and (queue.statements or queue.begin):
        with db.cursor() as cursor:
            queue.send(cursor)


__all__ = [
    "atomic",
    "defer",
    "execute",
    "fetchall",
    "fetchone",
    "flush",
    "run",
    "sequence",
    "write_behind",
]
