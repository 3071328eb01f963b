"""A Redis cache backend whose connection pool is shared by the whole process.

Django keeps one cache object per thread or async context, and each of its
Redis clients builds its own connection pool. Under ASGI every request runs in
a fresh context, so every request that touched the cache opened a new TCP
connection to Redis (measured by bench/gateway.py: one connection per request,
about 3 ms of web CPU each). Here all cache objects of a process with the same
servers and options share one client and so one pool; redis-py's pools are
thread-safe and reset themselves after a fork.
"""

import threading

from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


class SharedPoolRedisCache(RedisCache):
    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
