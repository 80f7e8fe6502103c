"""One new row, written with a statement built once per model.

The event and ledger paths insert a handful of rows per request; Django compiles an INSERT
for each `objects.create()`, which costs more processor time than PostgreSQL spends on the
row. `insert_one` writes exactly what `save()` would for a new instance (every concrete column
but the id, after each field's `pre_save`, so auto_now fields are set) and sets the id. It sends
no model signals: use it only for models nobody listens to (the ledger, purchases, buckets,
events)."""

import functools

from django.db import connection
from django.db.models import Model


def insert_one(obj: Model) -> Model:
    """INSERT the new instance and set its id; returns it."""
    model = type(obj)
    fields, sql = _statement(model)
    values = [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


@functools.cache
def _statement(model: type[Model]) -> tuple[list, str]:
    quote = connection.ops.quote_name
    meta = model._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders}) "  # noqa: S608
        f"RETURNING {quote(meta.pk.column)}"
    )
    return fields, sql
