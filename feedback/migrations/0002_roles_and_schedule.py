"""The invitation job in django-celery-beat (editable in the admin) and the roles' permissions.

Marketers configure surveys; Support works follow-ups and may send answers through the API
(`feedback.add_surveyresponse`, like events), so a kiosk's integration user in either group
can call POST /api/v1/surveys/{id}/responses/; analysts read everything.
"""

from django.db import migrations

from members.roles import ANALYST, MARKETER, SUPPORT, grant

TASK = "feedback.tasks.send_survey_invitations"
MODELS = ["survey", "question", "invitation", "surveyresponse", "answer", "followup"]


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_15_minutes, _ = IntervalSchedule.objects.get_or_create(every=15, period="minutes")
    PeriodicTask.objects.get_or_create(
        name="feedback: Send survey invitations",
        defaults={"task": TASK, "interval": every_15_minutes},
    )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task=TASK).delete()


def create_roles(apps, schema_editor):
    grant(
        apps,
        MARKETER,
        [
            f"feedback.{action}_{model}"
            for model in ("survey", "question")
            for action in ("add", "change", "delete", "view")
        ]
        + [
            "feedback.view_invitation",
            "feedback.view_surveyresponse",
            "feedback.add_surveyresponse",
            "feedback.view_answer",
            "feedback.view_followup",
        ],
    )
    grant(
        apps,
        SUPPORT,
        [
            "feedback.view_survey",
            "feedback.view_question",
            "feedback.view_invitation",
            "feedback.view_surveyresponse",
            "feedback.add_surveyresponse",
            "feedback.view_answer",
            "feedback.view_followup",
            "feedback.change_followup",
        ],
    )
    grant(apps, ANALYST, [f"feedback.view_{model}" for model in MODELS])


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0001_initial"),
        ("members", "0002_roles"),
        ("django_celery_beat", "__latest__"),
    ]

    operations = [
        migrations.RunPython(create_schedule, remove_schedule),
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
