"""Drop the LIKE (varchar_pattern_ops) index PostgreSQL gets beside the unique index of the
ledger's idempotency keys: keys are only looked up whole, and every ledger row (an import
writes a million) paid for it."""

from django.db import migrations

NAME = "rewards_pointstransaction_idempotency_key_ebd0dda0_like"


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {NAME}")


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {NAME} ON rewards_pointstransaction "
            "(idempotency_key varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("rewards", "0004_admin_permissions")]

    operations = [migrations.RunPython(drop, create, elidable=True)]
