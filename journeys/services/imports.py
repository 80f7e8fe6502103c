"""Bulk import of a shop's or CRM's order history (customer_id, date, amount[, order_id,
channel]) as purchase events.

Built for millions of rows, set-based:
1. the file is COPYed as it is into a staging table and validated with SQL; each distinct
   date, unusual amount and channel is checked once in Python by the same code the row-by-row
   path uses. A file that is not plain one-row-per-line CSV of one width (a quoted line break,
   a blank line, a short row) is read by that row-by-row path instead, with the same messages.
   Any bad row fails the whole import before anything is written, each reported by line;
2. every row gets its idempotency key (`import:<customer>:<order_id>`, or
   `import:<customer>:<UTC time>:<amount>:<n>` for the n-th identical row without an order
   id), so importing a file again adds nothing, and a batch number (whole customers, about
   batch_size rows), in an unlogged table;
3. per batch, in one transaction: unknown customers are enrolled with one COPY, events are
   added with one INSERT ... SELECT ... ON CONFLICT DO NOTHING, points are awarded by
   rewards.services.bulk.award_events (the engine's awards, written in bulk; unless
   --no-points), and the stage moves of the members the batch enrolled are computed by one
   SQL statement (stages.purchase_replay_sql); members with an earlier journey are replayed
   by the Python engine. Two connections write batches at once when the caller holds no
   transaction.
"""

import csv
import io
import logging
import secrets
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Protocol
from zoneinfo import ZoneInfo

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from members.models import Channel, Member
from members.services import REFERRAL_ALPHABET, generate_member_number
from rewards.models import PointsAccount, PointsBucket, PointsTransaction, Purchase, RuleAward
from rewards.selectors import program_settings
from rewards.services import EventInput
from rewards.services.bulk import (
    EventAward,
    award_events,
    copy_from,
    copy_rows,
    copy_text,
    csv_value,
)

from ..models import CustomerEvent, EventSource, EventType, MemberJourney, StageTransition
from .ingest import AWARD_KEY_PREFIX, CENT, CHANNELS, MAX_AMOUNT, MAX_CLOCK_SKEW
from .stages import JourneyConfig, purchase_replay_sql, replay_events

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("customer_id", "date", "amount")
OPTIONAL_COLUMNS = ("order_id", "channel")
MAX_REPORTED_ERRORS = 1000
ROWS_TABLE = "journeys_import_rows"
KEYED_TABLE = "journeys_import_keyed"
RAW_TABLE = "journeys_import_raw"
VALUES_TABLE = "journeys_import_values"
NEW_EVENTS_TABLE = "journeys_import_new"
REPLAY_TABLE = "journeys_import_replay"
VALUES_COLUMNS = ("kind", "raw", "moment", "stamp", "amount", "amount_key", "value", "problem")


class Progress(Protocol):
    def start(self, phase: str, total: int | None) -> None: ...

    def advance(self, rows: int) -> None: ...

    def finish(self) -> None: ...


class _NoProgress:
    def start(self, phase: str, total: int | None) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    duplicates: int = 0
    members_enrolled: int = 0
    points_awarded: int = 0
    transitions: int = 0


class ImportFailed(Exception):
    """The file has bad rows; nothing was written. `errors` holds (line, message) pairs."""

    def __init__(self, errors: list[tuple[int, str]], total: int):
        self.errors = errors
        self.total = total
        super().__init__(f"{total} bad row(s); nothing was imported.")


@dataclass
class _Customer:
    first_at: datetime
    rows: int = 0


@dataclass
class _Validated:
    rows: int = 0
    customers: dict[str, _Customer] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)
    error_count: int = 0


# -- public ----------------------------------------------------------------------------------


