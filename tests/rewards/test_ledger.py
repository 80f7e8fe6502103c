import pytest
import time_machine
from django.core import mail
from django.db import IntegrityError, transaction

from rewards.exceptions import InsufficientPoints, NotReversible
from rewards.models import (
    ExpiryPolicy,
    PointsAccount,
    PointsBucket,
    PointsTransaction,
    TransactionKind,
)
from rewards.services import (
    adjust_points,
    award_points,
    expire_points,
    ledger_sum,
    release_pending,
    reverse_transaction,
    send_expiry_reminders,
    spend_points,
)

from .factories import MemberFactory
from .helpers import assert_consistent, at, balance

pytestmark = pytest.mark.django_db


def award(member, points, key, **kwargs):
    return award_points(member=member, points=points, reason="test", idempotency_key=key, **kwargs)


def test_award_creates_account_transaction_and_bucket(program):
    member = MemberFactory()
    txn = award(member, 120, "k1", source="event:purchase", source_ref="ORD-1")
    assert txn.kind == TransactionKind.EARN and txn.points == 120 and txn.balance_after == 120
    account = PointsAccount.objects.get(member=member)
    assert account.balance == 120 and account.lifetime_earned == 120
    assert account.last_activity_at is not None
    bucket = PointsBucket.objects.get(transaction=txn)
    assert bucket.remaining == 120 and bucket.expires_at is None
    assert_consistent(member)


def test_same_idempotency_key_returns_first_transaction(program):
    member = MemberFactory()
    first = award(member, 100, "same")
    again = award(member, 100, "same")
    assert again.pk == first.pk
    assert balance(member) == 100
    assert PointsTransaction.objects.filter(member=member).count() == 1


def test_non_qualifying_award_does_not_count_for_tiers(program):
    member = MemberFactory()
    award(member, 50, "k", qualifying=False)
    assert PointsAccount.objects.get(member=member).lifetime_earned == 0


def test_award_rejects_non_positive_points(program):
    member = MemberFactory()
    with pytest.raises(ValueError):
        award(member, 0, "zero")


def test_spend_consumes_buckets_oldest_first(program):
    member = MemberFactory()
    with time_machine.travel(at(2025, 1, 1, 12), tick=False):
        old = award(member, 100, "old")
    with time_machine.travel(at(2025, 2, 1, 12), tick=False):
        new = award(member, 100, "new")
        spend_points(member=member, points=150, reason="reward", idempotency_key="s")
    assert PointsBucket.objects.get(transaction=old).remaining == 0
    assert PointsBucket.objects.get(transaction=new).remaining == 50
    assert balance(member) == 50
    assert_consistent(member)


def test_spend_prefers_buckets_expiring_soonest(program):
    program.expiry_policy = ExpiryPolicy.ROLLING_MONTHS
    program.expiry_months = 12
    program.save()
    member = MemberFactory()
    with time_machine.travel(at(2025, 6, 1, 12), tick=False):
        late = award(member, 100, "late")
        early = award(member, 100, "early", occurred_at=at(2025, 1, 1, 12))
        spend_points(member=member, points=60, reason="reward", idempotency_key="s")
    assert PointsBucket.objects.get(transaction=early).remaining == 40
    assert PointsBucket.objects.get(transaction=late).remaining == 100


def test_spend_more_than_balance_raises_and_writes_nothing(program):
    member = MemberFactory()
    award(member, 50, "k")
    with pytest.raises(InsufficientPoints) as info:
        spend_points(member=member, points=51, reason="reward", idempotency_key="s")
    assert info.value.code == "insufficient_points"
    assert balance(member) == 50
    assert not PointsTransaction.objects.filter(idempotency_key="s").exists()


