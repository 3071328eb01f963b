"""Per-key request rate, checked at the door of the REST API and the gateway.

The count lives with the other quota counters (``apps.quotas``): one atomic
Redis script over a sliding 60 s log, so concurrent requests in every process
share one exact count. The limit is the lower of the key's own
``requests_per_minute`` and its quota's.
"""

from apps.keys.models import ApiKey


def require_request(key: ApiKey) -> None:
    """Count one request or raise :class:`~apps.core.errors.RateLimited` (429 with
    ``Retry-After`` and the limit in the body)."""
    from apps.quotas.enforcement import require_request as count_request

    count_request(key)
