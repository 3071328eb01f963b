"""The one function services call to record an event: :func:`emit`.

It writes an outbox row in the caller's transaction, so the event exists if
and only if the change commits. With Kafka configured the relay publishes the
row (a NOTIFY from the table's insert trigger, delivered by PostgreSQL only on
commit and once per transaction, wakes it; see migration 0002); without
Kafka the row is handed to the channel layer on commit (:func:`deliver_directly`),
so the events page works the same without Kafka.
"""

import json
import logging
import os
import queue
import threading
import time
from functools import cache

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from apps.core import rows
from apps.events import envelope
from apps.events.catalogue import TYPES
from apps.events.models import OutboxEvent

logger = logging.getLogger(__name__)
NOTIFY_CHANNEL = "portal_events_outbox"


def actor_ref(actor) -> tuple[str, str]:
    """(``user:<id>`` / ``key:<id>`` / ``system``, a label people recognise)."""
    if actor is None:
        return "system", ""
    key = getattr(actor, "api_key", None)
    if key is not None:
        return f"key:{key.pk}", key.prefix
    if getattr(actor, "is_authenticated", False) and getattr(actor, "pk", None):
        return f"user:{actor.pk}", getattr(actor, "label", "") or str(actor)
    return "system", str(actor)[:200]


_COLUMNS = (
    "event_id",
    "team",
    "type",
    "subject",
    "time",
    "actor",
    "actor_label",
    "assistant_id",
    "key_id",
    "data",
)


@cache
def _insert_statement() -> tuple[str, tuple[str, ...]]:
    """The INSERT and the row attributes that fill its parameters, in order."""
    meta = OutboxEvent._meta
    fields = [meta.get_field(name) for name in _COLUMNS]
    columns = ", ".join(f.column for f in fields)
    values = ", ".join("%s::jsonb" if name == "data" else "%s" for name in _COLUMNS)
    # identifiers from the model's own metadata; every value is a parameter
    table, key = meta.db_table, meta.pk.column
    sql = f"INSERT INTO {table} ({columns}) VALUES ({values}) RETURNING {key}"  # noqa: S608
    return sql, tuple(f.attname for f in fields)


def _insert(row: OutboxEvent) -> None:
    """Write the row. ``emit`` runs on every write path, so on PostgreSQL this is one
    plain statement: a third of the CPU of ``Model.save`` (183 -> 62 us per event,
    which bench/events.py's writers feel). Other databases take the ORM's way."""
    if connection.vendor != "postgresql":
        row.save(force_insert=True)
        return
    sql, attnames = _insert_statement()
    values = [getattr(row, name) for name in attnames]
    values[-1] = json.dumps(row.data)
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row.sequence = cursor.fetchone()[0]
    row._state.adding = False
    row._state.db = connection.alias


def build(team, type: str, *, subject, data, actor, assistant_id, key_id) -> OutboxEvent:
    """The unsaved row: content fields of the type (prompts, answers) are dropped unless
    the team turned ``events_include_content`` on; keys the catalogue doesn't list are
    dropped too, so nothing slips out by accident."""
    event_type = TYPES.get(type)
    if event_type is None:
        raise ValueError(f"Unknown event type {type!r}; add it to apps/events/catalogue.py.")
    allowed = set(event_type.fields)
    if getattr(team, "events_include_content", False):
        allowed |= set(event_type.content)
    plain = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    plain = {name: value for name, value in plain.items() if name in allowed}
    ref, label = actor_ref(actor)
    return OutboxEvent(
        team_id=team.pk,
        type=type,
        subject=subject[:200],
        time=timezone.now(),
        actor=ref,
        actor_label=label[:200],
        assistant_id=assistant_id,
        key_id=key_id,
        data=plain,
    )


def written(row: OutboxEvent) -> None:
    """What follows every written event: its check (tests), and its hand-off on commit."""
    if settings.EVENTS_CHECK_ON_EMIT:  # a caller's bug fails here, not on the topic
        envelope.validate(envelope.build(row))
    # With Kafka, the insert trigger's NOTIFY (delivered on commit) wakes the relay.
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        transaction.on_commit(lambda: deliver_directly(row))


def insert_sql(row: OutboxEvent, *, subject_sql: str) -> tuple[str, list]:
    """The row's INSERT (returning its sequence) for a caller's larger statement, its
    subject given as SQL (``%s`` placeholders allowed, filled by the row's subject):
    ``executor``'s final write makes the subject depend on its guarded UPDATE."""
    sql, attnames = _insert_statement()
    meta = OutboxEvent._meta
    values = ", ".join(
        subject_sql if name == "subject" else "%s::jsonb" if name == "data" else "%s"
        for name in _COLUMNS
    )
    columns = ", ".join(meta.get_field(name).column for name in _COLUMNS)
    # identifiers from the model's own metadata; every value is a parameter
    sql = (
        f"INSERT INTO {meta.db_table} ({columns}) VALUES ({values}) "  # noqa: S608
        f"RETURNING {meta.pk.column}"
    )
    params = []
    for name, attname in zip(_COLUMNS, attnames, strict=True):
        if name == "subject":
            params += [row.subject] * subject_sql.count("%s")
        elif name == "data":
            params.append(json.dumps(row.data))
        else:
            params.append(getattr(row, attname))
    return sql, params


