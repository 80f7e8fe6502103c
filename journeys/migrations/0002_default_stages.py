"""Seed the default journey: eight stages and the rules that move members between them."""

from django.db import migrations

from journeys.defaults import seed_stages


def create_default_stages(apps, schema_editor):
    seed_stages(apps.get_model("journeys", "JourneyStage"), apps.get_model("journeys", "StageRule"))


def remove_default_stages(apps, schema_editor):
    apps.get_model("journeys", "StageRule").objects.all().delete()
    apps.get_model("journeys", "JourneyStage").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("journeys", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_default_stages, remove_default_stages)]
