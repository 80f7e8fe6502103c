"""Awards for many events at once: the batch API and the transaction import.

award_events gives every event exactly the award award_for_event would give it, processed
member by member in the given order, but with a fixed number of statements for the whole
set: accounts locked together (member order, as every bulk writer does), rules, tiers,
subscriptions, earlier purchases and used keys read once, the earning evaluated in memory by
the engine's own code (engine._evaluate), and the ledger rows (transactions, buckets, rule
awards, purchases) inserted in bulk, each account's cached counters moved with one
UPDATE ... FROM. balance == sum(ledger) holds at commit as with single awards.

A member whose events need what only the one-by-one engine does right goes through
award_for_event instead, inside the same transaction: per-member limits on a rule that
matches, a campaign offer (extra multiplier) for one of the events, or a possible tier change
between two of their earning events when tiers change what an event earns. Tier upgrades and
referral rewards for a first purchase run per member after the writes, as the engine runs
them after each award.
"""

import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import attrgetter

from django.db import connection, transaction
from django.db.models import JSONField, Model
from django.utils import timezone

from members.models import Member

from .. import registry
from ..models import (
    BENEFIT_SUBSCRIPTION_STATUSES,
    EarningRule,
    EarningRuleKind,
    PointsAccount,
    PointsTransaction,
    Purchase,
    Subscription,
    TierBasis,
    TransactionKind,
)
from ..selectors import program_settings
from . import engine
from .ledger import expiry_for, lock_accounts
from .tiers import tiers_for_upgrade, upgrade_after_earning

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EventAward:
    """One event to award: what award_for_event takes."""

    member: Member
    event: engine.EventInput
    idempotency_key: str


class _NeedsEngine(Exception):
    """This member's events take the one-by-one engine."""


def award_events(*, items: Sequence[EventAward]) -> list[engine.Award]:
    """Award each item as award_for_event would; returns the awards in the given order.

    Items of one member are awarded in the order given. One transaction (the caller's, when
    there is one)."""
    if not items:
        return []
    for item in items:
        if not item.idempotency_key:
            raise ValueError("An idempotency key is required.")
    if connection.vendor != "postgresql":
        return [
            engine.award_for_event(
                member=item.member, event=item.event, idempotency_key=item.idempotency_key
            )
            for item in items
        ]
    with transaction.atomic():
        return _Run(items).run()


