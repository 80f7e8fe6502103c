"""The points ledger: the only code that changes balances.

Every write runs in one transaction holding a row lock on the member's PointsAccount, adds
an append-only PointsTransaction and updates the cached balance beside it, so
balance == sum(points) holds at every commit. Earnings become buckets that spending, expiry
and reversals consume oldest first. An idempotency key seen before returns the first
transaction, also when two requests race (the unique constraint decides, then we re-read).
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from members.models import Member

from ..exceptions import InsufficientPoints, NotReversible
from ..models import (
    ExpiryPolicy,
    PointsAccount,
    PointsBucket,
    PointsTransaction,
    ProgramSettings,
    TransactionKind,
)
from ..selectors import program_settings
from . import clock
from . import sql as statements
from .inserts import defer_insert, defer_row, defer_update, insert_one

logger = logging.getLogger(__name__)


# -- helpers ---------------------------------------------------------------------------------


def _locked(member_id: int) -> PointsAccount | None:
    """The member's account locked (with its tier, which is not locked), or None if missing."""
    return (
        PointsAccount.objects.select_for_update(of=("self",))
        .select_related("tier")
        .filter(member_id=member_id)
        .first()
    )


def lock_account(member: Member) -> PointsAccount:
    """The member's account, created if needed, locked until the surrounding transaction ends."""
    return lock_accounts([member.pk])[member.pk]


def lock_accounts(member_ids: list[int]) -> dict[int, PointsAccount]:
    """The members' accounts by member id (with their tiers, which are not locked), created if
    needed, locked in member order (as every writer of several accounts locks them) until the
    surrounding transaction ends."""

    def locked():
        return {
            account.member_id: account
            for account in PointsAccount.objects.select_for_update(of=("self",))
            .select_related("tier")
            .filter(member_id__in=member_ids)
            .order_by("member_id")
        }

    accounts = locked()
    missing = [m for m in member_ids if m not in accounts]
    if missing:  # created only then: an instance per member costs more than looking
        # INSERT ... ON CONFLICT DO NOTHING: one statement, no savepoint, race-free.
        PointsAccount.objects.bulk_create(
            [PointsAccount(member_id=m) for m in missing], ignore_conflicts=True
        )
        accounts = locked()
    return accounts


def lock_account_unless_recorded(
    member: Member, idempotency_key: str
) -> tuple[PointsAccount | None, PointsTransaction | None]:
    """(locked account, None), or (None, the transaction) when the key was used already.

    The key is looked up after the lock, so a request that waited for a concurrent one with
    the same key sees its result; a missing account is only created for a new key.
    """
    account = _locked(member.pk)
    found = _existing(idempotency_key)
    if found is not None:
        return None, found
    return account or lock_account(member), None


def _existing(idempotency_key: str) -> PointsTransaction | None:
    """The transaction recorded under the key, if any. Nearly always none: asked with one
    plain statement first (every award asks), the row built only when there is one."""
    with connection.cursor() as cursor:
        statements.execute(cursor, _KEY_SQL, [idempotency_key])
        row = cursor.fetchone()
    return PointsTransaction.objects.get(pk=row[0]) if row else None


_KEY_SQL = f"SELECT id FROM {PointsTransaction._meta.db_table} WHERE idempotency_key = %s"  # noqa: S608


def _idempotent(idempotency_key: str, write: Callable[[], PointsTransaction]) -> PointsTransaction:
    """Run `write` once per key; a repeat (even a concurrent one) gets the first result."""
    if not idempotency_key:
        raise ValueError("An idempotency key is required.")
    found = _existing(idempotency_key)
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return write()
    except IntegrityError:
        found = _existing(idempotency_key)
        if found is None:
            raise
        return found


def expiry_for(earned_at: datetime, settings_row: ProgramSettings) -> datetime | None:
    zone = clock.program_zone(settings_row)
    if settings_row.expiry_policy == ExpiryPolicy.ROLLING_MONTHS:
        return clock.add_months_local(earned_at, settings_row.expiry_months, zone)
    if settings_row.expiry_policy == ExpiryPolicy.END_OF_YEAR:
        return clock.end_of_following_year(earned_at, zone)
    return None


