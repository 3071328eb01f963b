"""Each process's copy of the keys it checked, for at most a second, and the broadcast
that drops one everywhere at once.

Why in the process: every gateway request checks its key. Kept in Redis, the
lookup was a round trip and the unpickling of a key and its team on every
request, about a tenth of the web process's CPU per call; kept here, a warm
check touches nothing outside the process.

Why it is never stale for long: an entry lives :data:`TTL_SECONDS` (one
second), so a change made behind the services' back (a shell, the database)
is seen by every process within a second, as before. A change made through
the services (:func:`apps.keys.auth.forget`: revoke, rotate, expire, create)
is also published on a Redis channel that every process with entries listens
to from a thread of its own; the entry is dropped there as soon as the message
arrives, so a revoked key is refused at once by every web process, not a
second later. A listener that lost Redis drops every entry when it is back,
since what it missed meanwhile is unknown. Without Redis (the embedded
default, one process) forgetting is local.

Entries are shared by the threads of the process: callers get a copy of the
key and its team, so nothing a request sets on them leaks into another's.
"""

import logging
import os
import threading
import time

import redis
from django.conf import settings

from apps.core import shared_redis
from apps.core.rows import clone

logger = logging.getLogger(__name__)

TTL_SECONDS = 1.0
MAX_ENTRIES = 10_000  # public ids are the caller's: made-up ones must not grow memory
RECONNECT_SECONDS = 1.0

# public id -> (monotonic expiry, the key with its team, or None for an unknown id)
_entries: dict[str, tuple[float, object]] = {}


def _channel() -> str:
    return f"{getattr(settings, 'CACHE_KEY_PREFIX', '') or 'portal'}:keys:forget"


def _copy(key):
    if key is None:
        return None
    copy = clone(key)
    copy.team = clone(key.team)
    return copy


def get(public_id: str):
    """``(True, key or None)`` for a live entry (a copy of the key), else ``(False, None)``."""
    entry = _entries.get(public_id)
    if entry is None or entry[0] <= time.monotonic():
        return False, None
    return True, _copy(entry[1])


def put(public_id: str, key, read_at: float):
    """Keep what a lookup that started at ``read_at`` (monotonic) found, and return a copy
    of it; listening first, so a change published after the read is not missed."""
    _listener.ensure_started()
    if len(_entries) >= MAX_ENTRIES:
        _entries.clear()
    _entries[public_id] = (read_at + TTL_SECONDS, key)
    return _copy(key)


def note_use(public_id: str, at) -> None:
    """The key was just marked used: so the kept entry knows (no second mark this minute)."""
    entry = _entries.get(public_id)
    if entry is not None and entry[1] is not None:
        entry[1].last_used_at = at


def forget(public_id: str) -> None:
    """Drop the entry here and, through Redis, in every other process."""
    _entries.pop(public_id, None)
    if not settings.REDIS_URL:
        return
    try:
        shared_redis.client().publish(_channel(), public_id)
    except redis.RedisError:
        logger.warning("could not broadcast a key change; other processes see it within a second")


def clear() -> None:
    """Drop every entry of this process (tests start from nothing)."""
    _entries.clear()


class _Listener:
    """One thread per process, subscribed to the forget channel."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pid: int | None = None
        self.subscribed = threading.Event()

    def ensure_started(self) -> None:
        if self.pid == os.getpid() or not settings.REDIS_URL:
            return
        with self.lock:
            if self.pid == os.getpid():  # a forked child starts its own
                return
            self.pid = os.getpid()
            self.subscribed.clear()
            threading.Thread(target=self._run, name="key-cache-listener", daemon=True).start()
        self.subscribed.wait(2.0)  # a Redis that doesn't answer costs a second of staleness

    def _run(self) -> None:
        channel = _channel()
        while True:
            try:
                client = redis.Redis.from_url(
                    settings.REDIS_URL, socket_connect_timeout=5, health_check_interval=30
                )
                pubsub = client.pubsub()
                pubsub.subscribe(channel)
                for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        _entries.clear()  # whatever was missed while not listening
                        self.subscribed.set()
                    elif message["type"] == "message":
                        _entries.pop(message["data"].decode(), None)
            except Exception:
                logger.warning("key cache listener lost Redis; reconnecting", exc_info=True)
                time.sleep(RECONNECT_SECONDS)


_listener = _Listener()
