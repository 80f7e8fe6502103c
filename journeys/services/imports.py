"""Bulk import of a shop's or CRM's order history (customer_id, date, amount[, order_id,
channel]) as purchase events.

Built for millions of rows:
1. one streaming pass validates every row and writes the clean rows to a spooled CSV file;
   any bad row fails the whole import before anything is written, each reported by line;
2. PostgreSQL COPY loads that file into a temporary table, where each row gets its
   idempotency key (`import:<customer>:<order_id>`, or `import:<customer>:<UTC time>:<amount>:
   <n>` for the n-th identical row without an order id), so importing a file again adds nothing;
3. per batch of whole customers, in one transaction: unknown customers are enrolled in bulk,
   events are added with one INSERT ... SELECT ... ON CONFLICT DO NOTHING, points are awarded
   through the rewards engine per member in time order (unless --no-points), and the stages
   are replayed in memory and written in bulk.
"""

import csv
import io
import logging
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Protocol
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.utils import timezone

from members.models import Channel, Member
from members.services import generate_member_number, generate_referral_code
from rewards.models import PointsAccount
from rewards.selectors import program_settings
from rewards.services import EventInput, award_for_event

from ..models import EventSource, EventType, TouchpointChannel
from .bulk import copy_from, copy_text, csv_value
from .ingest import AWARD_KEY_PREFIX, MAX_AMOUNT, MAX_CLOCK_SKEW
from .stages import JourneyConfig, replay_events

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("customer_id", "date", "amount")
OPTIONAL_COLUMNS = ("order_id", "channel")
MAX_REPORTED_ERRORS = 1000
CENT = Decimal("0.01")
ROWS_TABLE = "journeys_import_rows"
KEYED_TABLE = "journeys_import_keyed"


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
    batch_size: int = 20_000,
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
    with tempfile.TemporaryFile("w+", newline="", encoding="utf-8") as clean:
        progress.start("validating", None)
        checked = _validate(lines, clean, date_format=date_format, zone=zone, progress=progress)
        progress.finish()
        if checked.error_count:
            raise ImportFailed(checked.errors, checked.error_count)
        report = ImportReport(rows=checked.rows)
        if not checked.rows:
            return report
        clean.seek(0)
        try:
            _load(clean)
            progress.start("importing", checked.rows)
            for customers in _batches(checked.customers, batch_size):
                _import_batch(
                    customers,
                    report,
                    currency=settings_row.currency,
                    award_points=award_points,
                )
                progress.advance(sum(c.rows for c in customers.values()))
            progress.finish()
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {KEYED_TABLE}, {ROWS_TABLE}")
    report.duplicates = report.rows - report.created
    logger.info("import_transactions: %s", report)
    return report


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
    channels = set(TouchpointChannel.values)
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
            problems.append(
                f"date {date_text!r} does not match "
                + (f"the format {date_format!r}" if date_format else "YYYY-MM-DD or YYYYMMDD")
            )
            moment = None
        else:
            if moment > latest:
                problems.append(f"date {date_text!r} is in the future")
        try:
            amount = Decimal(amount_text)
            if not amount.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            problems.append(f"amount {amount_text!r} is not a number")
            amount = None
        else:
            if amount < 0:
                problems.append(f"amount {amount_text} is negative")
            elif amount != amount.quantize(CENT) or amount > MAX_AMOUNT:
                problems.append(f"amount {amount_text} has more than 2 decimals or is too large")
            else:
                amount = amount.quantize(CENT)
        if len(order_id) > 100:
            problems.append("order_id is longer than 100 characters")
        if channel and channel not in channels:
            problems.append(f"channel {channel!r} is not one of {', '.join(sorted(channels))}")
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


