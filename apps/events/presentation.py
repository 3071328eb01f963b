"""How an event looks on the page: one dict the row template and the JSON frames share."""

import json
import threading
from collections import OrderedDict

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


def render_row(event: dict, ctx: dict | None = None) -> str:
    return render_to_string("events/_row.html", {"e": ctx or row_context(event)})


# Every socket of a team in this process gets the same events: render each once.
_FRAMES: OrderedDict[str, str] = OrderedDict()
_FRAMES_KEPT = 2048
_frames_lock = threading.Lock()  # views call this from sync threads too


def frame(event: dict) -> str:
    """What a WebSocket client gets: the rendered row plus what its filters need."""
    cached = _FRAMES.get(event["id"])
    if cached is not None:
        return cached
    ctx = row_context(event)
    text = json.dumps(
        {
            "id": ctx["id"],
            "sequence": ctx["sequence"],
            "type": ctx["type"],
            "assistant_id": ctx["assistant_id"],
            "key_id": ctx["key_id"],
            "data": event.get("data") or {},
            "html": render_row(event, ctx),
        },
        separators=(",", ":"),
    )
    with _frames_lock:
        _FRAMES[event["id"]] = text
        if len(_FRAMES) > _FRAMES_KEPT:
            _FRAMES.popitem(last=False)
    return text
