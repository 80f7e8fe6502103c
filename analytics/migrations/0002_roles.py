"""Analysts read every snapshot and define segments and goals; marketers define segments and
goals and read the snapshots they target with."""

from django.db import migrations

from members.roles import ANALYST, MARKETER, grant

SNAPSHOTS = ("pipelinerun", "modelfit", "membermetrics", "kpisnapshot", "cohortretention")
DEFINITIONS = ("segment", "goal")


def create_roles(apps, schema_editor):
    definitions = [
        f"analytics.{action}_{model}"
        for model in DEFINITIONS
        for action in ("add", "change", "delete", "view")
    ]
    snapshots = [f"analytics.view_{model}" for model in SNAPSHOTS]
    grant(apps, ANALYST, definitions + snapshots)
    grant(apps, MARKETER, definitions + snapshots)


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_initial"),
        ("members", "0002_roles"),
    ]

    operations = [
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