def _record(
    account: PointsAccount,
    *,
    kind: str,
    points: int,
    reason: str,
    idempotency_key: str,
    pending_points: int = 0,
    qualifying_points: int = 0,
    actor=None,
    source: str = "",
    source_ref: str = "",
    occurred_at: datetime | None = None,
    breakdown: dict | None = None,
    reverses: PointsTransaction | None = None,
    activity: bool = False,
    pk: int | None = None,
) -> PointsTransaction:
    """Append a ledger row and move the cached counters with it (caller holds the lock). With
    `pk` (drawn from the sequence) the row goes with the next statement."""
    now = timezone.now()
    account.balance += points
    account.pending += pending_points
    account.lifetime_earned = max(0, account.lifetime_earned + qualifying_points)
    update_fields: tuple[str, ...] = ("balance", "pending", "lifetime_earned", "updated_at")
    if activity:
        moment = occurred_at or now
        if account.last_activity_at is None or moment > account.last_activity_at:
            account.last_activity_at = moment
        update_fields += ("last_activity_at",)
    if account.balance < 0 or account.pending < 0:
        raise InsufficientPoints(balance=account.balance - points, requested=-points)
    txn = PointsTransaction(
        member_id=account.member_id,
        account=account,
        kind=kind,
        points=points,
        pending_points=pending_points,
        qualifying_points=qualifying_points,
        balance_after=account.balance,
        reason=reason[:255],
        actor=actor,
        source=source,
        source_ref=str(source_ref)[:100],
        idempotency_key=idempotency_key,
        occurred_at=occurred_at or now,
        created_at=now,
        breakdown=breakdown or {},
        reverses=reverses,
    )
    # The counters go with the ledger row's INSERT (one round trip; sql.write_behind).
    defer_update(account, update_fields)
    if pk is None:
        insert_one(txn)
    else:
        txn.pk = pk
        defer_insert(txn, with_pk=True)
    return txn


def _new_bucket(
    account: PointsAccount,
    txn: PointsTransaction,
    *,
    points: int,
    earned_at: datetime,
    available_at: datetime,
    pending: bool,
    qualifying: bool,
    settings_row: ProgramSettings,
) -> None:
    """The bucket of an earning, written with the next statement."""
    defer_row(
        PointsBucket,
        account_id=account.pk,
        member_id=account.member_id,
        transaction_id=txn.pk,
        points=points,
        remaining=points,
        earned_at=earned_at,
        expires_at=expiry_for(earned_at, settings_row),
        available_at=available_at,
        pending=pending,
        qualifying=qualifying,
    )


def _open_buckets(account: PointsAccount, *, first: Iterable[int] = ()) -> list[PointsBucket]:
    """Spendable buckets in consumption order: `first` ids, then soonest expiry, then oldest."""
    buckets = list(
        PointsBucket.objects.select_for_update()
        .filter(account=account, pending=False, remaining__gt=0)
        .order_by("expires_at", "earned_at", "id")
    )
    preferred = set(first)
    return [b for b in buckets if b.pk in preferred] + [b for b in buckets if b.pk not in preferred]


def _consume(buckets: list[PointsBucket], points: int) -> tuple[int, list[dict]]:
    """Take up to `points` from the buckets in order; returns (taken, [{bucket, points}])."""
    taken = 0
    used = []
    changed = []
    for bucket in buckets:
        if taken >= points:
            break
        take = min(bucket.remaining, points - taken)
        if take <= 0:
            continue
        bucket.remaining -= take
        taken += take
        used.append({"bucket": bucket.pk, "points": take})
        changed.append(bucket)
    PointsBucket.objects.bulk_update(changed, ["remaining"])
    return taken, used


def _after_earning(
    account: PointsAccount,
    moment: datetime,
    settings_row: ProgramSettings | None = None,
    tiers: list | None = None,
) -> None:
    from .tiers import upgrade_after_earning

    upgrade_after_earning(account=account, as_of=moment, settings_row=settings_row, tiers=tiers)


# -- earning ---------------------------------------------------------------------------------


