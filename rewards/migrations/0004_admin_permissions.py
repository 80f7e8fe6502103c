"""Permissions the rewards admin screens need beyond 0002: read-only lists for the roles that
look members up (Support) or watch what their configuration does (Marketer)."""

from django.db import migrations

from members.roles import MARKETER, SUPPORT, grant


def create_roles(apps, schema_editor):
    grant(
        apps,
        MARKETER,
        [
            "rewards.view_redemption",
            "rewards.view_subscription",
            "rewards.view_subscriptionevent",
            "rewards.view_referral",
        ],
    )
    grant(
        apps,
        SUPPORT,
        [
            "rewards.view_reward",
            "rewards.view_tier",
            "rewards.view_membershipplan",
            "rewards.view_subscription",
            "rewards.view_subscriptionevent",
            "rewards.view_referral",
        ],
    )


class Migration(migrations.Migration):
    # Was 0002 as briefed; 0003_api_permissions (API work) appeared meanwhile and two leaves
    # stop every migrate, so this follows it. The lead may re-point it when committing.
    dependencies = [
        ("rewards", "0003_api_permissions"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
