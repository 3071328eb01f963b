"""Events written by the statement that writes what they are about.

On the gateway's hot path every write is one statement without a transaction of
its own (a round trip saved is also, on a busy worker, a wait for the GIL saved):
the run's INSERT with its ``run.queued``, the claim's UPDATE with its
``run.started``, a run's end with its final event. These build the event's part of
such a statement from the same row :func:`apps.events.outbox.build` makes, and
after it do what :func:`apps.events.outbox.emit` does after its INSERT.
"""

import json
from functools import cache

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from apps.core import rows
from apps.events.catalogue import TYPES
from apps.events.models import OutboxEvent
from apps.events.outbox import COLUMNS, build, insert, insert_statement, written


def insert_sql(row: OutboxEvent, *, subject_sql: str) -> tuple[str, list]:
    """The row's INSERT (returning its sequence) for a caller's larger statement, its
    subject given as SQL (``%s`` placeholders allowed, filled by the row's subject):
    ``executor``'s final write makes the subject depend on its guarded UPDATE."""
    attnames = insert_statement()[1]
    meta = OutboxEvent._meta
    values = ", ".join(
        subject_sql if name == "subject" else "%s::jsonb" if name == "data" else "%s"
        for name in COLUMNS
    )
    columns = ", ".join(meta.get_field(name).column for name in COLUMNS)
    # identifiers from the model's own metadata; every value is a parameter
    sql = (
        f"INSERT INTO {meta.db_table} ({columns}) VALUES ({values}) "  # noqa: S608
        f"RETURNING {meta.pk.column}"
    )
    params = []
    for name, attname in zip(COLUMNS, attnames, strict=True):
        if name == "subject":
            params += [row.subject] * subject_sql.count("%s")
        elif name == "data":
            params.append(json.dumps(row.data))
        else:
            params.append(getattr(row, attname))
    return sql, params


@cache
def _insert_after_statement(key: str) -> str:
    """The event's INSERT fed by ``inserted``, the row it is about (``key``: its
    primary key column, quoted), returning the event's sequence and that key."""
    meta = OutboxEvent._meta
    columns = ", ".join(meta.get_field(name).column for name in COLUMNS)
    values = []
    for name in COLUMNS:
        if name == "subject":
            values.append(f"%s || inserted.{key}")
        elif name == "data":
            values.append(f"jsonb_set(%s::jsonb, %s::text[], to_jsonb(inserted.{key}))")
        else:
            values.append("%s")
    # identifiers from the models' own metadata; every value is a parameter
    return (
        f"event AS (INSERT INTO {meta.db_table} ({columns}) "  # noqa: S608
        f"SELECT {', '.join(values)} FROM inserted RETURNING {meta.pk.column}) "
        f"SELECT event.{meta.pk.column}, inserted.{key} FROM event, inserted"
    )


def insert_with_event(
    obj,
    team,
    type: str,
    *,
    subject_prefix: str,
    id_field: str,
    data: dict,
    actor=None,
    assistant_id: int | None = None,
    key_id: int | None = None,
) -> OutboxEvent:
    """Insert ``obj`` and the event announcing it, both or neither: the event's subject is
    ``subject_prefix`` and its ``data[id_field]`` is obj's new primary key.

    On PostgreSQL this is one statement (the row's INSERT in a ``WITH``, the event's
    fed by it), so it needs no transaction of its own: the gateway's web side writes a
    run and its ``run.queued`` in one round trip instead of four (BEGIN, two INSERTs,
    COMMIT). Elsewhere, two INSERTs in a transaction."""
    row = build(
        team,
        type,
        subject=subject_prefix,
        data={**data, id_field: 0},
        actor=actor,
        assistant_id=assistant_id,
        key_id=key_id,
    )
    if id_field not in row.data:
        raise ValueError(f"{type} does not carry {id_field!r}; see apps/events/catalogue.py.")
    if connection.vendor != "postgresql":
        with transaction.atomic():
            rows.insert([obj])
            row.subject = f"{subject_prefix}{obj.pk}"[:200]
            row.data[id_field] = obj.pk
            insert(row)
        written(row)
        return row
    obj_sql, params = rows.insert_sql([obj])
    key = connection.ops.quote_name(obj._meta.pk.column)
    sql = f"WITH inserted AS ({obj_sql}), {_insert_after_statement(key)}"
    for name, attname in zip(COLUMNS, insert_statement()[1], strict=True):
        if name == "subject":
            params.append(subject_prefix)
        elif name == "data":
            params += [json.dumps(row.data), f"{{{id_field}}}"]
        else:
            params.append(getattr(row, attname))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        sequence, obj_pk = cursor.fetchone()
    rows.inserted([obj], [obj_pk])
    rows.inserted([row], [sequence])
    row.subject = f"{subject_prefix}{obj_pk}"[:200]
    row.data[id_field] = obj_pk
    written(row)
    return row