def import_transactions(
    *,
    lines: Iterable[str],
    date_format: str | None = None,
    award_points: bool = True,
    batch_size: int = 100_000,
    progress: Progress | None = None,
) -> ImportReport:
    """Import purchase history from CSV text lines (a file opened with newline="").

    Raises ImportFailed, with every bad row's line number, before writing anything."""
    if connection.vendor != "postgresql":
        raise RuntimeError("The transaction import needs PostgreSQL (it loads with COPY).")
    if batch_size < 1:
        raise ValueError("The batch size must be at least 1.")
    progress = progress or _NoProgress()
    settings_row = program_settings()
    zone = ZoneInfo(settings_row.timezone)
    if not hasattr(lines, "seek") and not isinstance(lines, list | tuple):
        lines = list(lines)  # read twice if the fast path gives up
    _session_settings()
    # The keyed rows live in an unlogged table (no WAL), not a temporary one, so that other
    # connections can write batches in parallel.
    keyed = f"{KEYED_TABLE}_{secrets.token_hex(6)}"
    _claim_staging(keyed)
    options = {"date_format": date_format, "zone": zone, "progress": progress}
    try:
        progress.start("validating", None)
        try:
            rows = _stage_fast(lines, keyed=keyed, batch_size=batch_size, **options)
        except _NotSimple:
            rows = _stage_exact(lines, keyed=keyed, batch_size=batch_size, **options)
        progress.finish()
        report = ImportReport(rows=rows)
        if rows:
            batches = _number_batches(keyed)
            progress.start("importing", rows)
            _run_batches(
                batches,
                report,
                keyed=keyed,
                currency=settings_row.currency,
                award_points=award_points,
                progress=progress,
            )
            progress.finish()
            _refresh_statistics(report.created, award_points=award_points)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DROP TABLE IF EXISTS {keyed}, {ROWS_TABLE}, {RAW_TABLE}, {VALUES_TABLE}"
            )
            cursor.execute("RESET work_mem")
            cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [keyed])
    report.duplicates = report.rows - report.created
    logger.info("import_transactions: %s", report)
    return report


def _claim_staging(keyed: str) -> None:
    """Hold the lock that says `keyed` belongs to a running import (for this session), and
    drop the staging tables of imports that were killed mid-way: nobody holds their lock any
    more (PostgreSQL releases a session's locks when it ends)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(hashtext(%s))", [keyed])
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename LIKE %s",
            [KEYED_TABLE.replace("_", r"\_") + r"\_%"],
        )
        for (name,) in cursor.fetchall():
            cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [name])
            if cursor.fetchone()[0]:
                logger.info("import_transactions: dropping %s, left by a stopped import", name)
                cursor.execute(f'DROP TABLE IF EXISTS "{name}"')
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s))", [name])


def _refresh_statistics(created: int, *, award_points: bool) -> None:
    """ANALYZE the tables an import filled when it added more than a tenth of the events
    table, as autovacuum would later (if it runs at all): until then PostgreSQL plans with the
    old row counts, and a member's event history, read by every batch, took 150 ms instead of
    under 1 ms after a million-row import into an empty table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
            [CustomerEvent._meta.db_table],
        )
        known = cursor.fetchone()[0]
        if known >= 0 and created * 10 <= known:
            return
        tables = [Member, CustomerEvent, MemberJourney, StageTransition]
        if award_points:
            tables += [PointsAccount, PointsTransaction, PointsBucket, Purchase, RuleAward]
        cursor.execute(f"ANALYZE {', '.join(model._meta.db_table for model in tables)}")


def _session_settings() -> None:
    """Memory for sorting a whole file; temporary tables kept in memory when the session has
    not used one yet (PostgreSQL refuses the change afterwards)."""
    with connection.cursor() as cursor:
        cursor.execute("SET work_mem = '256MB'")
        try:
            with transaction.atomic():
                cursor.execute("SET temp_buffers = '512MB'")
        except DatabaseError:
            pass


PARALLEL_BATCHES = 2


