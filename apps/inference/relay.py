"""The worker's side of a run's stream: deltas coalesced, then handed to the feed.

Deltas of one run are coalesced into one message per
``INFERENCE_RELAY_INTERVAL_MS`` (the first is sent at once), which keeps
hundreds of concurrent streams from flooding Redis. Each message carries the
offset of its text in the whole output, and the text so far is stored with
the same round trip, *before* watchers get the message: a watcher subscribes
first and reads that snapshot second, so between the two it misses nothing,
and the offsets let it drop what it got twice.

A run whose caller asked for no stream (a non-streamed ``/v1`` call) relays
nothing while it runs: its caller and watchers get the whole answer at the end.

``run_on_layer`` is how worker threads reach the Channels layer (the events
stream still travels there).
"""

import asyncio
import threading
import time

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from apps.inference import feed

SEND_TIMEOUT_SECONDS = 5


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

    ``async_to_sync`` would start a fresh event loop per call and, with the Redis
    layer, a fresh connection pool each time, so for Redis one long-lived loop
    thread per process does all sends. The in-memory layer needs the ASGI
    server's loop, which ``async_to_sync`` reaches from threads asgiref started."""
    if isinstance(get_channel_layer(), InMemoryChannelLayer):
        async_to_sync(coroutine_function)(*args)
        return
    future = asyncio.run_coroutine_threadsafe(coroutine_function(*args), _relay_loop())
    future.result(timeout=SEND_TIMEOUT_SECONDS)


class DeltaRelay:
    """Collects a run's deltas and sends them in coalesced batches, in order."""

    def __init__(self, run_id: int, reply: feed.Reply | None = None):
        self.run_id = run_id
        self.reply = reply
        self.live = reply is None or reply.deltas
        self.interval = settings.INFERENCE_RELAY_INTERVAL_MS / 1000
        self.pending: list[str] = []
        self.sent_text = ""
        self.last_sent = 0.0
        self.sent_any = False

    def push(self, delta: str) -> None:
        if not self.live:
            return
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
        message = {"type": "run.delta", "run_id": self.run_id, "delta": text, "offset": offset}
        feed.publish(self.run_id, message, reply=self.reply, partial=self.sent_text)
        self.last_sent = now or time.monotonic()
        self.sent_any = True

    def forget(self) -> None:
        if self.sent_any:
            feed.forget(self.run_id)
