"""Rows written with statements built once per model (and prepared, rewards.services.sql).

The event and ledger paths insert a handful of rows per request; Django compiles an INSERT
for each `objects.create()`, which costs more processor time than PostgreSQL spends on the
row. `insert_one` writes exactly what `save()` would for a new instance (every concrete column
but the id, after each field's `pre_save`, so auto_now fields are set) and sets the id;
`defer_insert` does the same for a row whose id nobody needs, in the round trip of the next
statement (inside sql.write_behind()); `defer_update` writes some fields of a saved instance as
`save(update_fields=...)` would. None of them sends model signals: use them only for models
nobody listens to (the ledger, accounts, purchases, buckets, events).
"""

import functools

from django.db import connection
from django.db.models import Model

from . import sql as statements


def insert_one(obj: Model) -> Model:
    """INSERT the new instance and set its id; returns it."""
    fields, sql = _statement(type(obj), returning=True)
    with connection.cursor() as cursor:
        statements.execute(cursor, sql, _values(obj, fields))
        obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


def defer_insert(obj: Model) -> Model:
    """INSERT the new instance with the next statement (its id stays unset); returns it."""
    fields, sql = _statement(type(obj), returning=False)
    statements.defer(sql, _values(obj, fields))
    return obj


def defer_update(obj: Model, fields: tuple[str, ...]) -> None:
    """UPDATE the saved instance's `fields` (auto_now ones set now) with the next statement."""
    model = type(obj)
    meta = model._meta
    sql = _update_statement(model, fields)
    values = [
        meta.get_field(name).get_db_prep_save(
            meta.get_field(name).pre_save(obj, add=False), connection
        )
        for name in fields
    ]
    values.append(obj.pk)
    statements.defer(sql, values)


def _values(obj: Model, fields) -> list:
    return [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for field in fields]


@functools.cache
def _statement(model: type[Model], *, returning: bool) -> tuple[list, str]:
    quote = connection.ops.quote_name
    meta = model._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
    if returning:
        sql += f" RETURNING {quote(meta.pk.column)}"
    return fields, sql


@functools.cache
def _update_statement(model: type[Model], fields: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    meta = model._meta
    assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in fields)
    return (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {quote(meta.pk.column)} = %s"
    )