def _run_batches(batches, report: ImportReport, *, keyed: str, progress, **options) -> None:
    """The batches in order; with two connections at once when the caller holds no
    transaction (each batch is its own transaction either way)."""
    if connection.in_atomic_block or len(batches) < 2 or PARALLEL_BATCHES < 2:
        for batch, rows in batches:
            _import_batch(batch, report, keyed=keyed, **options)
            progress.advance(rows)
        return
    todo = list(batches)
    lock = threading.Lock()
    failures: list[BaseException] = []
    reports: list[ImportReport] = []

    def work() -> None:
        mine = ImportReport()
        try:
            _session_settings()
            while True:
                with lock:
                    if failures or not todo:
                        break
                    batch, rows = todo.pop(0)
                _import_batch(batch, mine, keyed=keyed, **options)
                with lock:
                    progress.advance(rows)
        except BaseException as exc:  # re-raised in the calling thread
            with lock:
                failures.append(exc)
        finally:
            with lock:
                reports.append(mine)
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(PARALLEL_BATCHES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for part in reports:
        report.created += part.created
        report.members_enrolled += part.members_enrolled
        report.points_awarded += part.points_awarded
        report.transitions += part.transitions
    if failures:
        raise failures[0]


class _NotSimple(Exception):
    """The file is not plain one-row-per-line CSV: the exact (slower) path reads it."""


# -- 1a. the fast path: COPY the file as it is, validate in SQL --------------------------------


class _Feed:
    """A file-like view of the CSV text for COPY that counts the lines it hands over."""

    def __init__(self, first: str, chunks):
        self.pending = first
        self.chunks = chunks
        self.newlines = 0
        self.last = ""

    def read(self, size: int = -1) -> str:
        text = self.pending
        self.pending = ""
        if not text:
            text = next(self.chunks, "")
        if text:
            self.newlines += text.count("\n")
            self.last = text[-1]
        return text

    @property
    def lines(self) -> int:
        return self.newlines + (1 if self.last and self.last != "\n" else 0)


def _chunks(lines, size: int = 1 << 20):
    read = getattr(lines, "read", None)
    if read is not None:
        while chunk := read(size):
            yield chunk
        return
    buffer: list[str] = []
    length = 0
    for line in lines:
        buffer.append(line)
        length += len(line)
        if length >= size:
            yield "".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer)


def _stage_fast(lines, *, keyed, date_format, zone, progress, batch_size) -> int:
    """COPY the file into a staging table and validate it with a few SQL statements; the values
    a regular expression cannot vouch for (every distinct date, unusual amounts, channels) are
    checked in Python once per distinct value, by the same code as the exact path."""
    if hasattr(lines, "seek"):
        start = lines.tell()
        first = lines.readline()
        chunks = _chunks(lines)
    else:
        if any(not line.endswith(("\n", "\r")) for line in lines[:-1]):
            raise _NotSimple  # lines without their line breaks: csv.reader reads those
        first = lines[0] if lines else ""
        chunks = _chunks(lines[1:])
    if not first.strip():
        raise _NotSimple  # an empty file or a leading blank line
    cells = next(csv.reader([first]), [])
    columns, fewest, most, is_header = _columns(cells)
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing or not (is_header or fewest <= len(cells) <= most):
        raise _NotSimple
    width = len(cells)
    names = [f"c{i}" for i in range(width)]
    feed = _Feed("" if is_header else first, chunks)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {RAW_TABLE} (line bigint GENERATED BY DEFAULT AS "
                f"IDENTITY, {', '.join(n + ' text' for n in names)})"
            )
            copy_from(
                cursor,
                f"COPY {RAW_TABLE} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)",
                feed,
            )
            rows = cursor.rowcount
    except (DatabaseError, connection.Database.Error) as exc:  # a short row, a blank line...
        logger.debug("import: fast path declined (%s)", str(exc).strip().splitlines()[0])
        _rewind(lines, start if hasattr(lines, "seek") else None)
        raise _NotSimple from exc
    header_lines = 1 if is_header else 0
    if rows != feed.lines:  # a quoted line break: line numbers would shift
        _rewind(lines, start if hasattr(lines, "seek") else None)
        raise _NotSimple
    progress.advance(rows)
    position = {name: f"r.c{index}" for name, index in columns.items() if index < width}
    _check_sql(
        position,
        header_lines,
        keyed=keyed,
        date_format=date_format,
        zone=zone,
        batch_size=batch_size,
    )
    return rows


def _rewind(lines, start) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {RAW_TABLE}")
    if start is not None:
        lines.seek(start)


_STRIP = "E' \\t\\n\\r\\f\\v'"
_PLAIN_AMOUNT = "^[0-9]{1,10}([.][0-9]{1,2})?$"


