"""A run's output as server-sent events, for programs that can't open a WebSocket.

The view itself is synchronous (authentication, permission and the row are
checked before any byte is sent, so refusals carry the API's error body); the
body is an async generator that the ASGI server drives, so a waiting stream
holds no thread.
"""

import json

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Router

from apps.core.api_errors import with_errors
from apps.inference import selectors
from apps.inference.streaming import follow
from apps.teams.selectors import team_for_request

router = Router(tags=["runs"])

SSE_DOC = {
    "responses": {
        200: {
            "description": (
                "`text/event-stream`: `event: delta` with `{run_id, delta}` for each new piece "
                "of text, then one `event: done` with the finished run (status, output, "
                "usage, latency). Lines starting with `:` are keep-alives."
            ),
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    }
}


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def run_event_stream(run_id: int):
    async for event in await follow(run_id):
        if event.kind == "text":
            yield sse("delta", {"run_id": run_id, "delta": event.text})
        elif event.kind == "quiet":
            yield ": keep-alive\n\n"
        else:
            yield sse("done", event.final)


@router.get(
    "/{team_slug}/runs/{run_id}/stream",
    response=with_errors({}),
    operation_id="runs_stream",
    summary="Follow a run as server-sent events",
    description=(
        "Streams the run's text as it is generated and ends with its final state. "
        "Connecting after the run finished gives the whole output and the end at once."
    ),
    openapi_extra=SSE_DOC,
)
def runs_stream(request: HttpRequest, team_slug: str, run_id: int):
    run = selectors.run_for_team(team_for_request(request, team_slug), run_id)
    response = StreamingHttpResponse(run_event_stream(run.pk), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
