"""The one function services call to record an event: :func:`emit`.

It writes an outbox row in the caller's transaction, so the event exists if
and only if the change commits. With Kafka configured the relay publishes the
row (a NOTIFY from the table's insert trigger, delivered by PostgreSQL only on
commit and once per transaction, wakes it; see migration 0002); in the
embedded default the row is handed straight to the channel layer on commit,
so the events page works the same without Kafka.
"""

import json
import logging
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
    """Record ``type`` for ``team`` in the current transaction.

    Content fields of the type (prompts, answers) are dropped unless the team
    turned ``events_include_content`` on; keys the catalogue doesn't list are
    dropped too, so nothing slips out by accident.
    """
    event_type = TYPES.get(type)
    if event_type is None:
        raise ValueError(f"Unknown event type {type!r}; add it to apps/events/catalogue.py.")
    allowed = set(event_type.fields)
    if getattr(team, "events_include_content", False):
        allowed |= set(event_type.content)
    plain = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    plain = {name: value for name, value in plain.items() if name in allowed}
    ref, label = actor_ref(actor)
    row = OutboxEvent(
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
    _insert(row)
    if settings.EVENTS_CHECK_ON_EMIT:  # a caller's bug fails here, not on the topic
        envelope.validate(envelope.build(row))
    # With Kafka, the insert trigger's NOTIFY (delivered on commit) wakes the relay.
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        transaction.on_commit(lambda: deliver_directly(row))
    return row


def deliver_directly(row: OutboxEvent) -> bool:
    """Without Kafka: give a committed row to the channel layer and mark it published.
    The row is the one just written (nothing else delivers rows in this mode), so it
    is not read back; the stamp only touches it if nobody stamped it meanwhile."""
    from apps.events import realtime

    realtime.deliver([envelope.build(row)])
    stamped = OutboxEvent.objects.filter(pk=row.pk, published_at__isnull=True).update(
        published_at=timezone.now()
    )
    return bool(stamped)
