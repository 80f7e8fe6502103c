from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core import mail
from django_celery_beat.models import PeriodicTask

from members.roles import ANALYST, MARKETER, SUPPORT
from rewards import tasks
from rewards.models import (
    ExpiryPolicy,
    PointsAccount,
    PointsTransaction,
    SubscriptionEvent,
    TierChange,
)
from rewards.services import award_points, subscribe
from rewards.services.clock import parse_as_of

from .factories import MemberFactory, MembershipPlanFactory, TierFactory
from .helpers import AMS, assert_consistent, at, balance

pytestmark = pytest.mark.django_db


def snapshot():
    return (
        PointsTransaction.objects.count(),
        TierChange.objects.count(),
        SubscriptionEvent.objects.count(),
        list(PointsAccount.objects.order_by("id").values_list("balance", "pending", "tier_id")),
    )


def test_nightly_tasks_run_twice_change_nothing_the_second_time(program):
    program.expiry_policy = ExpiryPolicy.ROLLING_MONTHS
    program.expiry_months = 6
    program.pending_days = 10
    program.save()
    TierFactory(name="Bronze", rank=1, points_threshold=0, guaranteed_months=1)
    TierFactory(name="Silver", rank=2, points_threshold=100, guaranteed_months=1)
    members = [MemberFactory() for _ in range(3)]
    with time_machine.travel(at(2025, 1, 1, 12), tick=False):
        for member in members:
            award_points(member=member, points=150, reason="x", idempotency_key=f"a{member.pk}")
        subscribe(member=members[0], plan=MembershipPlanFactory(trial_days=7))

    def run_all(day: str):
        tasks.release_pending_points.delay(as_of=day)
        tasks.expire_points.delay(as_of=day)
        tasks.lapse_subscriptions.delay(as_of=day)
        tasks.review_tiers.delay(as_of=day)
        tasks.send_expiry_reminders.delay(as_of=day)

    for day in ["2025-01-20", "2025-06-15", "2025-08-01", "2026-01-01", "2026-02-01"]:
        run_all(day)
        after_first = snapshot()
        emails = len(mail.outbox)
        run_all(day)
        assert snapshot() == after_first, day
        assert len(mail.outbox) == emails, day

    for member in members:
        assert balance(member) == 0  # released in January, expired in July
        assert_consistent(member)
    assert len(mail.outbox) == 3  # one reminder each, before the expiry
    assert TierChange.objects.filter(to_tier__name="Silver").count() == 3
    assert TierChange.objects.filter(to_tier__name="Bronze", cause="review").count() == 3


def test_release_task_reports_what_it_did(program):
    program.pending_days = 3
    program.save()
    member = MemberFactory()
    with time_machine.travel(at(2025, 1, 1, 12), tick=False):
        award_points(member=member, points=10, reason="x", idempotency_key="a")
    assert tasks.release_pending_points.delay(as_of="2025-01-03").get() == 0
    assert tasks.release_pending_points.delay(as_of="2025-01-04T12:00:00+01:00").get() == 1


def test_a_bare_date_means_the_end_of_that_day_in_the_program_timezone():
    assert parse_as_of("2025-03-01", AMS) == at(2025, 3, 2)
    assert parse_as_of("2025-03-01T08:00:00", AMS) == at(2025, 3, 1, 8)
    with pytest.raises(ValueError):
        parse_as_of("yesterday")


def test_nightly_jobs_are_scheduled_in_the_program_timezone(db):
    scheduled = {t.task: t for t in PeriodicTask.objects.filter(task__startswith="rewards.tasks.")}
    assert set(scheduled) == {
        "rewards.tasks.release_pending_points",
        "rewards.tasks.expire_points",
        "rewards.tasks.send_expiry_reminders",
        "rewards.tasks.review_tiers",
        "rewards.tasks.lapse_subscriptions",
    }
    for task in scheduled.values():
        assert task.enabled and task.crontab is not None
        assert str(task.crontab.timezone) == "Europe/Amsterdam"


def perms(role: str) -> set[str]:
    return set(
        Group.objects.get(name=role)
        .permissions.filter(content_type__app_label="rewards")
        .values_list("codename", flat=True)
    )


def test_roles_get_their_rewards_permissions(db):
    marketer = perms(MARKETER)
    for model in [
        "programsettings",
        "earningrule",
        "tier",
        "reward",
        "rewardcode",
        "membershipplan",
    ]:
        assert {f"add_{model}", f"change_{model}", f"view_{model}"} <= marketer
    assert "change_pointsaccount" not in marketer
    support = perms(SUPPORT)
    assert {
        "view_pointstransaction",
        "view_pointsaccount",
        "view_redemption",
        "add_pointstransaction",
        "change_redemption",
    } <= support
    # Support adjusts points and cancels redemptions; it never configures the program.
    assert not {"change_earningrule", "change_tier", "change_reward", "add_reward"} & support
    assert not any(c.startswith("delete_") for c in support)
    analyst = perms(ANALYST)
    assert {"view_pointstransaction", "view_subscriptionevent", "view_redemption"} <= analyst
    assert all(codename.startswith("view_") for codename in analyst)


def test_money_fields_stay_decimal(program):
    assert isinstance(program.cost_per_point, Decimal)
