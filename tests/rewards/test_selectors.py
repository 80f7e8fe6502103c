from datetime import date
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from members.models import Member
from members.services import export_member_data
from rewards.models import (
    EarningRule,
    ExpiryPolicy,
    MembershipPlan,
    PointsAccount,
    PointsBucket,
    PointsTransaction,
    ProgramSettings,
    Redemption,
    Reward,
    RewardCode,
    Subscription,
    Tier,
)
from rewards.selectors import (
    member_balance,
    member_transactions,
    program_settings,
)
from rewards.services import award_points, check_ledger, spend_points

from .factories import MemberFactory
from .helpers import at

pytestmark = pytest.mark.django_db


def test_program_settings_are_created_with_defaults_on_first_read(settings):
    assert not ProgramSettings.objects.exists()
    row = program_settings()
    assert row.pk == 1 and row.points_name == "points" and row.currency == "EUR"
    assert row.timezone == settings.TIME_ZONE and row.expiry_policy == ExpiryPolicy.NONE
    assert row.pending_days == 0 and row.expiry_reminder_days == 30
    assert program_settings().pk == row.pk and ProgramSettings.objects.count() == 1


def test_balance_summary_lists_points_expiring_in_the_next_90_days(program):
    program.expiry_policy = ExpiryPolicy.ROLLING_MONTHS
    program.expiry_months = 12
    program.save()
    member = MemberFactory()
    with time_machine.travel(at(2024, 2, 10, 12), tick=False):
        award_points(member=member, points=100, reason="a", idempotency_key="a")
    with time_machine.travel(at(2024, 3, 10, 12), tick=False):
        award_points(member=member, points=60, reason="b", idempotency_key="b")
    with time_machine.travel(at(2024, 9, 1, 12), tick=False):
        award_points(member=member, points=40, reason="c", idempotency_key="c")
        spend_points(member=member, points=30, reason="x", idempotency_key="s")
    summary = member_balance(member, as_of=at(2025, 1, 1))
    assert summary.balance == 170 and summary.pending == 0
    assert summary.expiring == [(date(2025, 2, 10), 70), (date(2025, 3, 10), 60)]
    assert summary.tier is None and summary.progress_percent == 100


def test_balance_summary_for_a_member_without_account(program):
    summary = member_balance(MemberFactory())
    assert (summary.balance, summary.pending, summary.expiring) == (0, 0, [])
    assert not PointsAccount.objects.exists()


def test_member_transactions_newest_first(program):
    member = MemberFactory()
    with time_machine.travel(at(2025, 1, 1, 12), tick=False):
        award_points(member=member, points=10, reason="first", idempotency_key="1")
    with time_machine.travel(at(2025, 1, 2, 12), tick=False):
        award_points(member=member, points=20, reason="second", idempotency_key="2")
    award_points(member=MemberFactory(), points=5, reason="other", idempotency_key="3")
    assert [t.reason for t in member_transactions(member)] == ["second", "first"]


def test_data_export_has_a_points_section(program):
    member = MemberFactory()
    award_points(member=member, points=42, reason="welcome", idempotency_key="w")
    data = export_member_data(member=member)
    assert data["points"]["balance"] == 42
    assert [(t["reason"], t["points"]) for t in data["points"]["transactions"]] == [("welcome", 42)]


def test_demo_seeder_builds_a_consistent_program_and_is_idempotent():
    out = StringIO()
    call_command("seed_demo", members=60, stdout=out)
    assert "rewards: done" in out.getvalue()
    assert set(Tier.objects.values_list("name", flat=True)) == {
        "Bronze",
        "Silver",
        "Gold",
        "Platinum",
    }
    assert Reward.objects.count() >= 8 and RewardCode.objects.exists()
    assert MembershipPlan.objects.filter(name="Plus").exists()
    assert EarningRule.objects.count() >= 5
    assert PointsAccount.objects.count() == Member.objects.count() == 60
    assert Redemption.objects.exists() and Subscription.objects.exists()
    for member in Member.objects.all():
        assert check_ledger(member) == [], member
    accounts = dict(PointsAccount.objects.values_list("member_id", "balance"))
    sums = dict(
        PointsTransaction.objects.values("member_id")
        .annotate(total=Sum("points"))
        .values_list("member_id", "total")
    )
    assert accounts == sums
    assert not PointsBucket.objects.filter(remaining__gt=0, expires_at__lte=timezone.now()).exists()
    counts = (PointsTransaction.objects.count(), Redemption.objects.count(), Tier.objects.count())

    call_command("seed_demo", members=60, stdout=StringIO())
    assert (
        PointsTransaction.objects.count(),
        Redemption.objects.count(),
        Tier.objects.count(),
    ) == counts
