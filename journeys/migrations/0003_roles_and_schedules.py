"""Journey jobs in django-celery-beat (editable in the admin) and the roles' permissions.

Support and Marketer may send events (`journeys.add_customerevent`), so a shop's integration
user in either group can call POST /api/v1/events/.
"""

from django.conf import settings
from django.db import migrations

from members.roles import ANALYST, MARKETER, SUPPORT, grant

ABANDONED_CARTS = "journeys.tasks.detect_abandoned_carts"
EVALUATE_STAGES = "journeys.tasks.evaluate_stages"
MODELS = [
    "journeystage",
    "stagerule",
    "touchpoint",
    "allowedeventtype",
    "journeysettings",
    "customerevent",
    "memberjourney",
    "stagetransition",
]
MARKETER_CONFIGURES = ["journeystage", "stagerule", "touchpoint", "allowedeventtype"]


def create_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_15_minutes, _ = IntervalSchedule.objects.get_or_create(every=15, period="minutes")
    PeriodicTask.objects.get_or_create(
        name="journeys: Detect abandoned carts",
        defaults={"task": ABANDONED_CARTS, "interval": every_15_minutes},
    )
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="15",
        hour="1",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.get_or_create(
        name="journeys: Evaluate stages (inactivity)",
        defaults={"task": EVALUATE_STAGES, "crontab": nightly},
    )


def remove_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task__in=[ABANDONED_CARTS, EVALUATE_STAGES]).delete()


def create_roles(apps, schema_editor):
    grant(
        apps,
        MARKETER,
        [
            f"journeys.{action}_{model}"
            for model in MARKETER_CONFIGURES
            for action in ("add", "change", "delete", "view")
        ]
        + [
            "journeys.change_journeysettings",
            "journeys.view_journeysettings",
            "journeys.add_customerevent",
            "journeys.view_customerevent",
            "journeys.view_memberjourney",
            "journeys.view_stagetransition",
        ],
    )
    grant(
        apps,
        SUPPORT,
        [
            "journeys.add_customerevent",
            "journeys.view_customerevent",
            "journeys.view_memberjourney",
            "journeys.view_stagetransition",
            "journeys.view_journeystage",
            "journeys.view_touchpoint",
        ],
    )
    grant(apps, ANALYST, [f"journeys.view_{model}" for model in MODELS])


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0002_default_stages"),
        ("members", "0002_roles"),
        ("django_celery_beat", "__latest__"),
    ]

    operations = [
        migrations.RunPython(create_schedules, remove_schedules),
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
