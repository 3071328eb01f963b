"""Following one run from async code: its text so far, each new piece, then the end.

The REST API's server-sent events and the OpenAI-compatible gateway both read
runs this way. :func:`follow` joins the run's channel group before it reads the
snapshot (the partial text in the cache, or the finished row), the order the
WebSocket consumer uses, so nothing streamed in between is lost; deltas carry
offsets, so text already given is never given twice. When the layer is quiet
for a while it re-reads the row, so a lost ``run.done`` can't hang a caller.

The pending ``receive`` is never cancelled while following: channels_redis
drops a channel's buffered messages when a receive on it is cancelled, so a
timeout around each receive lost ``run.done`` under load (bench/gateway.py at
N=50: dozens of answers 5 s late). One receive task stays pending across quiet
periods instead, and is cancelled only when the caller leaves.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from apps.inference.executor import final_message
from apps.inference.models import ChatRun
from apps.inference.relay import partial_output, run_group

QUIET_CHECK_SECONDS = 5.0


@dataclass(frozen=True)
class RunEvent:
    """``text``: new output; ``quiet``: nothing for a while; ``done``: the run
    finished, ``final`` is its :func:`~apps.inference.executor.final_message`
    (the same dict the worker broadcasts, so the end costs no database read)."""

    kind: str
    text: str = ""
    final: dict | None = None


def _load_sync(run_id: int) -> ChatRun:
    return ChatRun.objects.select_related("prompt_version").get(pk=run_id)


@database_sync_to_async
def _final_if_finished(run_id: int) -> dict | None:
    run = _load_sync(run_id)
    return final_message(run) if run.is_finished else None


@database_sync_to_async
def _snapshot(run_id: int) -> tuple[dict | None, str]:
    partial = partial_output(run_id)
    run = _load_sync(run_id)
    return (final_message(run) if run.is_finished else None), partial


class _Text:
    """How much of the output the caller has, so overlapping pieces are trimmed."""

    def __init__(self):
        self.sent = 0

    def piece(self, offset: int, delta: str) -> str:
        end = offset + len(delta)
        if end <= self.sent or offset > self.sent:
            return ""
        text = delta[self.sent - offset :]
        self.sent = end
        return text

    def rest_of(self, output: str) -> str:
        return self.piece(0, output)


async def follow(
    run_id: int, *, quiet_seconds: float = QUIET_CHECK_SECONDS
) -> AsyncIterator[RunEvent]:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = run_group(run_id)
    await layer.group_add(group, channel)
    text = _Text()
    receiver: asyncio.Future | None = None
    try:
        final, partial = await _snapshot(run_id)
        if final is not None:
            if rest := text.rest_of(final["output"]):
                yield RunEvent("text", rest)
            yield RunEvent("done", final=final)
            return
        if partial := text.rest_of(partial):
            yield RunEvent("text", partial)
        while True:
            if receiver is None:
                receiver = asyncio.ensure_future(layer.receive(channel))
            done, _pending = await asyncio.wait({receiver}, timeout=quiet_seconds)
            if done:
                message, receiver = receiver.result(), None
            else:
                message = await _final_if_finished(run_id)
                if message is None:
                    yield RunEvent("quiet")
                    continue
            if message.get("type") == "run.delta":
                if piece := text.piece(message["offset"], message["delta"]):
                    yield RunEvent("text", piece)
            elif message.get("type") == "run.done":
                if rest := text.rest_of(message["output"]):
                    yield RunEvent("text", rest)
                yield RunEvent("done", final=message)
                return
    finally:
        if receiver is not None:
            receiver.cancel()
        await layer.group_discard(group, channel)
