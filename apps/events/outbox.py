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


COLUMNS = (
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
def insert_statement() -> tuple[str, tuple[str, ...]]:
    """The INSERT and the row attributes that fill its parameters, in order."""
    meta = OutboxEvent._meta
    fields = [meta.get_field(name) for name in COLUMNS]
    columns = ", ".join(f.column for f in fields)
    values = ", ".join("%s::jsonb" if name == "data" else "%s" for name in COLUMNS)
    # identifiers from the model's own metadata; every value is a parameter
    table, key = meta.db_table, meta.pk.column
    sql = f"INSERT INTO {table} ({columns}) VALUES ({values}) RETURNING {key}"  # noqa: S608
    return sql, tuple(f.attname for f in fields)


def insert(row: OutboxEvent) -> None:
    """Write the row. ``emit`` runs on every write path, so on PostgreSQL this is one
    plain statement: a third of the CPU of ``Model.save`` (183 -> 62 us per event,
    which bench/events.py's writers feel). Other databases take the ORM's way."""
    if connection.vendor != "postgresql":
        row.save(force_insert=True)
        return
    sql, attnames = insert_statement()
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
    insert(row)
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
