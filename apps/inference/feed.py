"""How a run's text and end travel from the worker to whoever waits for them.

Two audiences, one publish per message:

* **The caller** (a gateway request): the worker is told, in the task, which
  web process waits (its *reply channel*) and whether the caller wants
  deltas. Each web process listens on one reply channel of its own and hands
  every message to the request waiting for that run id, so a request costs no
  subscription, group or snapshot read; a non-streamed caller gets only the
  end. A message that arrives before its request asked for it (the worker can
  answer before the view is back from creating the run) is kept for a minute.
* **Watchers** (the run page, the playground, the SSE endpoint): they
  subscribe to the run's own channel while they watch, then read the snapshot
  (the text so far, or the finished row), so they miss nothing in between;
  offsets let them drop what they got twice.

With Redis this is Redis pub/sub: the worker sends the partial text, the
watchers' message and the caller's message in one pipelined round trip, and a
web process holds one subscriber connection for all its requests. Without
Redis (the embedded default, where runs execute in the web process) the same
hub is fed in-process. A lost message (Redis restarted mid-run) costs a wait,
not an answer: followers re-read the row when nothing arrives for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder

from apps.core import shared_redis

logger = logging.getLogger(__name__)
PARTIAL_TTL_SECONDS = 3600
EARLY_KEEP_SECONDS = 60.0
CONFIRM_SECONDS = 2.0


@dataclass(frozen=True)
class Reply:
    """Where the worker sends a run's messages for its caller (the task carries it)."""

    channel: str
    deltas: bool = True

    def as_task_args(self) -> list:
        return [self.channel, self.deltas]


def _prefix() -> str:
    return f"{getattr(settings, 'CACHE_KEY_PREFIX', '') or 'portal'}:feed:"


def run_channel(run_id: int) -> str:
    return f"{_prefix()}run:{run_id}"


def _partial_key(run_id: int) -> str:
    return f"{_prefix()}partial:{run_id}"


def _encode(message: dict) -> str:
    return json.dumps(message, cls=DjangoJSONEncoder, separators=(",", ":"))


# --- the worker's side ---------------------------------------------------------


def _redis():
    """The process's shared client; None without Redis (the embedded default)."""
    return shared_redis.client() if settings.REDIS_URL else None


def publish(run_id: int, message: dict, *, reply: Reply | None, partial: str | None = None) -> None:
    """Send ``message`` to the run's watchers and (when it wants this kind) its caller,
    storing ``partial`` (the whole text so far) first for watchers who join later.
    Failures are logged, not raised: a viewer missing a token must not fail the run."""
    to_caller = reply is not None and (reply.deltas or message.get("type") == "run.done")
    try:
        client = _redis()
        if client is None:
            if partial is not None:
                cache.set(_partial_key(run_id), partial, PARTIAL_TTL_SECONDS)
            plain = json.loads(_encode(message))  # the same shape the Redis path delivers
            _local_publish(run_channel(run_id), plain)
            if to_caller:
                _local_publish(reply.channel, plain)
            return
        data = _encode(message)
        pipe = client.pipeline(transaction=False)
        if partial is not None:
            pipe.set(_partial_key(run_id), partial, ex=PARTIAL_TTL_SECONDS)
        pipe.publish(run_channel(run_id), data)
        if to_caller:
            pipe.publish(reply.channel, data)
        pipe.execute()
    except Exception:
        logger.warning("could not relay run %s", run_id, exc_info=True)


def partial_output(run_id: int) -> str:
    """What a running run has streamed so far, for watchers who join late."""
    client = _redis()
    if client is None:
        return cache.get(_partial_key(run_id)) or ""
    value = client.get(_partial_key(run_id))
    return value.decode() if value else ""


def forget(run_id: int) -> None:
    """The stored output is the truth once the run is written."""
    client = _redis()
    if client is None:
        cache.delete(_partial_key(run_id))
    else:
        client.delete(_partial_key(run_id))


# --- the web process's side ----------------------------------------------------