def award_points(
    *,
    member: Member,
    points: int,
    reason: str,
    idempotency_key: str,
    source: str = "",
    source_ref: str = "",
    actor=None,
    occurred_at: datetime | None = None,
    breakdown: dict | None = None,
    qualifying: bool = True,
) -> PointsTransaction:
    """Credit points as a new bucket; pending first when the program has pending days."""
    if not isinstance(points, int) or points <= 0:
        raise ValueError("Points to award must be a positive integer.")

    # No second look-up under the lock: a concurrent request with the same key loses on the
    # unique constraint and _idempotent returns the winner's transaction.
    def write() -> PointsTransaction:
        return earn(
            lock_account(member),
            settings_row=program_settings(),
            points=points,
            reason=reason,
            idempotency_key=idempotency_key,
            source=source,
            source_ref=source_ref,
            actor=actor,
            occurred_at=occurred_at,
            breakdown=breakdown,
            qualifying=qualifying,
        )

    return _idempotent(idempotency_key, write)


def earn(
    account: PointsAccount,
    *,
    settings_row: ProgramSettings,
    points: int,
    reason: str,
    idempotency_key: str,
    source: str = "",
    source_ref: str = "",
    actor=None,
    occurred_at: datetime | None = None,
    breakdown: dict | None = None,
    qualifying: bool = True,
    tiers: list | None = None,
    transaction_id: int | None = None,
) -> PointsTransaction:
    """award_points' write, for a caller that holds the account lock and has checked the key.
    A caller that drew the ledger row's id from its sequence already (sql.next_id, e.g. in the
    statement that took the lock) passes it: then nothing here needs a round trip of its own
    (inside sql.write_behind)."""
    now = timezone.now()
    earned_at = occurred_at or now
    available_at = earned_at + timedelta(days=settings_row.pending_days)
    pending = available_at > now
    common = {
        "reason": reason,
        "idempotency_key": idempotency_key,
        "actor": actor,
        "source": source,
        "source_ref": source_ref,
        "occurred_at": earned_at,
        "breakdown": breakdown,
        "activity": True,
        "pk": transaction_id,
    }
    if pending:
        txn = _record(
            account, kind=TransactionKind.PENDING, points=0, pending_points=points, **common
        )
    else:
        txn = _record(
            account,
            kind=TransactionKind.EARN,
            points=points,
            qualifying_points=points if qualifying else 0,
            **common,
        )
    _new_bucket(
        account,
        txn,
        points=points,
        earned_at=earned_at,
        available_at=available_at,
        pending=pending,
        qualifying=qualifying,
        settings_row=settings_row,
    )
    if not pending and qualifying:
        _after_earning(account, now, settings_row, tiers)
    return txn


def release_pending(*, as_of: datetime | None = None) -> int:
    """Move pending buckets whose time has come into the balance; returns how many."""
    as_of = as_of or timezone.now()
    bucket_ids = list(
        PointsBucket.objects.filter(pending=True, available_at__lte=as_of).values_list(
            "id", flat=True
        )
    )
    released = 0
    for bucket_id in bucket_ids:
        if _release_bucket(bucket_id, as_of):
            released += 1
    if released:
        logger.info("released %s pending buckets as of %s", released, as_of.isoformat())
    return released


def _release_bucket(bucket_id: int, as_of: datetime) -> bool:
    with transaction.atomic():
        member_id = PointsBucket.objects.values_list("member_id", flat=True).get(pk=bucket_id)
        account = PointsAccount.objects.select_for_update().get(member_id=member_id)
        bucket = PointsBucket.objects.select_for_update().get(pk=bucket_id)
        if not bucket.pending:
            return False
        points = bucket.remaining
        _record(
            account,
            kind=TransactionKind.RELEASE,
            points=points,
            pending_points=-points,
            qualifying_points=points if bucket.qualifying else 0,
            reason="Pending points released",
            idempotency_key=f"release:{bucket.pk}",
            source="release",
            source_ref=str(bucket.transaction_id),
            occurred_at=bucket.available_at,
            breakdown={"bucket": bucket.pk},
        )
        bucket.pending = False
        bucket.save(update_fields=["pending"])
        if bucket.qualifying and points:
            _after_earning(account, as_of)
        return True


# -- spending and adjustments ----------------------------------------------------------------


