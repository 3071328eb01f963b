"""INSERT and UPDATE for the few writes every model call pays, without the ORM's compiler.

A run's final write (its row, its attempts, their ledger rows) happens once per
request on the gateway's hot path. ``bulk_create`` of one row and a
``QuerySet.update`` of seventeen columns each cost 300 to 450 us of a worker's
CPU, mostly building the same SQL again; these build it from the model's
metadata in a few microseconds and leave the rest to the database. Values go
through each field's own ``pre_save`` and ``get_db_prep_save``, and an
expression value (``usage.models.CurrentTransactionId``) is compiled by the
ORM's compiler, so what is stored is exactly what the ORM would store, on
PostgreSQL and on SQLite alike.
"""

import functools

from django.db import connection
from django.db.models import Model
from django.db.models.base import ModelState
from django.db.models.sql import InsertQuery


@functools.cache
def _insert_fields(model: type[Model]) -> tuple:
    meta = model._meta
    return tuple(f for f in meta.local_concrete_fields if f is not meta.auto_field)


def _value_sql(field, value, query, compiler) -> tuple[str, list]:
    if hasattr(value, "resolve_expression"):
        resolved = value.resolve_expression(query, allow_joins=False, for_save=True)
        sql, params = compiler.compile(resolved)
        return sql, list(params)
    return "%s", [field.get_db_prep_save(value, connection)]


def insert_sql(
    objs: list[Model], *, returning: tuple[str, ...] = (), given=None
) -> tuple[str, list]:
    """The INSERT of ``objs`` (one model) that returns their primary keys (then the
    ``returning`` attributes' columns), and its parameters: what :func:`insert` runs,
    for a caller that puts it in a larger statement (``apps.events.outbox``,
    ``apps.inference.final_write``). ``given(obj)``: attribute name -> ``(sql,
    params)`` for values another part of that statement supplies."""
    model = type(objs[0])
    meta = model._meta
    fields = _insert_fields(model)
    query = InsertQuery(model)
    compiler = query.get_compiler(connection=connection)
    quote = connection.ops.quote_name
    rows, params = [], []
    for obj in objs:
        supplied = given(obj) if given else {}
        placeholders = []
        for field in fields:
            if field.attname in supplied:
                sql, values = supplied[field.attname]
            else:
                sql, values = _value_sql(field, field.pre_save(obj, True), query, compiler)
            placeholders.append(sql)
            params.extend(values)
        rows.append(f"({', '.join(placeholders)})")
    columns = ", ".join(quote(f.column) for f in fields)
    returned = ", ".join(
        quote(column) for column in (meta.pk.column, *(meta.get_field(n).column for n in returning))
    )
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join(rows)} "  # noqa: S608
        f"RETURNING {returned}"
    )
    return sql, params


def inserted(objs: list[Model], keys) -> None:
    """Mark ``objs`` as saved with the primary keys their INSERT returned, in order."""
    for obj, pk in zip(objs, keys, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


def insert(objs: list[Model]) -> None:
    """Insert ``objs`` (one model, primary keys from the database) in one statement and
    set their primary keys, as ``bulk_create`` does."""
    if not objs:
        return
    sql, params = insert_sql(objs)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        keys = [pk for (pk,) in cursor.fetchall()]
    inserted(objs, keys)


@functools.cache
def _update_sql(model: type[Model], fields: tuple[str, ...], where: tuple[str, ...]) -> str:
    meta = model._meta
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in fields)
    columns = [meta.pk.column, *(meta.get_field(name).column for name in where)]
    conditions = " AND ".join(f"{quote(column)} = %s" for column in columns)
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {conditions}"  # noqa: S608


def update_sql(instance: Model, fields: tuple[str, ...], **where) -> tuple[str, list]:
    """The UPDATE :func:`update` runs, and its parameters."""
    meta = type(instance)._meta
    params = []
    for name in fields:
        field = meta.get_field(name)
        params.append(field.get_db_prep_save(field.pre_save(instance, False), connection))
    params.append(meta.pk.get_db_prep_value(instance.pk, connection))
    for name, value in where.items():
        params.append(meta.get_field(name).get_db_prep_value(value, connection))
    return _update_sql(type(instance), fields, tuple(where)), params


def update(instance: Model, fields: tuple[str, ...], **where) -> int:
    """Write ``fields`` of ``instance`` to its row if the row still matches ``where``
    (equality on each named field); returns how many rows it changed (0 or 1)."""
    sql, params = update_sql(instance, fields, **where)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


@functools.cache
def _readers(model: type[Model]) -> tuple[str, tuple[str, ...], tuple]:
    """The column list of a ``RETURNING``, the attribute names its values fill, and each
    value's converters (a JSON column arrives as text and is decoded, as the ORM does)."""
    meta = model._meta
    quote = connection.ops.quote_name
    fields = meta.concrete_fields
    readers = []
    for field in fields:
        column = field.get_col(meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        readers.append((column, tuple(converters)))
    columns = ", ".join(quote(field.column) for field in fields)
    return columns, tuple(field.attname for field in fields), tuple(readers)


def returning(model: type[Model]) -> str:
    """``RETURNING`` and every column of ``model``, in the order :func:`from_row` reads."""
    return f"RETURNING {_readers(model)[0]}"


def from_row(model: type[Model], values) -> Model:
    """The instance a row of :func:`returning` describes, as a query would load it
    (``Model.from_db``), without a ``RawQuerySet`` mapping columns per query."""
    _columns, attnames, readers = _readers(model)
    converted = []
    for value, (column, converters) in zip(values, readers, strict=True):
        for converter in converters:
            value = converter(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, attnames, converted)


def clone(instance: Model) -> Model:
    """A shallow copy of a loaded instance with its own state and relation cache, so
    one request or run can set attributes or attach relations on a row a per-process
    cache shares (``gateway.routing``, ``inference.worker_rows``). ``copy.copy`` does
    the same through pickling's protocol at five times the cost (7 against 1.4 us)."""
    copy = object.__new__(type(instance))
    copy.__dict__.update(instance.__dict__)
    state = copy._state = ModelState()
    state.db = instance._state.db
    state.adding = instance._state.adding
    state.fields_cache = dict(instance._state.fields_cache)
    return copy
