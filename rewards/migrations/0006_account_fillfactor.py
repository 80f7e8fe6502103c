"""Every earning moves its member's points account (balance, pending, lifetime, activity),
none of them indexed columns: with a fifth of each page kept free, PostgreSQL updates the row
in place (a HOT update: no new index entries, dead versions pruned on the page)."""

from django.db import migrations


def leave_room(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE rewards_pointsaccount SET (fillfactor = 80)")


def fill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE rewards_pointsaccount RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("rewards", "0005_drop_unused_like_index")]

    operations = [migrations.RunPython(leave_room, fill)]
