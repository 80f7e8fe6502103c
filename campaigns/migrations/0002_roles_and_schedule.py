"""The campaigns scheduler tick in django-celery-beat (editable in the admin) and the roles'
permissions: marketers build and launch campaigns, analysts read them and their results."""

from django.db import migrations

from members.roles import ANALYST, MARKETER, grant

TICK = "campaigns.tasks.run_due_campaigns"
MODELS = ("campaign", "campaignsend", "campaignsettings", "offeraward")


def create_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_5_minutes, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.get_or_create(
        name="campaigns: Start due campaigns and run triggers",
        defaults={"task": TICK, "interval": every_5_minutes},
    )


def remove_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task=TICK).delete()


def create_roles(apps, schema_editor):
    grant(
        apps,
        MARKETER,
        [f"campaigns.{action}_campaign" for action in ("add", "change", "view")]
        + ["campaigns.change_campaignsettings"]
        + [f"campaigns.view_{model}" for model in MODELS],
    )
    grant(apps, ANALYST, [f"campaigns.view_{model}" for model in MODELS])


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("members", "0002_roles"),
        ("django_celery_beat", "__latest__"),
    ]

    operations = [
        migrations.RunPython(create_schedules, remove_schedules),
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