def _check_sql(
    position: dict[str, str], header_lines: int, *, keyed, date_format, zone, batch_size: int
) -> None:
    """Validate the staged rows; raise ImportFailed with the bad lines, or build the keyed
    table the batches read."""
    cust = f"btrim(coalesce({position['customer_id']}, ''), {_STRIP})"
    date_col = f"coalesce({position['date']}, '')"
    amount_col = f"coalesce({position['amount']}, '')"
    order_r = (
        f"btrim(coalesce({position['order_id']}, ''), {_STRIP})" if "order_id" in position else "''"
    )
    channel = f"coalesce({position['channel']}, '')" if "channel" in position else "''"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {VALUES_TABLE}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {VALUES_TABLE} (kind char(1), raw text, moment timestamptz, "
            f"stamp text, amount numeric(12, 2), amount_key text, value text, problem text)"
        )
        # One scan for the distinct dates, unusual amounts and channels.
        cursor.execute(
            f"""SELECT d, a, ch, GROUPING(d), GROUPING(a) FROM (
                SELECT {date_col} AS d, {channel} AS ch,
                    CASE WHEN {amount_col} !~ %s THEN {amount_col} END AS a
                FROM {RAW_TABLE} r
            ) v GROUP BY GROUPING SETS ((d), (a), (ch))""",  # noqa: S608
            [_PLAIN_AMOUNT],
        )
        dates, amounts, channels = [], [], []
        for d, a, ch, no_date, no_amount in cursor.fetchall():
            if not no_date:
                dates.append(d)
            elif not no_amount:
                if a is not None:
                    amounts.append(a)
            else:
                channels.append(ch)
    values = []
    parse_date = _date_parser(date_format, zone)
    latest = timezone.now() + MAX_CLOCK_SKEW
    for raw in dates:
        moment, stamp, problem = None, None, None
        date_text = raw.strip()
        try:
            moment, _, stamp = parse_date(date_text)
        except ValueError:
            problem = _date_problem(date_text, date_format)
        else:
            if moment > latest:
                problem = f"date {date_text!r} is in the future"
                moment = None
        values.append(("d", raw, moment, stamp, None, None, None, problem))
    for raw in amounts:
        amount, problem = _parse_amount(raw.strip())
        key = str(amount) if amount is not None else None
        values.append(("a", raw, None, None, amount, key, None, problem))
    for raw in channels:
        value = raw.strip().lower()
        values.append(("c", raw, None, None, None, None, value, _channel_problem(value)))
    copy_rows(VALUES_TABLE, VALUES_COLUMNS, values)
    problems = f"""concat_ws('; ',
        CASE WHEN {cust} = '' THEN 'customer_id is empty'
             WHEN length({cust}) > 64 THEN 'customer_id is longer than 64 characters' END,
        d.problem, a.problem,
        CASE WHEN length({order_r}) > 100 THEN 'order_id is longer than 100 characters' END,
        ch.problem)"""
    plain = f"CASE WHEN a.raw IS NULL THEN {amount_col}::numeric(12, 2) END"
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {VALUES_TABLE}")
        cursor.execute(f"DROP TABLE IF EXISTS {keyed}")
        cursor.execute(
            f"""CREATE UNLOGGED TABLE {keyed} AS
            SELECT line, customer_id, occurred_at, amount, order_id, channel,
                CASE WHEN order_id <> '' THEN 'import:' || customer_id || ':' || order_id
                     ELSE 'import:' || customer_id || ':' || stamp || ':' || amount_key || ':'
                        || row_number() OVER (
                            PARTITION BY customer_id COLLATE "C", stamp, amount_key,
                                order_id = ''
                            ORDER BY line)
                END AS idempotency_key,
                {_BATCH_SQL} AS batch, problem
            FROM (
                SELECT r.line + {header_lines} AS line, {cust} AS customer_id,
                    d.moment AS occurred_at, coalesce(a.amount, {plain}) AS amount,
                    {order_r} AS order_id, ch.value AS channel, d.stamp,
                    coalesce(a.amount_key, ({plain})::text) AS amount_key,
                    {problems} AS problem
                FROM {RAW_TABLE} r
                JOIN {VALUES_TABLE} d ON d.kind = 'd' AND d.raw = {date_col}
                LEFT JOIN {VALUES_TABLE} a ON a.kind = 'a' AND a.raw = {amount_col}
                JOIN {VALUES_TABLE} ch ON ch.kind = 'c' AND ch.raw = {channel}
            ) rows""",  # noqa: S608
            {"batch_size": batch_size},
        )
        cursor.execute(f"DROP TABLE {RAW_TABLE}")
        cursor.execute(
            f"SELECT line, problem FROM {keyed} WHERE problem <> '' ORDER BY line"  # noqa
        )
        bad = cursor.fetchall()
        if bad:
            raise ImportFailed(bad[:MAX_REPORTED_ERRORS], len(bad))