def spend_points(
    *,
    member: Member,
    points: int,
    reason: str,
    idempotency_key: str,
    source: str = "",
    source_ref: str = "",
    actor=None,
) -> PointsTransaction:
    """Debit points FIFO (a redemption); raises InsufficientPoints, never goes negative."""
    if not isinstance(points, int) or points <= 0:
        raise ValueError("Points to spend must be a positive integer.")

    def write() -> PointsTransaction:
        account = lock_account(member)
        found = _existing(idempotency_key)
        if found is not None:
            return found
        return _debit(
            account,
            kind=TransactionKind.REDEEM,
            points=points,
            reason=reason,
            idempotency_key=idempotency_key,
            source=source,
            source_ref=source_ref,
            actor=actor,
            activity=True,
        )

    return _idempotent(idempotency_key, write)


def _debit(account: PointsAccount, *, kind: str, points: int, activity: bool, **fields):
    if account.balance < points:
        raise InsufficientPoints(balance=account.balance, requested=points)
    taken, used = _consume(_open_buckets(account), points)
    if taken != points:  # the buckets disagree with the cached balance: never paper over it
        raise RuntimeError(f"Ledger buckets hold {taken} of {points} for account {account.pk}")
    return _record(
        account, kind=kind, points=-points, breakdown={"buckets": used}, activity=activity, **fields
    )


def adjust_points(
    *, member: Member, points: int, reason: str, actor, idempotency_key: str
) -> PointsTransaction:
    """A support correction: positive adds a (non-qualifying) bucket, negative consumes FIFO."""
    if not isinstance(points, int) or points == 0:
        raise ValueError("An adjustment must be a non-zero integer.")
    if not reason.strip():
        raise ValueError("An adjustment needs a reason.")

    def write() -> PointsTransaction:
        account = lock_account(member)
        found = _existing(idempotency_key)
        if found is not None:
            return found
        common = {
            "reason": reason,
            "idempotency_key": idempotency_key,
            "actor": actor,
            "source": "adjustment",
        }
        if points < 0:
            return _debit(
                account, kind=TransactionKind.ADJUST, points=-points, activity=False, **common
            )
        settings_row = program_settings()
        now = timezone.now()
        txn = _record(account, kind=TransactionKind.ADJUST, points=points, **common)
        _new_bucket(
            account,
            txn,
            points=points,
            earned_at=now,
            available_at=now,
            pending=False,
            qualifying=False,
            settings_row=settings_row,
        )
        return txn

    return _idempotent(idempotency_key, write)


# -- reversals -------------------------------------------------------------------------------


CREDIT_KINDS = (TransactionKind.EARN, TransactionKind.PENDING)
DEBIT_KINDS = (TransactionKind.REDEEM, TransactionKind.EXPIRE, TransactionKind.ADJUST)


def reverse_transaction(
    *,
    points_transaction: PointsTransaction,
    reason: str,
    idempotency_key: str,
    actor=None,
) -> PointsTransaction:
    """Undo one ledger row: an earning is clawed back (as far as the balance allows), a debit
    is given back as a new bucket. A row is reversed at most once."""
    txn = points_transaction
    is_credit = txn.kind in CREDIT_KINDS or (txn.kind == TransactionKind.ADJUST and txn.points > 0)
    if is_credit:
        kind = "credit"
    elif txn.kind in DEBIT_KINDS:
        kind = "debit"
    else:
        raise NotReversible(f"A {txn.kind} transaction cannot be reversed.")
    member = txn.member
    if kind == "credit":
        return reverse_earnings(
            member=member,
            transactions=[txn],
            reason=reason,
            idempotency_key=idempotency_key,
            actor=actor,
            source="reversal",
            source_ref=str(txn.pk),
        )

    def write() -> PointsTransaction:
        account = lock_account(member)
        found = _existing(idempotency_key) or txn.reversals.first()
        if found is not None:
            return found
        settings_row = program_settings()
        now = timezone.now()
        points = -txn.points
        back = _record(
            account,
            kind=TransactionKind.REVERSE,
            points=points,
            reason=reason,
            idempotency_key=idempotency_key,
            actor=actor,
            source="reversal",
            source_ref=str(txn.pk),
            reverses=txn,
            breakdown={"reversed_transactions": [txn.pk]},
        )
        _new_bucket(
            account,
            back,
            points=points,
            earned_at=now,
            available_at=now,
            pending=False,
            qualifying=False,
            settings_row=settings_row,
        )
        return back

    return _idempotent(idempotency_key, write)


