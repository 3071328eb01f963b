"""Login throttling: too many failed sign-ins lock the account and the client address.

Counters live in the cache (Redis when configured), so every web process sees
the same count. The e-mail is hashed before it becomes a cache key so
addresses never appear in Redis in clear.
"""

import hashlib

from django.conf import settings
from django.core.cache import cache

_PREFIX = "login-fail"


def _keys(email: str, ip: str) -> list[str]:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return [f"{_PREFIX}:email:{digest}", f"{_PREFIX}:ip:{ip}"]


def _limits() -> tuple[int, int]:
    return settings.LOGIN_THROTTLE_MAX_FAILURES, settings.LOGIN_THROTTLE_WINDOW_SECONDS


def login_blocked(*, email: str, ip: str) -> bool:
    """True when either the account or the address has used up its failures."""
    max_failures, _ = _limits()
    counts = cache.get_many(_keys(email, ip))
    return any(count >= max_failures for count in counts.values())


def login_failure_record(*, email: str, ip: str) -> None:
    _, window = _limits()
    for key in _keys(email, ip):
        # add() is a no-op when the key exists, so the window starts at the first failure.
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=window)


def login_success_record(*, email: str) -> None:
    cache.delete(_keys(email, "-")[0])


def lockout_minutes() -> int:
    return max(1, settings.LOGIN_THROTTLE_WINDOW_SECONDS // 60)
