"""Real threads against PostgreSQL: the ledger holds under simultaneous requests."""

import threading
from collections import Counter

import pytest
from django.db import connection

from rewards.exceptions import InsufficientPoints, OutOfStock
from rewards.models import PointsAccount, PointsTransaction, Redemption
from rewards.services import award_points, ledger_sum, redeem_reward

from .factories import MemberFactory, RewardFactory
from .helpers import assert_consistent

pytestmark = pytest.mark.django_db(transaction=True)


def run_concurrently(count: int, work) -> list:
    """Start `count` threads at once; each returns a result or the exception it raised."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def target(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:  # noqa: BLE001 - collected and asserted on below
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def outcome(result) -> str:
    return type(result).__name__


def test_fifty_simultaneous_redemptions_spend_exactly_the_balance():
    member = MemberFactory()
    award_points(member=member, points=1000, reason="seed", idempotency_key="seed")
    reward = RewardFactory(points_cost=100)

    results = run_concurrently(
        50,
        lambda i: redeem_reward(member=member, reward=reward, idempotency_key=f"redeem-{i}"),
    )

    outcomes = Counter(outcome(r) for r in results)
    assert outcomes == {"Redemption": 10, "InsufficientPoints": 40}
    assert all(isinstance(r, Redemption | InsufficientPoints) for r in results)
    account = PointsAccount.objects.get(member=member)
    assert account.balance == 0
    assert ledger_sum(member)["balance"] == account.balance
    assert Redemption.objects.filter(member=member).count() == 10
    assert_consistent(member)


def test_twenty_simultaneous_awards_with_one_key_award_once():
    member = MemberFactory()

    results = run_concurrently(
        20,
        lambda i: award_points(member=member, points=250, reason="race", idempotency_key="one-key"),
    )

    assert all(isinstance(r, PointsTransaction) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert PointsTransaction.objects.filter(member=member).count() == 1
    assert PointsAccount.objects.get(member=member).balance == 250
    assert_consistent(member)


def test_stock_of_five_gives_five_redemptions_to_thirty_members():
    reward = RewardFactory(points_cost=10, stock=5)
    members = [MemberFactory() for _ in range(30)]
    for member in members:
        award_points(member=member, points=10, reason="seed", idempotency_key=f"seed-{member.pk}")

    results = run_concurrently(
        30,
        lambda i: redeem_reward(member=members[i], reward=reward, idempotency_key=f"r-{i}"),
    )

    outcomes = Counter(outcome(r) for r in results)
    assert outcomes == {"Redemption": 5, "OutOfStock": 25}
    assert all(isinstance(r, Redemption | OutOfStock) for r in results)
    reward.refresh_from_db()
    assert reward.stock == 0
    assert Redemption.objects.filter(reward=reward).count() == 5
    winners = {r.member_id for r in results if isinstance(r, Redemption)}
    for member in members:
        assert PointsAccount.objects.get(member=member).balance == (
            0 if member.pk in winners else 10
        )
        assert_consistent(member)