def reverse_earnings(
    *,
    member: Member,
    transactions: list[PointsTransaction],
    reason: str,
    idempotency_key: str,
    actor=None,
    source: str = "reversal",
    source_ref: str = "",
) -> PointsTransaction:
    """Claw back earnings: pending points are cancelled, available points are taken from the
    earnings' own buckets first, then from the rest FIFO. The balance never goes negative;
    what could not be taken back is recorded as `shortfall` in the breakdown."""

    def write() -> PointsTransaction:
        account = lock_account(member)
        found = _existing(idempotency_key)
        if found is not None:
            return found
        txn_ids = [t.pk for t in transactions]
        already = set(
            PointsTransaction.objects.filter(reverses_id__in=txn_ids).values_list(
                "reverses_id", flat=True
            )
        )
        if len(transactions) == 1 and already:
            return transactions[0].reversals.first()
        todo = [pk for pk in txn_ids if pk not in already]
        own = list(
            PointsBucket.objects.select_for_update()
            .filter(transaction_id__in=todo, account=account)
            .order_by("id")
        )
        pending_cancelled = 0
        owed = 0
        qualifying = 0
        for bucket in own:
            if bucket.pending:
                pending_cancelled += bucket.remaining
                bucket.remaining = 0
                bucket.pending = False
                bucket.save(update_fields=["remaining", "pending"])
            else:
                owed += bucket.points
                if bucket.qualifying:
                    qualifying += bucket.points
        taken, used = _consume(_open_buckets(account, first=[b.pk for b in own]), owed)
        return _record(
            account,
            kind=TransactionKind.REVERSE,
            points=-taken,
            pending_points=-pending_cancelled,
            qualifying_points=-qualifying,
            reason=reason,
            idempotency_key=idempotency_key,
            actor=actor,
            source=source,
            source_ref=source_ref,
            reverses=transactions[0] if len(transactions) == 1 else None,
            breakdown={
                "reversed_transactions": todo,
                "requested": owed,
                "reversed": taken,
                "shortfall": owed - taken,
                "pending_cancelled": pending_cancelled,
                "buckets": used,
            },
        )

    return _idempotent(idempotency_key, write)


# -- expiry ----------------------------------------------------------------------------------


def expire_points(*, as_of: datetime | None = None) -> int:
    """Expire what is due as of `as_of`; returns the number of points expired.

    Buckets keep the expiry date promised when they were earned; under the inactivity policy
    every open bucket of an account inactive for expiry_months expires too. Running it again
    for the same moment finds nothing left to expire.
    """
    as_of = as_of or timezone.now()
    settings_row = program_settings()
    due_accounts = set(
        PointsBucket.objects.filter(
            remaining__gt=0, pending=False, expires_at__lte=as_of
        ).values_list("account_id", flat=True)
    )
    inactive_since = None
    if settings_row.expiry_policy == ExpiryPolicy.INACTIVITY:
        inactive_since = clock.add_months_local(
            as_of, -settings_row.expiry_months, clock.program_zone(settings_row)
        )
        due_accounts |= set(
            PointsAccount.objects.filter(
                balance__gt=0, last_activity_at__lte=inactive_since
            ).values_list("id", flat=True)
        )
    total = 0
    for account_id in sorted(due_accounts):
        total += _expire_account(account_id, as_of=as_of, inactive_since=inactive_since)
    if total:
        logger.info("expired %s points in %s accounts", total, len(due_accounts))
    return total


def _expire_account(account_id: int, *, as_of: datetime, inactive_since: datetime | None) -> int:
    with transaction.atomic():
        account = PointsAccount.objects.select_for_update().get(pk=account_id)
        due = Q(expires_at__lte=as_of)
        if inactive_since is not None and (
            account.last_activity_at is not None and account.last_activity_at <= inactive_since
        ):
            due = Q()
        buckets = list(
            PointsBucket.objects.select_for_update()
            .filter(due, account=account, pending=False, remaining__gt=0)
            .order_by("expires_at", "earned_at", "id")
        )
        points = sum(b.remaining for b in buckets)
        if not points:
            return 0
        key = f"expire:{account.pk}:{as_of.isoformat()}"
        if _existing(key):
            return 0
        taken, used = _consume(buckets, points)
        _record(
            account,
            kind=TransactionKind.EXPIRE,
            points=-taken,
            reason="Points expired",
            idempotency_key=key,
            source="expiry",
            occurred_at=as_of,
            breakdown={"buckets": used},
        )
        return taken


