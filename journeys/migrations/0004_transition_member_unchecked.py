"""Transitions: the member reference is no longer checked per row by PostgreSQL (see
StageTransition)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0003_roles_and_schedules"),
        ("members", "0003_drop_unused_like_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="stagetransition",
            name="member",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="stage_transitions",
                to="members.member",
            ),
        ),
    ]