class Hub:
    """One per event loop: the reply channel, the requests waiting on it, and the
    run channels watched from this process, each with its queues."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.channel = f"{_prefix()}reply:{uuid.uuid4().hex}"
        self.waiting: dict[int, asyncio.Queue] = {}
        self.early: dict[int, tuple[float, list[dict]]] = {}
        self.watchers: dict[str, set[asyncio.Queue]] = defaultdict(set)
        self.ready = asyncio.Event()
        self._pubsub = None
        self._reader: asyncio.Task | None = None
        self._confirmations: dict[str, asyncio.Future] = {}

    # reply channel
    def expect(self, run_id: int) -> asyncio.Queue:
        """The queue this process's reply channel fills for ``run_id``, with what came early."""
        queue: asyncio.Queue = asyncio.Queue()
        for message in self.early.pop(run_id, (0.0, []))[1]:
            queue.put_nowait(message)
        self.waiting[run_id] = queue
        return queue

    def done_with(self, run_id: int) -> None:
        self.waiting.pop(run_id, None)
        self.early.pop(run_id, None)

    # run channels
    async def watch(self, run_id: int) -> asyncio.Queue:
        """A queue of the run's messages, subscribed (Redis confirmed it) when this returns,
        so a snapshot read afterwards misses nothing."""
        queue: asyncio.Queue = asyncio.Queue()
        channel = run_channel(run_id)
        first = not self.watchers[channel]
        self.watchers[channel].add(queue)
        if first and self._pubsub is not None:
            await self._subscribe(self._pubsub, channel)
        return queue

    async def _subscribe(self, pubsub, *channels: str) -> None:
        waits = []
        for channel in channels:
            future = self.loop.create_future()
            self._confirmations[channel] = future
            waits.append(future)
        await pubsub.subscribe(*channels)
        try:  # a Redis that doesn't answer must not hang a page: followers re-read rows
            await asyncio.wait_for(asyncio.gather(*waits), CONFIRM_SECONDS)
        except TimeoutError:
            logger.warning("run feed: no subscribe confirmation from Redis")
        finally:
            for channel in channels:
                self._confirmations.pop(channel, None)

    async def unwatch(self, run_id: int, queue: asyncio.Queue) -> None:
        channel = run_channel(run_id)
        queues = self.watchers.get(channel)
        if queues is None:
            return
        queues.discard(queue)
        if not queues:
            del self.watchers[channel]
            if self._pubsub is not None:
                with contextlib.suppress(Exception):
                    await self._pubsub.unsubscribe(channel)

    def deliver(self, channel: str, message: dict) -> None:
        if channel == self.channel:
            run_id = message.get("run_id")
            queue = self.waiting.get(run_id)
            if queue is not None:
                queue.put_nowait(message)
                return
            now = time.monotonic()
            for stale in [k for k, (t, _) in self.early.items() if now - t > EARLY_KEEP_SECONDS]:
                del self.early[stale]
            self.early.setdefault(run_id, (now, []))[1].append(message)
            return
        for queue in self.watchers.get(channel, ()):
            queue.put_nowait(message)

    # Redis
    async def start(self) -> None:
        if not settings.REDIS_URL:
            self.ready.set()
            return
        self._reader = self.loop.create_task(self._read_forever())
        await self.ready.wait()

    def _confirmed(self, channel: str) -> None:
        future = self._confirmations.get(channel)
        if future is not None and not future.done():
            future.set_result(None)

    async def _read_forever(self) -> None:
        import redis.asyncio as aredis

        while True:
            client = aredis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=5, health_check_interval=15
            )
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel, *self.watchers.keys())
                self._pubsub = pubsub
                while True:
                    item = await pubsub.get_message(timeout=30.0)
                    if item is None:
                        continue
                    channel = item["channel"].decode()
                    if item["type"] == "message":
                        self.deliver(channel, json.loads(item["data"]))
                    elif item["type"] == "subscribe":
                        self._confirmed(channel)
                        if channel == self.channel:
                            self.ready.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis went away: messages meanwhile are lost; followers re-read rows.
                logger.warning("run feed lost Redis; reconnecting", exc_info=True)
                self._pubsub = None
                self.ready.set()  # nobody waits for a Redis that is down
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}
_hubs_lock = threading.Lock()


async def hub() -> Hub:
    """This loop's hub, started (subscribed) on first use."""
    loop = asyncio.get_running_loop()
    with _hubs_lock:
        for stale in [lp for lp in _hubs if lp.is_closed()]:
            del _hubs[stale]
        found = _hubs.get(loop)
        fresh = found is None
        if fresh:
            found = _hubs[loop] = Hub(loop)
    if fresh:
        await found.start()
    else:
        await found.ready.wait()
    return found


def _local_publish(channel: str, message: dict) -> None:
    """Without Redis: hand the message to every hub of this process, on its own loop."""
    with _hubs_lock:
        hubs = [h for h in _hubs.values() if not h.loop.is_closed()]
    for target in hubs:
        with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
            target.loop.call_soon_threadsafe(target.deliver, channel, message)