# Whole customers per batch, about batch_size rows each, in customer order: rank() - 1 is the
# number of rows of the customers before this one (one streaming pass over the sorted rows,
# where counting each customer's rows would keep every customer's rows in memory once more).
_BATCH_SQL = """(rank() OVER (ORDER BY customer_id COLLATE "C") - 1) / %(batch_size)s"""


def _date_problem(date_text: str, date_format: str | None) -> str:
    return f"date {date_text!r} does not match " + (
        f"the format {date_format!r}" if date_format else "YYYY-MM-DD or YYYYMMDD"
    )


def _channel_problem(channel: str) -> str | None:
    if channel and channel not in CHANNELS:
        return f"channel {channel!r} is not one of {', '.join(sorted(CHANNELS))}"
    return None


def _parse_amount(amount_text: str) -> tuple[Decimal | None, str | None]:
    try:
        amount = Decimal(amount_text)
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        return None, f"amount {amount_text!r} is not a number"
    if amount < 0:
        return None, f"amount {amount_text} is negative"
    if amount != amount.quantize(CENT) or amount > MAX_AMOUNT:
        return None, f"amount {amount_text} has more than 2 decimals or is too large"
    return amount.quantize(CENT), None


# -- 1b. the exact path: Python reads every row ------------------------------------------------


def _stage_exact(lines, *, keyed, date_format, zone, progress, batch_size) -> int:
    with tempfile.TemporaryFile("w+", newline="", encoding="utf-8") as clean:
        checked = _validate(lines, clean, date_format=date_format, zone=zone, progress=progress)
        if checked.error_count:
            raise ImportFailed(checked.errors, checked.error_count)
        if checked.rows:
            clean.seek(0)
            _load(clean, keyed, batch_size)
        return checked.rows


# -- 1. validation ---------------------------------------------------------------------------


