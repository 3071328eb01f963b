"""How an event looks on the page: one dict the row template and the JSON frames share.

The envelope names the key behind a call as ``key:<id>`` with the key's prefix for a
label, and run events carry the key's id in their data. The row shows the key's name
(the prefix as a hint): names are looked up here, once per batch of rows (the page's
history, a gap fill, a replay, one channel-layer message of the live feed), so old
events show them too and the emitting paths don't change. Times are on the team's
clock, with the date for anything before today there.
"""

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.events import envelope


@dataclass(frozen=True)
class KeyLabel:
    name: str
    prefix: str


@dataclass
class Lookups:
    """What rendering a batch of one team's rows needs from the database."""

    zone: ZoneInfo
    today: date
    keys: dict[int, KeyLabel] = field(default_factory=dict)

    @property
    def stale_at(self) -> float:
        """When rows rendered with these lookups stop being right: "today" ends."""
        midnight = datetime.combine(self.today + timedelta(days=1), datetime.min.time(), self.zone)
        return midnight.timestamp()


def actor_key_id(event: dict) -> int | None:
    """The key that made the call behind ``event``, if a key did: the actor of what
    it did itself, and the key of a run's worker-side events (their actor is the system)."""
    actor = event.get("actor") or ""
    if actor.startswith("key:"):
        ref = actor.removeprefix("key:")
        return int(ref) if ref.isdigit() else None
    if actor == "system" and str(event.get("type", "")).startswith("run."):
        key_id = (event.get("data") or {}).get("key_id")
        return key_id if isinstance(key_id, int) and not isinstance(key_id, bool) else None
    return None


def lookups_for(events: list[dict], *, team=None) -> Lookups:
    """The team's clock and the names of the keys the rows mention: at most two queries
    (none for the team when the caller has it), however many rows."""
    from apps.keys.models import ApiKey
    from apps.teams.models import Team

    if team is None:
        team_id = int(events[0]["teamid"]) if events else None
        team = Team.objects.filter(pk=team_id).only("time_zone").first() if team_id else None
    zone = team.zone if team is not None else ZoneInfo("UTC")
    ids = {key_id for key_id in map(actor_key_id, events) if key_id is not None}
    keys = {}
    if ids and team is not None:
        rows = ApiKey.objects.filter(team_id=team.pk, pk__in=ids).only("pk", "name", "public_id")
        keys = {key.pk: KeyLabel(key.name, key.prefix) for key in rows}
    return Lookups(zone=zone, today=timezone.now().astimezone(zone).date(), keys=keys)


def row_context(event: dict, lookups: Lookups | None = None) -> dict:
    lookups = lookups or lookups_for([event])
    data = event.get("data") or {}
    moment = parse_datetime(event["time"]).astimezone(lookups.zone)
    clock = moment.strftime("%H:%M:%S")
    key_id = actor_key_id(event)
    key = lookups.keys.get(key_id) if key_id is not None else None
    return {
        "id": event["id"],
        "sequence": int(event["sequence"]),
        "type": event["type"],
        "time": moment,
        "time_iso": event["time"],
        "time_text": clock if moment.date() >= lookups.today else f"{moment:%Y-%m-%d} {clock}",
        "time_title": f"{moment:%Y-%m-%d} {clock} {lookups.zone.key}",
        "subject": event["subject"],
        "actor": key.name if key else event.get("actorlabel") or event.get("actor") or "system",
        "actor_key_prefix": key.prefix if key else "",
        "summary": envelope.summary(event),
        "assistant_id": data.get("assistant_id") or "",
        "key_id": data.get("key_id") or "",
        "json": json.dumps(event, indent=2, ensure_ascii=False),
    }


def row_contexts(events: list[dict], *, team=None) -> list[dict]:
    lookups = lookups_for(events, team=team)
    return [row_context(event, lookups) for event in events]


def render_row(event: dict, ctx: dict | None = None) -> str:
    return render_to_string("events/_row.html", {"e": ctx or row_context(event)})


# Every socket of a team in this process gets the same events: render each once (until
# the team's day ends, when a row of today needs its date).
_FRAMES: OrderedDict[str, tuple[float, str]] = OrderedDict()
_FRAMES_KEPT = 2048
_frames_lock = threading.Lock()  # views call this from sync threads too


def _frame_text(event: dict, ctx: dict) -> str:
    return json.dumps(
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


def cached_frames(events: list[dict]) -> list[str] | None:
    """Every frame of the batch from this process's cache, or None when one is missing
    (then :func:`frames` renders, which reads the database)."""
    now = time.time()
    texts = []
    for event in events:
        cached = _FRAMES.get(event["id"])
        if cached is None or cached[0] <= now:
            return None
        texts.append(cached[1])
    return texts


def frames(events: list[dict], *, team=None) -> list[str]:
    """What WebSocket clients get for a batch of one team's events: each rendered row plus
    what the page's filters need. One lookup for the rows this process hasn't rendered."""
    now = time.time()
    texts: list[str | None] = []
    missing = []
    for event in events:
        cached = _FRAMES.get(event["id"])
        if cached is not None and cached[0] > now:
            texts.append(cached[1])
        else:
            texts.append(None)
            missing.append(event)
    if missing:
        lookups = lookups_for(missing, team=team)
        stale_at = lookups.stale_at
        rendered = {}
        for event in missing:
            rendered[event["id"]] = _frame_text(event, row_context(event, lookups))
        with _frames_lock:
            for event_id, text in rendered.items():
                _FRAMES[event_id] = (stale_at, text)
                _FRAMES.move_to_end(event_id)
            while len(_FRAMES) > _FRAMES_KEPT:
                _FRAMES.popitem(last=False)
        texts = [
            text if text is not None else rendered[event["id"]]
            for text, event in zip(texts, events, strict=True)
        ]
    return texts


def frame(event: dict) -> str:
    return frames([event])[0]