class _Run:
    def __init__(self, items: Sequence[EventAward]):
        self.items = items
        self.now = timezone.now()
        self.settings_row = program_settings()
        self.results: list[engine.Award | None] = [None] * len(items)

    def run(self) -> list[engine.Award]:
        items = self.items
        by_member: dict[int, list[int]] = {}
        for index, item in enumerate(items):
            by_member.setdefault(item.member.pk, []).append(index)
        member_ids = sorted(by_member)
        self.accounts = lock_accounts(member_ids)
        used = taken_keys("rewards_pointstransaction", {item.idempotency_key for item in items})
        recorded = (
            {
                txn.idempotency_key: txn
                for txn in PointsTransaction.objects.filter(idempotency_key__in=used)
            }
            if used
            else {}
        )
        self.rules = list(EarningRule.objects.filter(is_active=True).select_related("tier"))
        self.tiers = tiers_for_upgrade()
        self.subscriptions = {
            sub.member_id: sub
            for sub in Subscription.objects.filter(
                member_id__in=member_ids, status__in=BENEFIT_SUBSCRIPTION_STATUSES
            ).select_related("plan", "plan__granted_tier")
        }
        purchases = [
            i
            for i in range(len(items))
            if items[i].event.event_type == engine.PURCHASE and items[i].event.amount is not None
        ]
        buyers = sorted({items[i].member.pk for i in purchases})
        self.bought_before = set(
            Purchase.objects.filter(member_id__in=buyers)
            .values_list("member_id", flat=True)
            .distinct()
            .order_by()
        )
        orders = {items[i].event.order_id for i in purchases if items[i].event.order_id}
        self.orders_before = set(
            Purchase.objects.filter(member_id__in=buyers, order_id__in=orders).values_list(
                "member_id", "order_id"
            )
            if orders
            else ()
        )
        times = [item.event.occurred_at or self.now for item in items]
        self.offer_members = registry.members_with_extra_multipliers(
            member_ids, min(times), max(times)
        )
        tier_sensitive = any(t.earn_multiplier != 1 for t in self.tiers) or any(
            r.kind == EarningRuleKind.MULTIPLIER and r.tier_id for r in self.rules
        )

        self.writes = _Writes()
        one_by_one: list[int] = []
        seen_keys: dict[str, int] = {}
        for member_id in member_ids:
            indexes = by_member[member_id]
            member = items[indexes[0]].member
            fresh = []
            for index in indexes:
                key = items[index].idempotency_key
                if key in recorded:
                    self.results[index] = engine._award_from_transaction(recorded[key])
                elif key in seen_keys:
                    continue  # answered below with the first item's award
                else:
                    seen_keys[key] = index
                    fresh.append(index)
            if not fresh:
                continue
            if not member.is_active:
                for index in fresh:
                    line = engine.AwardLine(None, "Member not active", 0, member.status)
                    self.results[index] = engine.Award(0, [line])
                continue
            account = self.accounts[member_id]
            upgrades_possible = bool(self.tiers) and (
                account.tier_id is None or self.tiers[-1].rank > account.tier.rank
            )
            if tier_sensitive and upgrades_possible and len(fresh) > 1:
                one_by_one.append(member_id)
                continue
            try:
                planned = [self._plan(index, member, account) for index in fresh]
            except _NeedsEngine:
                one_by_one.append(member_id)
                continue
            self.writes.add(member, account, planned, self)
        self.writes.save(self)
        self._after()
        for member_id in one_by_one:
            for index in by_member[member_id]:
                item = items[index]
                if self.results[index] is None and seen_keys.get(item.idempotency_key) == index:
                    self.results[index] = engine.award_for_event(
                        member=item.member, event=item.event, idempotency_key=item.idempotency_key
                    )
        for index, item in enumerate(items):
            if self.results[index] is None:  # a repeated key within the set
                self.results[index] = self.results[seen_keys[item.idempotency_key]]
        return self.results  # type: ignore[return-value]

    # -- evaluation --------------------------------------------------------------------------

    def _plan(self, index: int, member: Member, account: PointsAccount) -> "_Planned":
        item = self.items[index]
        event = item.event
        when = event.occurred_at or self.now
        is_purchase = event.event_type == engine.PURCHASE and event.amount is not None
        first_purchase = False
        if is_purchase:
            if event.order_id and (member.pk, event.order_id) in self.orders_before:
                line = engine.AwardLine(None, "Order already recorded", 0, event.order_id)
                return _Planned(index, engine.Award(0, [line]), when, is_purchase=False)
            first_purchase = member.pk not in self.bought_before
            self.bought_before.add(member.pk)
            if event.order_id:
                self.orders_before.add((member.pk, event.order_id))
        for rule in self.rules:
            if (
                rule.event_type in (event.event_type, "")
                and engine._has_limits(rule)
                and engine._common_filters(rule, event, when)
            ):
                raise _NeedsEngine
        lines = engine._evaluate(
            member,
            event,
            account,
            self.settings_row,
            rules=self.rules,
            subscription=self.subscriptions.get(member.pk),
            offers=_no_offers if self._may_have_offers(member.pk) else _none,
        )
        points = sum(line.points for line in lines)
        return _Planned(
            index,
            engine.Award(points, lines),
            when,
            is_purchase=is_purchase,
            first_purchase=first_purchase,
        )

    def _may_have_offers(self, member_id: int) -> bool:
        if not registry.multiplier_providers:
            return False
        return self.offer_members is None or member_id in self.offer_members

    # -- after the writes --------------------------------------------------------------------

    def _after(self) -> None:
        from .referrals import qualify_referral_on_first_purchase

        spend = self.settings_row.tier_basis == TierBasis.SPEND
        for member, account, planned in self.writes.members:
            for plan in planned:
                if plan.transaction is not None:
                    registry.notify_award(
                        member_id=member.pk, transaction=plan.transaction, lines=plan.award.lines
                    )
            qualified = any(
                p.transaction is not None and p.transaction.kind == TransactionKind.EARN
                for p in planned
            )
            bought = any(p.is_purchase for p in planned)
            if self.tiers and (qualified or (spend and bought)):
                upgrade_after_earning(
                    account=account,
                    as_of=timezone.now(),
                    settings_row=self.settings_row,
                    tiers=self.tiers,
                )
            if any(p.first_purchase for p in planned) and member.referred_by_id:
                qualify_referral_on_first_purchase(member=member)


def _no_offers(member_id: int, event, when) -> list:
    if registry.extra_multipliers(member_id, event, when):
        raise _NeedsEngine
    return []