def _date_parser(date_format: str | None, zone: ZoneInfo):
    """Text to (aware datetime, ISO text, UTC key stamp), cached: dates repeat a lot."""
    cache: dict[str, tuple[datetime, str, str]] = {}

    def parse(text: str) -> tuple[datetime, str, str]:
        found = cache.get(text)
        if found is not None:
            return found
        if date_format:
            moment = datetime.strptime(text, date_format)
        else:
            try:
                moment = datetime.combine(date.fromisoformat(text), time.min)
            except ValueError:
                moment = datetime.fromisoformat(text)
        if timezone.is_naive(moment):
            moment = moment.replace(tzinfo=zone)
        found = (moment, moment.isoformat(), moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S"))
        if len(cache) < 200_000:
            cache[text] = found
        return found

    return parse


def _columns(first_row: list[str]) -> tuple[dict[str, int], int, int, bool]:
    """Column positions, the fewest and most cells a row may have, and whether the first row
    is a header (then other columns are ignored); without one the order is fixed."""
    names = [cell.strip().lower() for cell in first_row]
    if "customer_id" in names:
        known = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
        return {n: names.index(n) for n in known if n in names}, len(names), len(names), True
    every = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
    return {n: i for i, n in enumerate(every)}, len(REQUIRED_COLUMNS), len(every), False


def _validate(lines, clean, *, date_format, zone, progress) -> _Validated:
    result = _Validated()
    reader = csv.reader(lines)
    writer = csv.writer(clean, lineterminator="\n")
    parse_date = _date_parser(date_format, zone)
    latest = timezone.now() + MAX_CLOCK_SKEW
    columns: dict[str, int] | None = None
    fewest = most = 0

    def bad(line: int, message: str) -> None:
        result.error_count += 1
        if len(result.errors) < MAX_REPORTED_ERRORS:
            result.errors.append((line, message))

    pending = 0
    for row in reader:
        line = reader.line_num
        pending += 1
        if pending == 10_000:
            progress.advance(pending)
            pending = 0
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if columns is None:
            columns, fewest, most, is_header = _columns(row)
            missing = [name for name in REQUIRED_COLUMNS if name not in columns]
            if missing:
                bad(line, f"missing column(s): {', '.join(missing)}")
                return result
            if is_header:
                continue
        if not fewest <= len(row) <= most:
            expected = str(fewest) if fewest == most else f"{fewest} to {most}"
            bad(line, f"expected {expected} columns, found {len(row)}")
            continue
        customer_id = row[columns["customer_id"]].strip()
        date_text = row[columns["date"]].strip()
        amount_text = row[columns["amount"]].strip()
        position = columns.get("order_id", len(row))
        order_id = row[position].strip() if position < len(row) else ""
        position = columns.get("channel", len(row))
        channel = row[position].strip().lower() if position < len(row) else ""
        problems = []
        if not customer_id:
            problems.append("customer_id is empty")
        elif len(customer_id) > 64:
            problems.append("customer_id is longer than 64 characters")
        try:
            moment, moment_iso, stamp = parse_date(date_text)
        except ValueError:
            problems.append(_date_problem(date_text, date_format))
            moment = None
        else:
            if moment > latest:
                problems.append(f"date {date_text!r} is in the future")
        amount, problem = _parse_amount(amount_text)
        if problem:
            problems.append(problem)
        if len(order_id) > 100:
            problems.append("order_id is longer than 100 characters")
        problem = _channel_problem(channel)
        if problem:
            problems.append(problem)
        if problems:
            bad(line, "; ".join(problems))
            continue
        result.rows += 1
        customer = result.customers.get(customer_id)
        if customer is None:
            customer = result.customers[customer_id] = _Customer(first_at=moment)
        elif moment < customer.first_at:
            customer.first_at = moment
        customer.rows += 1
        amount_str = str(amount)
        if order_id:
            key_base = f"import:{customer_id}:{order_id}"
        else:
            key_base = f"import:{customer_id}:{stamp}:{amount_str}"
        writer.writerow(
            (
                line,
                customer_id,
                moment_iso,
                amount_str,
                order_id,
                channel,
                key_base,
                "t" if order_id else "f",
            )
        )
    progress.advance(pending)
    return result


# -- 2. loading ------------------------------------------------------------------------------


def _load(clean, keyed: str, batch_size: int) -> None:
    """COPY the clean rows into a temporary table and key them."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {keyed}, {ROWS_TABLE}")
        cursor.execute(
            f"""CREATE TEMPORARY TABLE {ROWS_TABLE} (
                line integer, customer_id text, occurred_at timestamptz, amount numeric(12, 2),
                order_id text, channel text, key_base text, has_order boolean
            )"""
        )
        copy_from(cursor, f"COPY {ROWS_TABLE} FROM STDIN WITH (FORMAT csv)", clean)
        cursor.execute(
            f"""CREATE UNLOGGED TABLE {keyed} AS
            SELECT line, customer_id, occurred_at, amount,
                coalesce(order_id, '') AS order_id, coalesce(channel, '') AS channel,
                CASE WHEN has_order THEN key_base
                     ELSE key_base || ':' || row_number() OVER (
                        PARTITION BY key_base ORDER BY line)
                END AS idempotency_key,
                {_BATCH_SQL} AS batch
            FROM journeys_import_rows""",  # noqa: S608
            {"batch_size": batch_size},
        )
        cursor.execute(f"DROP TABLE {ROWS_TABLE}")


def _number_batches(keyed: str) -> list[tuple[int, int]]:
    """(batch, rows) of the keyed table."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE INDEX ON {keyed} (batch)")
        cursor.execute(f"ANALYZE {keyed}")
        cursor.execute(
            f"SELECT batch, count(*) FROM {keyed} GROUP BY batch ORDER BY batch"  # noqa
        )
        return cursor.fetchall()


# -- 3. writing ------------------------------------------------------------------------------

_INSERT_SQL = """
WITH added AS (
    INSERT INTO journeys_customerevent (
        member_id, event_type, occurred_at, received_at, channel, touchpoint_id, amount,
        currency, order_id, properties, idempotency_key, source, points_awarded, response
    )
    SELECT m.id, %(event_type)s, k.occurred_at, %(now)s, k.channel, NULL, k.amount,
        %(currency)s, k.order_id, '{{}}'::jsonb, k.idempotency_key, %(source)s, 0, '{{}}'::jsonb
    FROM {keyed} k
    JOIN members_member m ON m.external_id = k.customer_id
    WHERE k.batch = %(batch)s
    ORDER BY m.id, k.occurred_at, k.line
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, member_id, occurred_at, amount, order_id, channel, idempotency_key
)
INSERT INTO {new_events} SELECT * FROM added
"""  # noqa: S608

