"""Drop the LIKE (varchar_pattern_ops) indexes PostgreSQL gets beside the unique indexes of
member numbers, referral codes, statuses and API key prefixes: nothing searches them by
prefix, and every enrollment (an import enrolls 100,000 at once) paid for them. The external
id keeps its own (demo data is found by prefix)."""

from django.db import migrations

INDEXES = [
    ("members_member_member_number_a895ad8a_like", "members_member", "member_number"),
    ("members_member_referral_code_e49d714c_like", "members_member", "referral_code"),
    ("members_member_status_0d2ab2b9_like", "members_member", "status"),
    ("members_apikey_prefix_34c7f586_like", "members_apikey", "prefix"),
]


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _, _ in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, column in INDEXES:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column} varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("members", "0002_roles")]

    operations = [migrations.RunPython(drop, create, elidable=True)]