def send_expiry_reminders(*, as_of: datetime | None = None) -> int:
    """Email members whose points expire within expiry_reminder_days; once per bucket.
    Returns the number of emails sent."""
    as_of = as_of or timezone.now()
    settings_row = program_settings()
    horizon = as_of + timedelta(days=settings_row.expiry_reminder_days)
    zone = clock.program_zone(settings_row)
    buckets = PointsBucket.objects.filter(
        remaining__gt=0, pending=False, reminder_sent_at__isnull=True
    )
    if settings_row.expiry_policy == ExpiryPolicy.INACTIVITY:
        cutoff_low = clock.add_months_local(as_of, -settings_row.expiry_months, zone)
        cutoff_high = clock.add_months_local(horizon, -settings_row.expiry_months, zone)
        buckets = buckets.filter(
            Q(expires_at__gt=as_of, expires_at__lte=horizon)
            | Q(
                account__last_activity_at__gt=cutoff_low,
                account__last_activity_at__lte=cutoff_high,
            )
        )
    else:
        buckets = buckets.filter(expires_at__gt=as_of, expires_at__lte=horizon)
    by_member: dict[int, list[PointsBucket]] = defaultdict(list)
    for bucket in buckets.select_related("account"):
        by_member[bucket.member_id].append(bucket)
    members = Member.objects.in_bulk(list(by_member))
    sent = 0
    for member_id, member_buckets in by_member.items():
        member = members[member_id]
        if not member.email or not member.is_active:
            continue
        points = sum(b.remaining for b in member_buckets)
        first_expiry = min(_bucket_expiry(b, settings_row, zone) for b in member_buckets)
        with transaction.atomic():
            marked = PointsBucket.objects.filter(
                pk__in=[b.pk for b in member_buckets], reminder_sent_at__isnull=True
            ).update(reminder_sent_at=as_of)
            if marked != len(member_buckets):  # another run got here first
                transaction.set_rollback(True)
                continue
            send_mail(
                subject=f"{points} {settings_row.points_name} expire soon",
                message=_reminder_text(member, points, first_expiry, settings_row),
                from_email=None,
                recipient_list=[member.email],
            )
        sent += 1
    if sent:
        logger.info("sent %s expiry reminders", sent)
    return sent


def _bucket_expiry(bucket: PointsBucket, settings_row: ProgramSettings, zone) -> datetime:
    if bucket.expires_at is not None:
        return bucket.expires_at
    return clock.add_months_local(bucket.account.last_activity_at, settings_row.expiry_months, zone)


def _reminder_text(member: Member, points: int, when: datetime, settings_row) -> str:
    day = when.astimezone(clock.program_zone(settings_row)).date()
    name = member.first_name or "there"
    return (
        f"Hello {name},\n\n"
        f"{points} of your {settings_row.points_name} will expire on {day:%d %B %Y}.\n"
        f"Use them before then in the {settings_row.name} portal.\n"
    )


# -- checks ----------------------------------------------------------------------------------


def ledger_sum(member: Member) -> dict[str, int]:
    """What the ledger says, to compare with the cached account (balance, pending)."""
    totals = PointsTransaction.objects.filter(member_id=member.pk).aggregate(
        balance=Sum("points"), pending=Sum("pending_points"), qualifying=Sum("qualifying_points")
    )
    return {key: value or 0 for key, value in totals.items()}


def check_ledger(member: Member) -> list[str]:
    """Differences between account, ledger and buckets; empty when consistent."""
    account = PointsAccount.objects.filter(member_id=member.pk).first()
    if account is None:
        return []
    sums = ledger_sum(member)
    buckets = PointsBucket.objects.filter(account=account).aggregate(
        available=Sum("remaining", filter=Q(pending=False)),
        pending=Sum("remaining", filter=Q(pending=True)),
    )
    problems: list[str] = []
    checks: list[tuple[str, Any, Any]] = [
        ("balance vs ledger", account.balance, sums["balance"]),
        ("pending vs ledger", account.pending, sums["pending"]),
        ("balance vs buckets", account.balance, buckets["available"] or 0),
        ("pending vs buckets", account.pending, buckets["pending"] or 0),
    ]
    for label, cached, truth in checks:
        if cached != truth:
            problems.append(f"{label}: {cached} != {truth}")
    return problems
