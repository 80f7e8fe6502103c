"""The pipeline's working tables, its nightly schedule and who may run it or change its settings.

The working tables hold one run's per-member summary and partial cohort counts between the
fanned-out steps (every worker writes its id range, the fit step reads them all). They are
UNLOGGED (nothing in them survives a crash that a re-run would not rebuild) and exist only on
PostgreSQL, which the pipeline needs.
"""

from django.conf import settings
from django.db import migrations

from members.roles import ANALYST, MARKETER, grant

NIGHTLY = "analytics.tasks.nightly_pipeline"

CREATE_STAGE = """
CREATE UNLOGGED TABLE IF NOT EXISTS analytics_stage_member (
    run_id bigint NOT NULL,
    member_id bigint NOT NULL,
    enrolled_at timestamptz NOT NULL,
    first_day date,
    last_day date,
    purchase_days integer NOT NULL DEFAULT 0,
    total_spend numeric(16, 2) NOT NULL DEFAULT 0,
    repeat_spend numeric(16, 2) NOT NULL DEFAULT 0,
    last_activity_at timestamptz,
    PRIMARY KEY (run_id, member_id)
);
CREATE UNLOGGED TABLE IF NOT EXISTS analytics_stage_cohort (
    run_id bigint NOT NULL,
    chunk_lo bigint NOT NULL,
    basis varchar(15) NOT NULL,
    cohort date NOT NULL,
    period integer NOT NULL,
    members integer NOT NULL
);
CREATE INDEX IF NOT EXISTS analytics_stage_cohort_run ON analytics_stage_cohort (run_id);
"""
DROP_STAGE = "DROP TABLE IF EXISTS analytics_stage_member, analytics_stage_cohort;"


def create_stage_tables(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_STAGE)


def drop_stage_tables(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_STAGE)


def create_schedules(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="30",
        hour="2",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.get_or_create(
        name="analytics: Nightly pipeline (yesterday's snapshots, then segments)",
        defaults={"task": NIGHTLY, "crontab": nightly},
    )


def remove_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task=NIGHTLY).delete()


def create_roles(apps, schema_editor):
    grant(
        apps,
        ANALYST,
        [
            "analytics.add_pipelinerun",
            "analytics.view_analyticssettings",
            "analytics.change_analyticssettings",
        ],
    )
    grant(apps, MARKETER, ["analytics.view_analyticssettings"])


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0003_settings_and_run_details"),
        ("members", "0002_roles"),
        ("django_celery_beat", "__latest__"),
    ]

    operations = [
        migrations.RunPython(create_stage_tables, drop_stage_tables),
        migrations.RunPython(create_schedules, remove_schedules),
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
