"""Pushing a run's tokens and final state to its channel-layer group.

Workers relay from plain threads. ``async_to_sync`` would start a fresh event
loop per message and, with the Redis layer, a fresh connection pool each time,
so for Redis one long-lived loop thread per process does all sends and keeps
its pool warm. The in-memory layer of the embedded default only works on the
ASGI server's own loop, which ``async_to_sync`` reaches from threads that
asgiref started; there we use it.

Deltas of one run are coalesced into one message per
``INFERENCE_RELAY_INTERVAL_MS`` (the first is sent at once), which keeps
hundreds of concurrent streams from flooding the layer.
"""

import asyncio
import logging
import threading
import time

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)
SEND_TIMEOUT_SECONDS = 5
PARTIAL_TTL_SECONDS = 3600


def run_group(run_id: int) -> str:
    return f"run.{run_id}"


class _LoopThread:
    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="relay-loop", daemon=True)
        self.thread.start()


_loop_thread: _LoopThread | None = None
_loop_lock = threading.Lock()


def _relay_loop() -> asyncio.AbstractEventLoop:
    global _loop_thread
    with _loop_lock:
        if _loop_thread is None or not _loop_thread.thread.is_alive():
            _loop_thread = _LoopThread()
        return _loop_thread.loop


def run_on_layer(coroutine_function, *args) -> None:
    """Run ``coroutine_function(*args)`` against the channel layer from sync code, and wait.

    The in-memory layer needs the ASGI server's loop (``async_to_sync``); any
    other runs on this process's relay loop thread, which also works from a
    thread whose own loop is busy (a test thread that Playwright owns)."""
    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        async_to_sync(coroutine_function)(*args)
        return
    future = asyncio.run_coroutine_threadsafe(coroutine_function(*args), _relay_loop())
    future.result(timeout=SEND_TIMEOUT_SECONDS)


def group_send(group: str, message: dict) -> None:
    """Send and wait, so messages of one sender arrive in order. Failures are logged,
    not raised: a viewer missing a token must not fail the run."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        run_on_layer(layer.group_send, group, message)
    except Exception:
        logger.warning("could not relay to %s", group, exc_info=True)


def partial_key(run_id: int) -> str:
    return f"run-partial:{run_id}"


def partial_output(run_id: int) -> str:
    """What a running run has streamed so far, for viewers who join late."""
    return cache.get(partial_key(run_id)) or ""


class DeltaRelay:
    """Collects a run's deltas and sends them in coalesced batches, in order.

    Each message carries the offset of its text in the whole output, and the
    text sent so far is kept in the cache *before* the message goes out. A
    viewer joins the group first and reads that snapshot second, so between
    the two it misses nothing, and the offsets let it drop what it got twice.
    """

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.group = run_group(run_id)
        self.interval = settings.INFERENCE_RELAY_INTERVAL_MS / 1000
        self.pending: list[str] = []
        self.sent_text = ""
        self.last_sent = 0.0
        self.sent_any = False

    def push(self, delta: str) -> None:
        self.pending.append(delta)
        now = time.monotonic()
        if not self.sent_any or now - self.last_sent >= self.interval:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if not self.pending:
            return
        text, self.pending = "".join(self.pending), []
        offset = len(self.sent_text)
        self.sent_text += text
        cache.set(partial_key(self.run_id), self.sent_text, PARTIAL_TTL_SECONDS)
        group_send(
            self.group,
            {"type": "run.delta", "run_id": self.run_id, "delta": text, "offset": offset},
        )
        self.last_sent = now or time.monotonic()
        self.sent_any = True

    def forget(self) -> None:
        cache.delete(partial_key(self.run_id))