def _none(member_id: int, event, when) -> list:
    return []


@dataclass
class _Planned:
    index: int
    award: engine.Award
    when: object
    is_purchase: bool = False
    first_purchase: bool = False
    transaction: PointsTransaction | None = None


class _Writes:
    """The rows of the bulk path, written with a handful of statements."""

    def __init__(self) -> None:
        self.members: list[tuple[Member, PointsAccount, list[_Planned]]] = []
        self.purchases: list[tuple] = []
        self.transactions: list[PointsTransaction] = []
        self.buckets: list[tuple[PointsTransaction, tuple]] = []
        self.rule_awards: list[tuple[PointsTransaction, tuple]] = []
        self.changed: dict[int, PointsAccount] = {}

    def add(self, member: Member, account: PointsAccount, planned: list[_Planned], run) -> None:
        settings_row = run.settings_row
        now = run.now
        self.members.append((member, account, planned))
        for plan in planned:
            event = run.items[plan.index].event
            award = plan.award
            if plan.is_purchase:
                self.purchases.append(
                    (
                        member.pk,
                        event.order_id,
                        event.amount,
                        (event.currency or settings_row.currency).upper(),
                        event.channel,
                        plan.when,
                        award.points,
                        None,
                    )
                )
            if award.points > 0:
                plan.transaction = self._earn(account, plan, event, run, now)
            run.results[plan.index] = award

    def _earn(self, account, plan: _Planned, event, run, now) -> PointsTransaction:
        settings_row = run.settings_row
        points = plan.award.points
        earned_at = plan.when
        available_at = earned_at + timedelta(days=settings_row.pending_days)
        pending = available_at > now
        if pending:
            account.pending += points
        else:
            account.balance += points
            account.lifetime_earned = max(0, account.lifetime_earned + points)
        if account.last_activity_at is None or earned_at > account.last_activity_at:
            account.last_activity_at = earned_at
        txn = PointsTransaction(
            member_id=account.member_id,
            account=account,
            kind=TransactionKind.PENDING if pending else TransactionKind.EARN,
            points=0 if pending else points,
            pending_points=points if pending else 0,
            qualifying_points=0 if pending else points,
            balance_after=account.balance,
            reason=engine._reason(event)[:255],
            source=f"event:{event.event_type}"[:50],
            source_ref=str(event.order_id)[:100],
            idempotency_key=run.items[plan.index].idempotency_key,
            occurred_at=earned_at,
            created_at=now,
            breakdown=engine._breakdown(event, plan.award.lines),
        )
        plan.award.transaction = txn
        self.transactions.append(txn)
        # (transaction, the bucket's other columns in BUCKET_COLUMNS order)
        self.buckets.append(
            (
                txn,
                (
                    account.pk,
                    account.member_id,
                    points,
                    points,
                    earned_at,
                    expiry_for(earned_at, settings_row),
                    available_at,
                    pending,
                    True,
                    None,
                ),
            )
        )
        for line in plan.award.lines:
            if line.rule_id is not None and line.points > 0:
                self.rule_awards.append(
                    (txn, (line.rule_id, account.member_id, line.points, earned_at))
                )
        self.changed[account.pk] = account
        return txn

    def save(self, run) -> None:
        if self.purchases:
            copy_rows("rewards_purchase", PURCHASE_COLUMNS, self.purchases)
        if not self.transactions:
            return
        copy_new(self.transactions)
        copy_rows(
            "rewards_pointsbucket",
            BUCKET_COLUMNS,
            ((txn.pk, *columns) for txn, columns in self.buckets),
        )
        if self.rule_awards:
            copy_rows(
                "rewards_ruleaward",
                RULE_AWARD_COLUMNS,
                ((txn.pk, *columns) for txn, columns in self.rule_awards),
            )
        accounts = list(self.changed.values())
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE rewards_pointsaccount a
                SET balance = v.balance, pending = v.pending,
                    lifetime_earned = v.lifetime_earned, last_activity_at = v.last_activity_at,
                    updated_at = %s
                FROM unnest(%s::bigint[], %s::integer[], %s::integer[], %s::integer[],
                            %s::timestamptz[])
                    AS v(id, balance, pending, lifetime_earned, last_activity_at)
                WHERE a.id = v.id
                """,
                [
                    run.now,
                    [a.pk for a in accounts],
                    [a.balance for a in accounts],
                    [a.pending for a in accounts],
                    [a.lifetime_earned for a in accounts],
                    [a.last_activity_at for a in accounts],
                ],
            )


# -- COPY ------------------------------------------------------------------------------------

PURCHASE_COLUMNS = (
    "member_id",
    "order_id",
    "amount",
    "currency",
    "channel",
    "occurred_at",
    "points",
    "refunded_at",
)
BUCKET_COLUMNS = (
    "transaction_id",
    "account_id",
    "member_id",
    "points",
    "remaining",
    "earned_at",
    "expires_at",
    "available_at",
    "pending",
    "qualifying",
    "reminder_sent_at",
)
RULE_AWARD_COLUMNS = ("transaction_id", "rule_id", "member_id", "points", "awarded_at")


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _isoformat(value) -> str:
    return value.isoformat()


_CSV_FORMATS = {
    str: _quoted,
    int: str,
    type(None): lambda value: "",
    bool: lambda value: "t" if value else "f",
    datetime: _isoformat,
    date: _isoformat,
}


def csv_value(value) -> str:
    """One field for COPY ... (FORMAT csv): NULL unquoted and empty, text always quoted (so an
    empty string stays an empty string)."""
    if value is None:
        return ""
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def csv_line(row) -> str:
    """A row for COPY ... (FORMAT csv), as csv_value would write it field by field (exact
    types looked up first: most fields are str, int, None or datetime)."""
    formats = _CSV_FORMATS
    return ",".join([formats.get(type(value), csv_value)(value) for value in row])


def copy_rows(table: str, columns: Sequence[str], rows: Iterable) -> None:
    """COPY rows (sequences in `columns` order; JSON as json.dumps text) into `table`: far less
    Python per row than bulk_create. Names are trusted constants."""
    lines = [csv_line(row) for row in rows]
    lines.append("")
    copy_text(table, columns, "\n".join(lines))


def copy_new(objects: Sequence[Model]) -> None:
    """Insert new instances of one model with COPY, every concrete column as the instance holds
    it (JSON fields dumped); their ids are drawn from the table's sequence first and set."""
    if not objects:
        return
    meta = objects[0]._meta
    fields = meta.concrete_fields
    for obj, pk in zip(objects, allocate_ids(meta.db_table, len(objects)), strict=True):
        obj.pk = pk
    values = attrgetter(*[f.attname for f in fields])
    json_at = [i for i, f in enumerate(fields) if isinstance(f, JSONField)]

    def row(obj) -> Sequence:
        found = values(obj)
        if not json_at:
            return found
        found = list(found)
        for i in json_at:
            found[i] = json.dumps(found[i])
        return found

    copy_rows(meta.db_table, [f.column for f in fields], map(row, objects))


