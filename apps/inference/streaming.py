"""Following one run from async code: its text so far, each new piece, then the end.

The one way to follow a run: the gateway (as the run's caller, on its web
process's reply channel), the REST API's server-sent events, the run page's
and the playground's WebSockets (as watchers of the run's channel) all read
runs through :func:`follow`. A watcher subscribes before it reads the snapshot
(the partial text, or the finished row), so nothing streamed in between is
lost; a caller needs no snapshot, since its reply channel keeps what arrived
before it asked. Deltas carry offsets, so text already given is never given
twice. When nothing arrives for a while the row is re-read, so a lost
``run.done`` can't hang a caller.
"""

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from channels.db import database_sync_to_async

from apps.inference import feed
from apps.inference.models import ChatRun
from apps.inference.outcome import final_message

QUIET_CHECK_SECONDS = 5.0


@dataclass(frozen=True)
class RunEvent:
    """``text``: new output starting at ``offset``; ``quiet``: nothing for a while;
    ``done``: the run finished, ``final`` is its
    :func:`~apps.inference.outcome.final_message` (the dict the worker sends)."""

    kind: str
    text: str = ""
    final: dict | None = None
    offset: int = 0


def _final_sync(run_id: int) -> dict | None:
    run = ChatRun.objects.select_related("prompt_version").get(pk=run_id)
    if not run.is_finished:
        return None
    return final_message(run, list(run.usage_records.all()))


# Off the one thread-sensitive thread: a quiet stream's check must not queue behind
# other requests' (the gateway keeps no per-request thread-sensitive context).
_final_if_finished = database_sync_to_async(_final_sync, thread_sensitive=False)


def _snapshot_sync(run_id: int) -> tuple[dict | None, str]:
    partial = feed.partial_output(run_id)
    return _final_sync(run_id), partial


_snapshot = database_sync_to_async(_snapshot_sync, thread_sensitive=False)


class _Text:
    """How much of the output the caller has, so overlapping pieces are trimmed."""

    def __init__(self):
        self.sent = 0

    def piece(self, offset: int, delta: str) -> RunEvent | None:
        end = offset + len(delta)
        if end <= self.sent or offset > self.sent:
            return None
        event = RunEvent("text", delta[self.sent - offset :], offset=self.sent)
        self.sent = end
        return event

    def rest_of(self, output: str) -> RunEvent | None:
        return self.piece(0, output)


async def follow(
    run_id: int, *, reply: bool = False, quiet_seconds: float = QUIET_CHECK_SECONDS
) -> AsyncGenerator[RunEvent]:
    """The run's events, subscribed when this returns (so a page can announce the run
    and then stream it without a gap). ``reply``: this process is the run's caller
    (its task names this process's reply channel); otherwise watch the run's channel.
    Iterate the result to the end or ``aclose()`` it, which unsubscribes."""
    hub = await feed.hub()
    queue = hub.expect(run_id) if reply else await hub.watch(run_id)
    return _events(hub, run_id, queue, reply=reply, quiet_seconds=quiet_seconds)


async def _events(
    hub: feed.Hub, run_id: int, queue: asyncio.Queue, *, reply: bool, quiet_seconds: float
) -> AsyncGenerator[RunEvent]:
    text = _Text()
    try:
        if not reply:
            final, partial = await _snapshot(run_id)
            if final is not None:
                if rest := text.rest_of(final["output"]):
                    yield rest
                yield RunEvent("done", final=final)
                return
            if piece := text.rest_of(partial):
                yield piece
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), quiet_seconds)
            except TimeoutError:
                message = await _final_if_finished(run_id)
                if message is None:
                    yield RunEvent("quiet")
                    continue
            if message.get("type") == "run.delta":
                if piece := text.piece(message["offset"], message["delta"]):
                    yield piece
            elif message.get("type") == "run.done":
                if rest := text.rest_of(message["output"] or ""):
                    yield rest
                yield RunEvent("done", final=message)
                return
    finally:
        if reply:
            hub.done_with(run_id)
        else:
            await hub.unwatch(run_id, queue)


def delta_message(run_id: int, event: RunEvent) -> dict:
    """A text event as the browser pages receive it (they trim by offset too)."""
    return {"type": "run.delta", "run_id": run_id, "delta": event.text, "offset": event.offset}
