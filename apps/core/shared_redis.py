"""The process's one synchronous Redis client, for code that talks to Redis directly.

Quota counters (``apps.quotas.store``) and the run feed (``apps.inference.feed``)
share it: redis-py's pool is thread-safe, so one client serves every thread of a
worker or web process, and connections are reused instead of opened per call.
"""

import threading

import redis
from django.conf import settings

_lock = threading.Lock()
_client: redis.Redis | None = None


def client() -> redis.Redis:
    global _client
    with _lock:
        if _client is None:
            _client = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2
            )
        return _client