def emit(
    team,
    type: str,
    *,
    subject: str,
    data: dict,
    actor=None,
    assistant_id: int | None = None,
    key_id: int | None = None,
) -> OutboxEvent:
    """Record ``type`` for ``team`` in the current transaction."""
    row = build(
        team,
        type,
        subject=subject,
        data=data,
        actor=actor,
        assistant_id=assistant_id,
        key_id=key_id,
    )
    _insert(row)
    written(row)
    return row


@cache
def _insert_after_statement(key: str) -> str:
    """The event's INSERT fed by ``inserted``, the row it is about (``key``: its
    primary key column, quoted), returning the event's sequence and that key."""
    meta = OutboxEvent._meta
    columns = ", ".join(meta.get_field(name).column for name in _COLUMNS)
    values = []
    for name in _COLUMNS:
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
            _insert(row)
        written(row)
        return row
    insert_sql, params = rows.insert_sql([obj])
    key = connection.ops.quote_name(obj._meta.pk.column)
    sql = f"WITH inserted AS ({insert_sql}), {_insert_after_statement(key)}"
    for name, attname in zip(_COLUMNS, _insert_statement()[1], strict=True):
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
    row.sequence, row.subject = sequence, f"{subject_prefix}{obj_pk}"[:200]
    row.data[id_field] = obj_pk
    row._state.adding, row._state.db = False, connection.alias
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
        columns = ", ".join(meta.get_field(name).column for name in _COLUMNS)
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
        selected = ", ".join(values.get(name, "%s") for name in _COLUMNS)
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
        return [given[name] for name in _COLUMNS if name in given], row

    def written(self, row: OutboxEvent, sequence: int, instance) -> OutboxEvent:
        """The row as stored (the instance is what the statement returned), then its
        check and its hand-off on commit, as :func:`emit`'s."""
        row.sequence = sequence
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
        row._state.adding, row._state.db = False, connection.alias
        written(row)
        return row


def deliver_directly(row: OutboxEvent) -> None:
    """Without Kafka: give a committed row to the channel layer and mark it published.

    With the in-memory layer (the embedded default) it is delivered here and now: that
    layer lives on the ASGI server's loop. With Redis it goes to this process's
    delivery thread, so the request or run that wrote it never waits on the hand-off
    (it sat between a run's commit and its task, and between its claim and the
    backend call); the thread delivers in commit order and batches what piles up."""
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        _deliver([row])
    else:
        _deliverer().put(row)


def _deliver(rows: list[OutboxEvent]) -> int:
    """Hand rows (already committed, not read back) to the channel layer and stamp them;
    the stamp only touches rows nobody stamped meanwhile."""
    from apps.events import realtime

    realtime.deliver([envelope.build(row) for row in rows])
    return mark_published([row.pk for row in rows])


@cache
def _mark_statement() -> str:
    meta = OutboxEvent._meta
    published = meta.get_field("published_at").column
    # identifiers from the model's own metadata; every value is a parameter
    return (
        f"UPDATE {meta.db_table} SET {published} = %s "  # noqa: S608
        f"WHERE {meta.pk.column} = ANY(%s) AND {published} IS NULL"
    )


def mark_published(sequences: list[int]) -> int:
    """Stamp rows as published, skipping any stamped meanwhile; returns how many.

    Every event of every run passes here (the relay, or the direct hand-off), so on
    PostgreSQL it is one plain statement: the ORM's ``filter().update()`` compiled
    the same UPDATE each time for a third of a worker's event cost."""
    if not sequences:
        return 0
    now = timezone.now()
    if connection.vendor != "postgresql":
        return OutboxEvent.objects.filter(pk__in=sequences, published_at__isnull=True).update(
            published_at=now
        )
    with connection.cursor() as cursor:
        cursor.execute(_mark_statement(), [now, sequences])
        return cursor.rowcount


class _Deliverer:
    """One daemon thread per process draining a queue of committed rows, in order.

    It waits ``EVENTS_DIRECT_LINGER_MS`` after a row for the rows that follow: every
    gateway call writes three events, and one batch is one ``group_send`` per team and
    one stamping UPDATE (a commit) however many rows it holds."""

    BATCH = 500

    def __init__(self):
        self.queue: queue.SimpleQueue[OutboxEvent] = queue.SimpleQueue()
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._run, name="events-direct", daemon=True)
        self.thread.start()

    def put(self, row: OutboxEvent) -> None:
        self.queue.put(row)

    def _run(self) -> None:
        while True:
            rows = [self.queue.get()]
            deadline = time.monotonic() + settings.EVENTS_DIRECT_LINGER_MS / 1000
            while len(rows) < self.BATCH:
                try:
                    rows.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                _deliver(rows)
            except Exception:  # a page missing live events must not stop the next ones
                logger.warning("could not deliver %d events directly", len(rows), exc_info=True)
            finally:
                connection.close()  # back to the pool (or dropped if broken) between batches


_deliverer_instance: _Deliverer | None = None
_deliverer_lock = threading.Lock()


def _deliverer() -> _Deliverer:
    global _deliverer_instance
    with _deliverer_lock:
        current = _deliverer_instance
        if current is None or current.pid != os.getpid() or not current.thread.is_alive():
            current = _deliverer_instance = _Deliverer()
        return current
