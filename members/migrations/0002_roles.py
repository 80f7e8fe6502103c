"""Create the staff roles with their members permissions (later apps add their own)."""

from django.db import migrations

from members.roles import ANALYST, MARKETER, SUPPORT, grant


def create_roles(apps, schema_editor):
    grant(
        apps,
        MARKETER,
        [
            "members.view_member",
            "django_celery_beat.view_periodictask",
            "django_celery_beat.change_periodictask",
            "django_celery_beat.add_periodictask",
            "django_celery_beat.view_crontabschedule",
            "django_celery_beat.add_crontabschedule",
            "django_celery_beat.change_crontabschedule",
            "django_celery_beat.view_intervalschedule",
            "django_celery_beat.add_intervalschedule",
            "django_celery_beat.change_intervalschedule",
        ],
    )
    grant(apps, ANALYST, ["members.view_member"])
    grant(
        apps,
        SUPPORT,
        [
            "members.view_member",
            "members.change_member",
            "members.view_consentchange",
        ],
    )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[MARKETER, ANALYST, SUPPORT]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_celery_beat", "__latest__"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