_POINTS_SQL = """
UPDATE journeys_customerevent e SET points_awarded = v.points
FROM unnest(%s::bigint[], %s::integer[]) AS v(id, points)
WHERE e.id = v.id
"""


def _import_batch(
    batch: int, report: ImportReport, *, keyed: str, currency: str, award_points: bool
) -> None:
    """One batch in one transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        # A crash may lose the last batches committed, which importing the file again restores
        # (it is idempotent); not waiting for the disk on each commit is worth that.
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(
            f"""SELECT k.customer_id, min(k.occurred_at) FROM {keyed} k
            WHERE k.batch = %s AND NOT EXISTS (
                SELECT 1 FROM members_member m WHERE m.external_id = k.customer_id)
            GROUP BY k.customer_id
            """,  # noqa: S608
            [batch],
        )
        new_members = _enroll(dict(cursor.fetchall()), known=set())
        report.members_enrolled += len(new_members)
        cursor.execute(
            f"""CREATE TEMPORARY TABLE IF NOT EXISTS {NEW_EVENTS_TABLE} (
                id bigint, member_id bigint, occurred_at timestamptz, amount numeric(12, 2),
                order_id text, channel text, idempotency_key text)"""
        )
        cursor.execute(f"TRUNCATE {NEW_EVENTS_TABLE}")
        cursor.execute(
            _INSERT_SQL.format(keyed=keyed, new_events=NEW_EVENTS_TABLE),
            {
                "event_type": EventType.PURCHASE.value,
                "now": timezone.now(),
                "currency": currency,
                "source": EventSource.IMPORT.value,
                "batch": batch,
            },
        )
        added = cursor.rowcount
        report.created += added
        if not added:
            return
        if award_points:
            report.points_awarded += _award_batch(currency, new_members)
        report.transitions += _stages(new_members)


def _stages(new_members: set[int]) -> int:
    """Stage moves: set-based for the members this batch enrolled, the Python engine for
    members who had a journey before."""
    config = JourneyConfig.load()
    now = timezone.now()
    replay = purchase_replay_sql(config) if new_members else None
    moved = 0
    with connection.cursor() as cursor:
        if replay is not None:
            cursor.execute(f"DROP TABLE IF EXISTS {REPLAY_TABLE}")
            cursor.execute(
                f"""CREATE TEMPORARY TABLE {REPLAY_TABLE} AS
                SELECT e.id, e.member_id, e.occurred_at FROM {NEW_EVENTS_TABLE} e
                WHERE e.member_id IN (SELECT unnest(%s::bigint[]))""",  # noqa: S608
                [sorted(new_members)],
            )
            moved += replay.run(events_table=REPLAY_TABLE, as_of=now)
            cursor.execute(
                f"""SELECT id, member_id, occurred_at FROM {NEW_EVENTS_TABLE}
                WHERE id NOT IN (SELECT id FROM {REPLAY_TABLE})""",  # noqa: S608
            )
            rest = cursor.fetchall()
            cursor.execute(f"DROP TABLE {REPLAY_TABLE}")
        else:
            cursor.execute(f"SELECT id, member_id, occurred_at FROM {NEW_EVENTS_TABLE}")  # noqa
            rest = cursor.fetchall()
    if rest:
        moved += replay_events(
            config=config,
            events=[(row[0], row[1], EventType.PURCHASE.value, row[2]) for row in rest],
            as_of=now,
        )
    return moved


def _award_batch(currency: str, new_members: set[int]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, member_id, occurred_at, amount, order_id, channel, idempotency_key "  # noqa
            f"FROM {NEW_EVENTS_TABLE} ORDER BY member_id, occurred_at, id"
        )
        created = cursor.fetchall()
    return _award(created, currency)


def _award(created: list[tuple], currency: str) -> int:
    """Points through rewards.services.bulk.award_events (the engine's awards, written in
    bulk), per member in time order."""
    members = Member.objects.in_bulk(sorted({row[1] for row in created}))
    items = [
        EventAward(
            member=members[member_id],
            event=EventInput(
                event_type=EventType.PURCHASE,
                occurred_at=occurred_at,
                amount=amount,
                currency=currency,
                channel=channel,
                order_id=order_id,
            ),
            idempotency_key=f"{AWARD_KEY_PREFIX}{key}",
        )
        for _, member_id, occurred_at, amount, order_id, channel, key in created
    ]
    ids, points = [], []
    total = 0
    for row, award in zip(created, award_events(items=items), strict=True):
        if award.points:
            ids.append(row[0])
            points.append(award.points)
            total += award.points
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(_POINTS_SQL, [ids, points])
    return total


def enroll_customers(customers: dict[str, datetime]) -> int:
    """Enroll, in bulk, the customers (external id -> enrollment time) not yet members, as
    enroll_member would for an import without an email (no login, no welcome email); returns
    how many were enrolled. Member numbers and referral codes that clash are drawn again."""
    return len(_enroll(customers, known=_existing_external_ids(list(customers))))


def _referral_codes(count: int) -> list[str]:
    """generate_referral_code's codes (8 of its 32 letters, uniform), many at once."""
    letters = REFERRAL_ALPHABET.encode()
    table = bytes(letters[b & 31] for b in range(256))
    text = secrets.token_bytes(8 * count).translate(table).decode()
    return [text[i : i + 8] for i in range(0, 8 * count, 8)]


