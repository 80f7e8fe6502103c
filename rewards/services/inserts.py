"""Rows written with statements built once per model (and prepared, rewards.services.sql).

The event and ledger paths insert a handful of rows per request; Django compiles an INSERT
for each `objects.create()`, which costs more processor time than PostgreSQL spends on the
row. `insert_one` writes exactly what `save()` would for a new instance (every concrete column
but the id, after each field's `pre_save`, so auto_now fields are set) and sets the id;
`defer_insert` does the same for a row whose id nobody needs, in the round trip of the next
statement (inside sql.write_behind()), and `defer_row` for a row given as field values (the
other fields at their defaults), without building a model instance; `defer_update` writes
some fields of a saved instance as `save(update_fields=...)` would. None of them sends model
signals: use them only for models nobody listens to (the ledger, accounts, purchases, buckets,
events).

Values go to the driver as `get_db_prep_save` would give them. For the plain field types
(text, numbers, booleans, foreign keys, datetimes without auto_now) that is the attribute
itself on PostgreSQL, so those are read directly; JSON is dumped as the field's encoder
would; any other field goes through its own `pre_save` and `get_db_prep_save`.
"""

import functools
import json
from operator import attrgetter

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import (
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    DecimalField,
    ForeignKey,
    IntegerField,
    JSONField,
    Model,
    OneToOneField,
    PositiveIntegerField,
    SlugField,
    TextField,
)
from django.utils import timezone

from . import sql as statements

_PLAIN = (
    BigIntegerField,
    BooleanField,
    CharField,
    DecimalField,
    ForeignKey,
    IntegerField,
    OneToOneField,
    PositiveIntegerField,
    SlugField,
    TextField,
)


def insert_one(obj: Model) -> Model:
    """INSERT the new instance and set its id; returns it."""
    plan = _plan(type(obj))
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        statements.execute(cursor, plan.returning_sql, plan.values(obj, db))
        obj.pk = cursor.fetchone()[0]
    obj._state.adding = False
    obj._state.db = db.alias
    return obj


def defer_insert(obj: Model, *, with_pk: bool = False) -> Model:
    """INSERT the new instance with the next statement; returns it. Its id stays unset, or,
    with_pk, is the one it carries (drawn from the sequence: sql.next_id)."""
    plan = _plan(type(obj))
    values = plan.values(obj, connections[DEFAULT_DB_ALIAS])
    if with_pk:
        if obj.pk is None:
            raise ValueError("with_pk needs an instance with its id set")
        statements.defer(plan.sql_with_pk, [obj.pk, *values])
        obj._state.adding = False
        obj._state.db = DEFAULT_DB_ALIAS
    else:
        statements.defer(plan.sql, values)
    return obj


def defer_row(model: type[Model], *, if_missing: bool = False, **values) -> None:
    """INSERT a row of `model` with the next statement: the given field values (by attribute
    name, e.g. member_id), every other field at its default (auto_now ones now), as a new
    instance would have. `if_missing`: ON CONFLICT DO NOTHING."""
    plan = _plan(model)
    statements.defer(plan.sql_if_missing if if_missing else plan.sql, plan.row(values))


def defer_update(obj: Model, fields: tuple[str, ...]) -> None:
    """UPDATE the saved instance's `fields` (auto_now ones set now) with the next statement."""
    model = type(obj)
    sql, model_fields = _update_statement(model, fields)
    db = connections[DEFAULT_DB_ALIAS]
    values = [field.get_db_prep_save(field.pre_save(obj, add=False), db) for field in model_fields]
    values.append(obj.pk)
    statements.defer(sql, values)


class _Plan:
    """A model's INSERT statements and how to read each column's value."""

    def __init__(self, model: type[Model]):
        quote = connection.ops.quote_name
        meta = model._meta
        self.fields = [field for field in meta.concrete_fields if not field.primary_key]
        columns = ", ".join(quote(field.column) for field in self.fields)
        placeholders = ", ".join(["%s"] * len(self.fields))
        self.sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
        self.returning_sql = f"{self.sql} RETURNING {quote(meta.pk.column)}"
        self.sql_if_missing = f"{self.sql} ON CONFLICT DO NOTHING"
        self.sql_with_pk = (
            f"INSERT INTO {quote(meta.db_table)} ({quote(meta.pk.column)}, {columns}) "  # noqa: S608
            f"VALUES (%s, {placeholders})"
        )
        self.plain = all(_is_plain(field) or isinstance(field, JSONField) for field in self.fields)
        self.read = attrgetter(*[field.attname for field in self.fields])
        self.json = [
            (index, field.encoder)
            for index, field in enumerate(self.fields)
            if isinstance(field, JSONField)
        ]

    def values(self, obj: Model, db) -> list:
        if not self.plain:
            return [
                field.get_db_prep_save(field.pre_save(obj, add=True), db) for field in self.fields
            ]
        values = list(self.read(obj))
        for index, encoder in self.json:
            values[index] = _dump(values[index], encoder)
        return values

    def row(self, given: dict) -> list:
        values = []
        for field in self.fields:
            if field.attname in given:
                values.append(given[field.attname])
            elif isinstance(field, DateTimeField) and (field.auto_now or field.auto_now_add):
                values.append(timezone.now())
            elif _is_plain(field) or isinstance(field, JSONField):
                values.append(field.get_default())
            else:
                raise TypeError(f"defer_row needs a value for {field.attname}")
        for index, encoder in self.json:
            values[index] = _dump(values[index], encoder)
        unknown = set(given) - {field.attname for field in self.fields}
        if unknown:
            raise TypeError(f"Unknown fields: {', '.join(sorted(unknown))}")
        return values


def _is_plain(field) -> bool:
    if isinstance(field, DateTimeField):
        return not (field.auto_now or field.auto_now_add)
    return type(field) in _PLAIN


def _dump(value, encoder) -> str | None:
    """A JSON field's value as the driver gets it from get_db_prep_save (text for jsonb)."""
    return None if value is None else json.dumps(value, cls=encoder)


@functools.cache
def _plan(model: type[Model]) -> _Plan:
    return _Plan(model)


@functools.cache
def _update_statement(model: type[Model], fields: tuple[str, ...]) -> tuple[str, list]:
    quote = connection.ops.quote_name
    meta = model._meta
    model_fields = [meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in model_fields)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"  # noqa: S608
    return sql, model_fields