def _load(clean) -> None:
    """COPY the clean rows into a temporary table and key them."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {KEYED_TABLE}, {ROWS_TABLE}")
        cursor.execute(
            f"""CREATE TEMPORARY TABLE {ROWS_TABLE} (
                line integer, customer_id text, occurred_at timestamptz, amount numeric(12, 2),
                order_id text, channel text, key_base text, has_order boolean
            )"""
        )
        copy_from(cursor, f"COPY {ROWS_TABLE} FROM STDIN WITH (FORMAT csv)", clean)
        cursor.execute(
            """CREATE TEMPORARY TABLE journeys_import_keyed AS
            SELECT line, customer_id, occurred_at, amount,
                coalesce(order_id, '') AS order_id, coalesce(channel, '') AS channel,
                CASE WHEN has_order THEN key_base
                     ELSE key_base || ':' || row_number() OVER (
                        PARTITION BY key_base ORDER BY line)
                END AS idempotency_key
            FROM journeys_import_rows"""
        )
        cursor.execute(f"DROP TABLE {ROWS_TABLE}")
        cursor.execute(f"CREATE INDEX ON {KEYED_TABLE} (customer_id)")
        cursor.execute(f"ANALYZE {KEYED_TABLE}")


def _batches(customers: dict[str, _Customer], batch_size: int):
    """Whole customers per batch, about batch_size rows each."""
    batch: dict[str, _Customer] = {}
    rows = 0
    for customer_id in sorted(customers):
        batch[customer_id] = customers[customer_id]
        rows += customers[customer_id].rows
        if rows >= batch_size:
            yield batch
            batch, rows = {}, 0
    if batch:
        yield batch


# -- 3. writing ------------------------------------------------------------------------------

_INSERT_SQL = """
INSERT INTO journeys_customerevent (
    member_id, event_type, occurred_at, received_at, channel, touchpoint_id, amount, currency,
    order_id, properties, idempotency_key, source, points_awarded, response
)
SELECT m.id, %(event_type)s, k.occurred_at, %(now)s, k.channel, NULL, k.amount, %(currency)s,
    k.order_id, '{}'::jsonb, k.idempotency_key, %(source)s, 0, '{}'::jsonb
FROM journeys_import_keyed k JOIN members_member m ON m.external_id = k.customer_id
WHERE k.customer_id = ANY(%(customers)s)
ORDER BY m.id, k.occurred_at, k.line
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id, member_id, occurred_at, amount, order_id, channel, idempotency_key
"""

_POINTS_SQL = """
UPDATE journeys_customerevent e SET points_awarded = v.points
FROM unnest(%s::bigint[], %s::integer[]) AS v(id, points)
WHERE e.id = v.id
"""


def _import_batch(
    customers: dict[str, _Customer], report: ImportReport, *, currency: str, award_points: bool
) -> None:
    with transaction.atomic():
        report.members_enrolled += enroll_customers(
            {cid: c.first_at for cid, c in customers.items()}
        )
        with connection.cursor() as cursor:
            cursor.execute(
                _INSERT_SQL,
                {
                    "event_type": EventType.PURCHASE.value,
                    "now": timezone.now(),
                    "currency": currency,
                    "source": EventSource.IMPORT.value,
                    "customers": list(customers),
                },
            )
            created = cursor.fetchall()
        report.created += len(created)
        if not created:
            return
        created.sort(key=lambda row: (row[1], row[2], row[0]))
        if award_points:
            report.points_awarded += _award(created, currency)
        report.transitions += replay_events(
            config=JourneyConfig.load(),
            events=[(row[0], row[1], EventType.PURCHASE.value, row[2]) for row in created],
            as_of=timezone.now(),
        )


def _award(created: list[tuple], currency: str) -> int:
    """Points through the rewards engine, per member in time order; accounts locked up front
    in member order, as every bulk writer does."""
    member_ids = sorted({row[1] for row in created})
    members = Member.objects.in_bulk(member_ids)
    list(
        PointsAccount.objects.select_for_update()
        .filter(member_id__in=member_ids)
        .order_by("member_id")
        .values_list("id", flat=True)
    )
    ids, points = [], []
    total = 0
    for event_id, member_id, occurred_at, amount, order_id, channel, key in created:
        award = award_for_event(
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
        if award.points:
            ids.append(event_id)
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
    known = _existing_external_ids(list(customers))
    missing = [cid for cid in customers if cid not in known]
    if not missing:
        return 0
    columns, template, varying = _member_template()
    enrolled = 0
    for _ in range(10):
        with connection.cursor() as cursor:
            cursor.execute(_MEMBER_TABLE_SQL.format(columns=", ".join(columns)))
            cursor.execute("TRUNCATE journeys_import_members")
        text = io.StringIO()
        row = [csv_value(value) for value in template]
        external, enrolled_at = varying["external_id"], varying["enrolled_at"]
        number, code = varying["member_number"], varying["referral_code"]
        for cid in missing:
            row[external] = csv_value(cid)
            row[enrolled_at] = customers[cid].isoformat()
            row[number] = csv_value(generate_member_number())
            row[code] = csv_value(generate_referral_code())
            text.write(",".join(row))
            text.write("\n")
        copy_text("journeys_import_members", columns, text)
        with connection.cursor() as cursor:
            cursor.execute(_MEMBER_INSERT_SQL.format(columns=", ".join(columns)))
            inserted = {external_id for (external_id,) in cursor.fetchall()}
        enrolled += len(inserted)
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
RETURNING external_id
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
