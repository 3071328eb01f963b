"""Per-key request rate: a fixed one-minute window counted in the shared cache.

``cache.incr`` is one atomic INCR in Redis, so concurrent requests in every
process share one exact count; the window's key expires on its own. Budgets
and token limits belong to the usage and quota work and build on this.
"""

import time

from django.core.cache import cache

from apps.core.errors import RateLimited
from apps.keys.models import ApiKey

WINDOW_SECONDS = 60


def take_request(key: ApiKey, now: float | None = None) -> int | None:
    """Count one request; None when allowed, else seconds until the window resets."""
    limit = key.requests_per_minute
    if not limit:
        return None
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    counter = f"keys:rpm:{key.pk}:{window}"
    cache.add(counter, 0, WINDOW_SECONDS + 5)
    try:
        count = cache.incr(counter)
    except ValueError:  # the window's key expired between add and incr
        cache.add(counter, 0, WINDOW_SECONDS + 5)
        count = cache.incr(counter)
    if count <= limit:
        return None
    return max(1, int((window + 1) * WINDOW_SECONDS - now + 0.999))


def require_request(key: ApiKey) -> None:
    """Count one request or raise :class:`RateLimited` with the seconds to wait."""
    retry_after = take_request(key)
    if retry_after is not None:
        raise RateLimited(
            f"Rate limit reached for this API key: {key.requests_per_minute} requests per "
            f"minute. Try again in {retry_after} s.",
            retry_after=retry_after,
        )