def test_negative_adjustment_consumes_fifo_and_cannot_overdraw(program, support):
    member = MemberFactory()
    award(member, 30, "a")
    award(member, 30, "b")
    txn = adjust_points(
        member=member, points=-40, reason="goodwill error", actor=support, idempotency_key="adj"
    )
    assert txn.kind == TransactionKind.ADJUST and txn.points == -40 and txn.actor == support
    assert [b.remaining for b in PointsBucket.objects.order_by("id")] == [0, 20]
    with pytest.raises(InsufficientPoints):
        adjust_points(member=member, points=-21, reason="x", actor=support, idempotency_key="a2")
    assert balance(member) == 20
    assert_consistent(member)


def test_positive_adjustment_adds_a_non_qualifying_bucket(program, support):
    member = MemberFactory()
    adjust_points(member=member, points=75, reason="apology", actor=support, idempotency_key="a")
    account = PointsAccount.objects.get(member=member)
    assert account.balance == 75 and account.lifetime_earned == 0
    assert_consistent(member)


def test_database_refuses_negative_balance():
    member = MemberFactory()
    account = PointsAccount.objects.create(member=member)
    with pytest.raises(IntegrityError), transaction.atomic():
        PointsAccount.objects.filter(pk=account.pk).update(balance=-1)


def test_reverse_a_redeem_gives_points_back_as_new_bucket(program):
    member = MemberFactory()
    award(member, 100, "a")
    spent = spend_points(member=member, points=80, reason="reward", idempotency_key="s")
    back = reverse_transaction(points_transaction=spent, reason="cancelled", idempotency_key="r")
    again = reverse_transaction(points_transaction=spent, reason="again", idempotency_key="r2")
    assert back.points == 80 and back.reverses == spent and again.pk == back.pk
    assert PointsBucket.objects.filter(transaction=back, remaining=80).exists()
    assert balance(member) == 100
    assert_consistent(member)


def test_reverse_an_earning_takes_back_only_what_is_left(program):
    member = MemberFactory()
    earned = award(member, 100, "a")
    spend_points(member=member, points=70, reason="reward", idempotency_key="s")
    back = reverse_transaction(points_transaction=earned, reason="fraud", idempotency_key="r")
    assert back.points == -30
    assert back.breakdown["shortfall"] == 70 and back.breakdown["requested"] == 100
    account = PointsAccount.objects.get(member=member)
    assert account.balance == 0 and account.lifetime_earned == 0
    assert_consistent(member)


def test_a_reversal_cannot_be_reversed(program):
    member = MemberFactory()
    spent_from = award(member, 10, "a")
    back = reverse_transaction(points_transaction=spent_from, reason="x", idempotency_key="r")
    with pytest.raises(NotReversible):
        reverse_transaction(points_transaction=back, reason="y", idempotency_key="r2")


# -- pending ---------------------------------------------------------------------------------


def test_pending_points_are_released_after_pending_days(program):
    program.pending_days = 14
    program.save()
    member = MemberFactory()
    with time_machine.travel(at(2025, 3, 1, 10), tick=False):
        txn = award(member, 200, "p")
        assert txn.kind == TransactionKind.PENDING and txn.points == 0
        account = PointsAccount.objects.get(member=member)
        assert (account.balance, account.pending, account.lifetime_earned) == (0, 200, 0)
        with pytest.raises(InsufficientPoints):
            spend_points(member=member, points=1, reason="x", idempotency_key="s")
        assert release_pending(as_of=at(2025, 3, 14, 10)) == 0
    assert release_pending(as_of=at(2025, 3, 15, 10)) == 1
    assert release_pending(as_of=at(2025, 3, 15, 10)) == 0
    account.refresh_from_db()
    assert (account.balance, account.pending, account.lifetime_earned) == (200, 0, 200)
    assert ledger_sum(member) == {"balance": 200, "pending": 0, "qualifying": 200}
    assert_consistent(member)


# -- expiry ----------------------------------------------------------------------------------


