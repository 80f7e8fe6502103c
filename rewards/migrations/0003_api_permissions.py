"""Permissions the REST API needs that 0002 did not grant.

Support (the role integrators' API keys use too) redeems rewards for members, so it reads the
catalogue and adds redemptions; it also looks up, starts, renews and cancels a member's paid
plan.
"""

from django.db import migrations

from members.roles import SUPPORT, grant


def create_roles(apps, schema_editor):
    grant(
        apps,
        SUPPORT,
        [
            "rewards.view_reward",
            "rewards.add_redemption",
            "rewards.view_membershipplan",
            "rewards.view_subscription",
            "rewards.add_subscription",
            "rewards.change_subscription",
            "rewards.view_subscriptionpayment",
            "rewards.add_subscriptionpayment",
        ],
    )


class Migration(migrations.Migration):
    dependencies = [("rewards", "0002_schedules_and_roles")]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
