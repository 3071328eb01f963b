"""Reads of the event log (the outbox rows the retention window keeps)."""

from datetime import datetime

from django.db.models import QuerySet

from apps.events.models import OutboxEvent


def events_for_team(
    team,
    *,
    types: list[str] | None = None,
    assistant_id: int | None = None,
    key_id: int | None = None,
    since: datetime | None = None,
    after_sequence: int | None = None,
    before_sequence: int | None = None,
) -> QuerySet[OutboxEvent]:
    rows = OutboxEvent.objects.filter(team=team)
    if types:
        rows = rows.filter(type__in=types)
    if assistant_id is not None:
        rows = rows.filter(assistant_id=assistant_id)
    if key_id is not None:
        rows = rows.filter(key_id=key_id)
    if since is not None:
        rows = rows.filter(time__gte=since)
    if after_sequence is not None:
        rows = rows.filter(sequence__gt=after_sequence)
    if before_sequence is not None:
        rows = rows.filter(sequence__lt=before_sequence)
    return rows.order_by("-sequence")
