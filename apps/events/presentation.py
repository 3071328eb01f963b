"""How an event looks on the page: one dict the row template and the JSON frames share."""

import json

from django.template.loader import render_to_string
from django.utils.dateparse import parse_datetime

from apps.events import envelope


def row_context(event: dict) -> dict:
    data = event.get("data") or {}
    return {
        "id": event["id"],
        "sequence": int(event["sequence"]),
        "type": event["type"],
        "time": parse_datetime(event["time"]),
        "time_iso": event["time"],
        "subject": event["subject"],
        "actor": event.get("actorlabel") or event.get("actor") or "system",
        "summary": envelope.summary(event),
        "assistant_id": data.get("assistant_id") or "",
        "key_id": data.get("key_id") or "",
        "json": json.dumps(event, indent=2, ensure_ascii=False),
    }


def render_row(event: dict) -> str:
    return render_to_string("events/_row.html", {"e": row_context(event)})


def frame(event: dict) -> str:
    """What a WebSocket client gets: the rendered row plus what its filters need."""
    ctx = row_context(event)
    return json.dumps(
        {
            "id": ctx["id"],
            "sequence": ctx["sequence"],
            "type": ctx["type"],
            "assistant_id": ctx["assistant_id"],
            "key_id": ctx["key_id"],
            "data": event.get("data") or {},
            "html": render_row(event),
        },
        separators=(",", ":"),
    )
