"""The OpenAI-compatible endpoints: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Async views: the synchronous part (key, body, limits, creating the run) runs in
a thread of the pool (not the single thread-sensitive one, so requests don't
queue behind each other's database round trips), then the view awaits the
run's messages on this process's reply channel (:mod:`apps.inference.feed`),
so a waiting request or an open stream holds no thread. A streamed answer waits for the
first sign of life before it sends the status line, so a run that fails at once
still gets a real 5xx; one that fails later ends its stream with an error event,
as OpenAI's does. A caller that goes away cancels its run.
"""

import contextlib
import logging

from channels.db import database_sync_to_async
from django.core.exceptions import PermissionDenied
from django.db import close_old_connections
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from apps.core.errors import Conflict
from apps.gateway import responses, services
from apps.gateway.errors import GatewayError, translate
from apps.gateway.requests import parse_chat, read_json
from apps.inference import feed
from apps.inference import services as inference
from apps.inference.models import RunStatus
from apps.inference.streaming import follow
from apps.keys.api_auth import KeyRejected, actor_for_header

logger = logging.getLogger(__name__)

NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
BACKEND_FAILURE_STATUS = {"timeout": 504, "rate_limited": 503, "bad_request": 400}


def _off_loop(function):
    """``function`` in a thread of the pool: the gateway's handler keeps no per-request
    thread-sensitive context (apps/gateway/asgi.py), and nothing here needs one."""
    return database_sync_to_async(function, thread_sensitive=False)


def _authenticate_sync(request):
    header = request.headers.get("Authorization")
    if not header:
        raise GatewayError(401, NO_KEY, code="missing_api_key")
    try:
        return actor_for_header(header)
    except KeyRejected as exc:
        raise GatewayError(401, exc.message, code="invalid_api_key") from None


def _start_sync(request, channel: str):
    try:
        actor = _authenticate_sync(request)
        chat = parse_chat(read_json(request))
        reply = feed.Reply(channel, deltas=chat.stream)
        try:
            return actor, chat, services.chat_start(actor=actor, chat=chat, reply=reply)
        except Exception as exc:
            raise translate(exc) from None
    finally:
        # a pool thread, not the request's: give the connection back (or drop a
        # broken one) as Django's request_finished would
        close_old_connections()


def _cancel_sync(actor, run) -> None:
    with contextlib.suppress(Conflict, PermissionDenied):  # it finished meanwhile
        inference.run_cancel(run=run, actor=actor)


def _unexpected(exc: Exception) -> JsonResponse:
    logger.exception("gateway error", exc_info=exc)
    return GatewayError(
        500,
        "The server had an error while processing your request; the request id is in the "
        "X-Request-ID header.",
        code="internal_error",
    ).response()


def _failure(final: dict) -> GatewayError:
    """The error for a run the backends could not answer."""
    code = final.get("error_code") or "backend_error"
    message = final.get("error") or "The model backend failed."
    return GatewayError(BACKEND_FAILURE_STATUS.get(code, 502), message, code=code)


def _failed(final: dict) -> bool:
    return final["status"] == RunStatus.FAILED


async def _finished(events):
    async for event in events:
        if event.kind == "done":
            return event.final
    raise RuntimeError("the run stream ended without a final state")  # pragma: no cover


async def _chunks(writer: responses.ChunkWriter, first, events, actor, started):
    finished = False
    try:
        yield writer.first()
        event = first
        while True:
            if event.kind == "text":
                yield writer.text(event.text)
            elif event.kind == "quiet":
                yield ": keep-alive\n\n"
            else:
                finished = True
                if _failed(event.final):
                    yield writer.error(_failure(event.final).response_body())
                    yield "data: [DONE]\n\n"
                else:
                    yield writer.end(event.final)
                return
            event = await anext(events)
    finally:
        await events.aclose()
        if not finished:
            await _off_loop(_cancel_sync)(actor, started.run)


@csrf_exempt
async def chat_completions(request):
    if request.method != "POST":
        return GatewayError(
            405, "Use POST for chat completions.", code="method_not_allowed"
        ).response()
    try:
        hub = await feed.hub()
        start = _off_loop(_start_sync)
        actor, chat, started = await start(request, hub.channel)
    except GatewayError as exc:
        return exc.response()
    except Exception as exc:
        return _unexpected(exc)
    events = await follow(started.run.pk, reply=True)
    try:
        if not chat.stream:
            final = await _finished(events)
            if _failed(final):
                return _failure(final).response()
            response = JsonResponse(responses.completion(started, final))
        else:
            first = await anext(events)
            if first.kind == "done" and _failed(first.final):
                return _failure(first.final).response()
            writer = responses.ChunkWriter(started, include_usage=chat.include_usage)
            response = StreamingHttpResponse(
                _chunks(writer, first, events, actor, started), content_type="text/event-stream"
            )
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"
    except BaseException:
        await events.aclose()
        await _off_loop(_cancel_sync)(actor, started.run)
        raise
    response["X-Portal-Run-Id"] = str(started.run.pk)
    return response


def _models_sync(request, model: str | None) -> dict:
    if request.method != "GET":
        raise GatewayError(405, "Use GET to read models.", code="method_not_allowed")
    entries = services.models_for(_authenticate_sync(request))
    if model is None:
        return {"object": "list", "data": entries}
    for entry in entries:
        if entry["id"] == model:
            return entry
    raise services.model_not_found(model)


@csrf_exempt
async def models(request, model: str | None = None):
    """``GET /v1/models`` and ``GET /v1/models/{model}``."""
    try:
        return JsonResponse(await _off_loop(_models_sync)(request, model))
    except GatewayError as exc:
        return exc.response()
    except Exception as exc:
        return _unexpected(exc)


@csrf_exempt
def not_found(request, rest: str = ""):
    return GatewayError(
        404, f"Unknown endpoint: {request.method} {request.path}", code="unknown_url"
    ).response()