def _enroll(customers: dict[str, datetime], *, known: set[str]) -> set[int]:
    """Enroll the customers not in `known`; returns the new members' ids."""
    missing = [cid for cid in customers if cid not in known]
    if not missing:
        return set()
    columns, template, varying = _member_template()
    enrolled: set[int] = set()
    for _ in range(10):
        with connection.cursor() as cursor:
            cursor.execute(_MEMBER_TABLE_SQL.format(columns=", ".join(columns)))
            cursor.execute("TRUNCATE journeys_import_members")
        text = io.StringIO()
        row = [csv_value(value) for value in template]
        external, enrolled_at = varying["external_id"], varying["enrolled_at"]
        number, code = varying["member_number"], varying["referral_code"]
        codes = _referral_codes(len(missing))
        for cid, referral_code in zip(missing, codes, strict=True):
            row[external] = csv_value(cid)
            row[enrolled_at] = customers[cid].isoformat()
            row[number] = generate_member_number()
            row[code] = referral_code
            text.write(",".join(row))
            text.write("\n")
        copy_text("journeys_import_members", columns, text)
        with connection.cursor() as cursor:
            cursor.execute(_MEMBER_INSERT_SQL.format(columns=", ".join(columns)))
            inserted = dict(cursor.fetchall())
        enrolled.update(inserted.values())
        # A clash on a generated code leaves the row out; so does a concurrent enrollment.
        missing = [cid for cid in missing if cid not in inserted]
        if missing:
            missing = [cid for cid in missing if cid not in _existing_external_ids(missing)]
        if not missing:
            return enrolled
    raise RuntimeError(f"Could not enroll {len(missing)} customers (code clashes).")


_MEMBER_TABLE_SQL = """
CREATE TEMPORARY TABLE IF NOT EXISTS journeys_import_members AS
SELECT {columns} FROM members_member WITH NO DATA
"""
_MEMBER_INSERT_SQL = """
INSERT INTO members_member ({columns})
SELECT {columns} FROM journeys_import_members
ON CONFLICT DO NOTHING
RETURNING external_id, id
"""


def _member_template() -> tuple[list[str], list, dict[str, int]]:
    """Every column of a member row with the model's defaults for an import enrollment, and
    where the per-customer values go: new fields of Member are picked up by themselves."""
    now = timezone.now()
    member = Member(
        enrollment_channel=Channel.IMPORT,
        enrolled_at=now,
        external_id="",
        member_number="",
        referral_code="",
    )
    fields = [f for f in Member._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields]
    template = [f.get_db_prep_save(f.pre_save(member, add=True), connection) for f in fields]
    varying = {
        name: columns.index(Member._meta.get_field(name).column)
        for name in ("external_id", "enrolled_at", "member_number", "referral_code")
    }
    return columns, template, varying


def _existing_external_ids(external_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(external_ids), 10_000):
        chunk = external_ids[start : start + 10_000]
        found.update(
            Member.objects.filter(external_id__in=chunk).values_list("external_id", flat=True)
        )
    return found


__all__ = ["ImportFailed", "ImportReport", "enroll_customers", "import_transactions"]