def test_rolling_expiry_expires_each_bucket_on_its_own_date(program):
    program.expiry_policy = ExpiryPolicy.ROLLING_MONTHS
    program.expiry_months = 12
    program.save()
    member = MemberFactory()
    with time_machine.travel(at(2024, 1, 10, 12), tick=False):
        award(member, 100, "jan")
    with time_machine.travel(at(2024, 6, 10, 12), tick=False):
        award(member, 50, "jun")
        spend_points(member=member, points=30, reason="x", idempotency_key="s")  # from jan
    assert expire_points(as_of=at(2025, 1, 10, 11)) == 0
    assert expire_points(as_of=at(2025, 1, 10, 12)) == 70
    assert balance(member) == 50
    assert expire_points(as_of=at(2025, 6, 10, 12)) == 50
    assert balance(member) == 0
    kinds = list(
        PointsTransaction.objects.filter(member=member, kind=TransactionKind.EXPIRE)
        .order_by("id")
        .values_list("points", flat=True)
    )
    assert kinds == [-70, -50]
    assert_consistent(member)


def test_end_of_year_expiry_keeps_points_until_the_end_of_the_following_year(program):
    program.expiry_policy = ExpiryPolicy.END_OF_YEAR
    program.save()
    member = MemberFactory()
    with time_machine.travel(at(2023, 3, 1, 12), tick=False):
        award(member, 100, "2023")
    with time_machine.travel(at(2024, 11, 1, 12), tick=False):
        award(member, 40, "2024")
    assert expire_points(as_of=at(2024, 12, 31, 23, 59)) == 0
    assert expire_points(as_of=at(2025, 1, 1, 0, 0)) == 100
    assert balance(member) == 40
    assert expire_points(as_of=at(2026, 1, 1, 0, 0)) == 40
    assert_consistent(member)


def test_inactivity_expiry_takes_everything_after_n_months_without_activity(program):
    program.expiry_policy = ExpiryPolicy.INACTIVITY
    program.expiry_months = 6
    program.save()
    active, idle = MemberFactory(), MemberFactory()
    with time_machine.travel(at(2025, 1, 5, 12), tick=False):
        award(active, 100, "a1")
        award(idle, 100, "i1")
    with time_machine.travel(at(2025, 5, 5, 12), tick=False):
        award(active, 10, "a2")
    assert expire_points(as_of=at(2025, 7, 6, 12)) == 100
    assert balance(idle) == 0 and balance(active) == 110
    assert_consistent(idle)


def test_expiry_run_twice_changes_nothing_the_second_time(program):
    program.expiry_policy = ExpiryPolicy.ROLLING_MONTHS
    program.expiry_months = 1
    program.save()
    member = MemberFactory()
    with time_machine.travel(at(2025, 1, 1, 12), tick=False):
        award(member, 100, "a")
    as_of = at(2025, 3, 1)
    assert expire_points(as_of=as_of) == 100
    count = PointsTransaction.objects.count()
    assert expire_points(as_of=as_of) == 0
    assert expire_points(as_of=at(2025, 3, 2)) == 0
    assert PointsTransaction.objects.count() == count


def test_expiry_reminder_is_sent_once_per_bucket(program):
    program.expiry_policy = ExpiryPolicy.ROLLING_MONTHS
    program.expiry_months = 12
    program.save()
    member = MemberFactory(email="soon@example.com", first_name="Ana")
    other = MemberFactory()
    with time_machine.travel(at(2024, 1, 15, 12), tick=False):
        award(member, 100, "a")
    with time_machine.travel(at(2024, 6, 15, 12), tick=False):
        award(other, 100, "b")
    mail.outbox.clear()
    assert send_expiry_reminders(as_of=at(2023, 12, 1)) == 0
    assert send_expiry_reminders(as_of=at(2024, 12, 20)) == 1
    assert send_expiry_reminders(as_of=at(2024, 12, 21)) == 0
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["soon@example.com"]
    assert "100 points" in message.subject and "15 January 2025" in message.body