def copy_text(table: str, columns: Sequence[str], text: str | io.StringIO) -> None:
    """COPY CSV text (lines as csv_line makes them, each ending in a line break) into `table`;
    names are trusted constants."""
    source = io.StringIO(text) if isinstance(text, str) else text
    source.seek(0)
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    with connection.cursor() as cursor:
        copy_from(cursor, sql, source)


def copy_from(cursor, sql: str, source) -> None:
    """Run a COPY ... FROM STDIN statement reading the file-like `source`."""
    raw = cursor.cursor
    if hasattr(raw, "copy_expert"):  # psycopg2
        raw.copy_expert(sql, source)
        return
    with raw.copy(sql) as copy:  # psycopg 3
        while chunk := source.read(1 << 20):
            copy.write(chunk)


def taken_keys(table: str, keys, column: str = "idempotency_key") -> set[str]:
    """Which of `keys` the table already holds in `column` (unique): one `= ANY` parameter
    instead of an IN list Django prepares value by value. Names are trusted constants."""
    keys = list(keys)
    if not keys:
        return set()
    with connection.cursor() as cursor:
        sql = f"SELECT {column} FROM {table} WHERE {column} = ANY(%s)"  # noqa: S608
        cursor.execute(sql, [keys])
        return {row[0] for row in cursor.fetchall()}


def allocate_ids(table: str, count: int) -> list[int]:
    """`count` ids from the table's id sequence, for rows written with COPY."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, count],
        )
        return [row[0] for row in cursor.fetchall()]


__all__ = [
    "EventAward",
    "allocate_ids",
    "award_events",
    "copy_from",
    "copy_new",
    "copy_rows",
    "copy_text",
    "csv_line",
    "csv_value",
    "taken_keys",
]