class RowEvent:
    """An event whose values come from a row a statement writes, inserted by that same
    statement: ``WITH source AS (UPDATE ... RETURNING ...), <event CTE> SELECT ...``.

    For the writes every model call pays (a worker's claim is one ``UPDATE ...
    RETURNING`` and its ``run.started``): one statement instead of BEGIN, UPDATE,
    INSERT and COMMIT. ``data`` maps each field of the event to the row's attribute
    that fills it; the type's catalogue entry must list every one (content fields are
    not allowed here: they depend on the team's choice). After the statement,
    :meth:`written` takes the event's sequence and the row's values and does what
    :func:`emit` does after its INSERT."""

    def __init__(
        self,
        model,
        type: str,
        *,
        subject_prefix: str,
        data: dict[str, str],
        team: str = "team_id",
        assistant: str = "assistant_id",
        key: str = "api_key_id",
    ):
        event_type = TYPES.get(type)
        if event_type is None or not set(data) <= set(event_type.fields):
            raise ValueError(f"{type}: {sorted(data)} are not all fields of its catalogue entry.")
        self.type, self.subject_prefix, self.data = type, subject_prefix, data
        self.team, self.assistant, self.key = team, assistant, key
        meta = model._meta
        self.column = {f.attname: f.column for f in meta.concrete_fields}
        self.pk = meta.pk.attname

    def sql(self, source: str) -> str:
        """``event AS (INSERT ... SELECT ... FROM source RETURNING sequence)``."""
        meta = OutboxEvent._meta
        columns = ", ".join(meta.get_field(name).column for name in COLUMNS)
        pairs = ", ".join(
            f"'{name}', {source}.{self.column[attr]}" for name, attr in self.data.items()
        )
        values = {
            "team": f"{source}.{self.column[self.team]}",
            "subject": f"%s || {source}.{self.column[self.pk]}",
            "assistant_id": f"{source}.{self.column[self.assistant]}",
            "key_id": f"{source}.{self.column[self.key]}",
            "data": f"jsonb_build_object({pairs})",
        }
        selected = ", ".join(values.get(name, "%s") for name in COLUMNS)
        # identifiers from the models' own metadata and the caller's literal field
        # names; every value is a parameter
        return (
            f"event AS (INSERT INTO {meta.db_table} ({columns}) "  # noqa: S608
            f"SELECT {selected} FROM {source} RETURNING {meta.pk.column})"
        )

    def params(self) -> tuple[list, OutboxEvent]:
        """The statement's parameters (in :meth:`sql`'s order), and the row they describe."""
        row = OutboxEvent(
            type=self.type, time=timezone.now(), actor="system", actor_label="", data={}
        )
        given = {
            "event_id": row.event_id,
            "type": self.type,
            "subject": self.subject_prefix,
            "time": row.time,
            "actor": row.actor,
            "actor_label": row.actor_label,
        }
        return [given[name] for name in COLUMNS if name in given], row

    def written(self, row: OutboxEvent, sequence: int, instance) -> OutboxEvent:
        """The row as stored (the instance is what the statement returned), then its
        check and its hand-off on commit, as :func:`emit`'s."""
        rows.inserted([row], [sequence])
        row.team_id = getattr(instance, self.team)
        row.subject = f"{self.subject_prefix}{instance.pk}"[:200]
        row.assistant_id = getattr(instance, self.assistant)
        row.key_id = getattr(instance, self.key)
        row.data = json.loads(
            json.dumps(
                {name: getattr(instance, attr) for name, attr in self.data.items()},
                cls=DjangoJSONEncoder,
            )
        )
        written(row)
        return row
