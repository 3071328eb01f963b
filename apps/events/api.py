"""The team's events over the REST API: the log with filters and cursor paging,
and the live feed as server-sent events (keys need the ``read`` scope)."""

import asyncio
from datetime import datetime

from channels.layers import get_channel_layer
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Field, Query, Router, Schema

from apps.core.api_errors import with_errors
from apps.events import envelope, selectors
from apps.events.catalogue import TYPES
from apps.events.realtime import events_group
from apps.inference.api_stream import sse
from apps.teams.permissions import Action
from apps.teams.selectors import IMPLIED_TEAM_HELP, implied_team_slug, team_for_request

router = Router(tags=["events"])
KEEPALIVE_SECONDS = 15.0


class EventOut(Schema):
    specversion: str
    id: str
    source: str
    type: str
    time: str
    subject: str
    datacontenttype: str
    teamid: str
    schemaversion: str
    sequence: str
    actor: str
    actorlabel: str
    data: dict


class EventPageOut(Schema):
    items: list[EventOut]
    next_cursor: int | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page.",
        examples=[1042],
    )


class EventQuery(Schema):
    type: list[str] | None = Field(
        None, description=f"Only these types (repeat the parameter). One of: {', '.join(TYPES)}."
    )
    assistant_id: int | None = Field(None, description="Only events about this assistant.")
    key_id: int | None = Field(None, description="Only events about or by this API key.")
    since: datetime | None = Field(None, description="Only events at or after this time.")
    cursor: int | None = Field(
        None, ge=1, description="`next_cursor` of the previous page: events older than it."
    )
    limit: int = Field(50, ge=1, le=200, description="How many events (1 to 200).")


@router.get(
    "/{team_slug}/events",
    response=with_errors(EventPageOut),
    operation_id="events_list",
    summary="The team's events, newest first",
)
def events_list(request: HttpRequest, team_slug: str, filters: Query[EventQuery]):
    """From the event log (kept ``EVENTS_RETENTION_DAYS``), each in the CloudEvents
    envelope the Kafka topic carries. Pages by cursor, so new events arriving while
    you page never shift or repeat rows."""
    return _events_page(request, team_slug, filters)


def _events_page(request, team_slug: str, filters: EventQuery) -> dict:
    team = team_for_request(request, team_slug, Action.VIEW)
    rows = list(
        selectors.events_for_team(
            team,
            types=filters.type,
            assistant_id=filters.assistant_id,
            key_id=filters.key_id,
            since=filters.since,
            before_sequence=filters.cursor,
        )[: filters.limit + 1]
    )
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return {
        "items": [envelope.build(row) for row in rows],
        "next_cursor": rows[-1].sequence if more else None,
    }


async def live_feed(team_id: int, types: set[str] | None):
    """The team's group, read with one receive pending at a time (channels_redis drops
    a channel's buffered messages when a receive on it is cancelled)."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = events_group(team_id)
    await layer.group_add(group, channel)
    receiver = None
    try:
        yield ": connected\n\n"
        while True:
            if receiver is None:
                receiver = asyncio.ensure_future(layer.receive(channel))
            done, _ = await asyncio.wait({receiver}, timeout=KEEPALIVE_SECONDS)
            if not done:
                yield ": keep-alive\n\n"
                continue
            message, receiver = receiver.result(), None
            for event in message.get("events") or []:
                if types and event.get("type") not in types:
                    continue
                yield f"id: {event.get('id')}\n" + sse(event.get("type", "event"), event)
    finally:
        if receiver is not None:
            receiver.cancel()
        await layer.group_discard(group, channel)


STREAM_DOC = {
    "responses": {
        200: {
            "description": (
                "`text/event-stream`: one `event: <type>` per event with the envelope "
                "as `data` and its id as `id`. Lines starting with `:` are keep-alives."
            ),
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    }
}


@router.get(
    "/{team_slug}/events/stream",
    response=with_errors({}),
    operation_id="events_stream",
    summary="Follow the team's events live as server-sent events",
    openapi_extra=STREAM_DOC,
)
def events_stream(request: HttpRequest, team_slug: str, type: Query[list[str] | None] = None):
    """Needs membership or a key with the ``read`` scope. Events from the moment you
    connect; use the list for what happened before."""
    team = team_for_request(request, team_slug, Action.VIEW)
    response = StreamingHttpResponse(
        live_feed(team.pk, set(type) if type else None), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


# The same answers without the team in the path: an API key's team, or ?team=<slug>.
implied_router = Router(tags=["events"])


@implied_router.get(
    "/events",
    response=with_errors(EventPageOut, 400),
    operation_id="events_of_caller",
    summary="The caller's team's events, newest first",
)
def events_of_caller(
    request: HttpRequest,
    filters: Query[EventQuery],
    team: str | None = Query(None, description=IMPLIED_TEAM_HELP),
):
    """`GET /teams/{slug}/events` for the key's team (or `?team=` when signed in)."""
    return _events_page(request, implied_team_slug(request, team), filters)


@implied_router.get(
    "/events/stream",
    response=with_errors({}, 400),
    operation_id="events_stream_of_caller",
    summary="Follow the caller's team's events live as server-sent events",
    openapi_extra=STREAM_DOC,
)
def events_stream_of_caller(
    request: HttpRequest,
    type: Query[list[str] | None] = None,
    team: str | None = Query(None, description=IMPLIED_TEAM_HELP),
):
    """`GET /teams/{slug}/events/stream` for the key's team (or `?team=`)."""
    return events_stream(request, implied_team_slug(request, team), type)
