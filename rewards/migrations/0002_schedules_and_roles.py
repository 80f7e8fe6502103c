"""Nightly rewards jobs in django-celery-beat (editable in the admin) and role permissions."""

from django.conf import settings
from django.db import migrations

from members.roles import ANALYST, MARKETER, SUPPORT, grant

# (task, name, hour, minute): run after midnight in the program's timezone, reminders by day.
SCHEDULES = [
    ("rewards.tasks.release_pending_points", "Release pending points", 0, 15),
    ("rewards.tasks.expire_points", "Expire points", 0, 30),
    ("rewards.tasks.lapse_subscriptions", "Lapse unpaid subscriptions", 0, 45),
    ("rewards.tasks.review_tiers", "Review tiers", 1, 0),
    ("rewards.tasks.send_expiry_reminders", "Send points expiry reminders", 9, 0),
]
MODELS = [
    "programsettings",
    "tier",
    "pointsaccount",
    "pointstransaction",
    "pointsbucket",
    "earningrule",
    "ruleaward",
    "purchase",
    "tierchange",
    "reward",
    "rewardcode",
    "redemption",
    "referral",
    "membershipplan",
    "subscription",
    "subscriptionevent",
    "subscriptionpayment",
]
MARKETER_MODELS = [
    "programsettings",
    "earningrule",
    "tier",
    "reward",
    "rewardcode",
    "membershipplan",
]


def create_schedules(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for task, name, hour, minute in SCHEDULES:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=str(minute),
            hour=str(hour),
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone=settings.TIME_ZONE,
        )
        PeriodicTask.objects.get_or_create(
            name=f"rewards: {name}", defaults={"task": task, "crontab": crontab}
        )


def remove_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task__in=[task for task, *_ in SCHEDULES]).delete()


def create_roles(apps, schema_editor):
    grant(
        apps,
        MARKETER,
        [
            f"rewards.{action}_{model}"
            for model in MARKETER_MODELS
            for action in ("add", "change", "view")
        ],
    )
    grant(
        apps,
        SUPPORT,
        [
            "rewards.view_pointstransaction",
            "rewards.view_pointsaccount",
            "rewards.view_redemption",
            "rewards.add_pointstransaction",
            "rewards.change_redemption",
        ],
    )
    grant(apps, ANALYST, [f"rewards.view_{model}" for model in MODELS])


class Migration(migrations.Migration):
    dependencies = [
        ("rewards", "0001_initial"),
        ("members", "0002_roles"),
        ("django_celery_beat", "__latest__"),
    ]

    operations = [
        migrations.RunPython(create_schedules, remove_schedules),
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
