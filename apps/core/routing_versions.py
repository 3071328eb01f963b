"""Routing versions: how every process learns that a team's routing changed.

The write services (assistants, prompts, backends) call :func:`invalidate`;
the gateway's per-process routing cache (:mod:`apps.gateway.routing`) reads
:func:`stamp` per request and reloads an entry whose stamp differs. It lives
in core because the services that change routing sit below the gateway: they
must not import it. Versions are random tokens in the Django cache (Redis in
the full stack, shared by every process): the team's, and a global one for
the global backends that serve every team.

With Redis they are plain strings read with one ``MGET`` on the process's shared
client (:mod:`apps.core.shared_redis`): every gateway request and every claim reads
them, and Django's cache API cost three times the round trip itself (243 against
80 us of CPU). Without Redis (the embedded default) the Django cache holds them.
"""

import logging
import secrets

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from apps.core import shared_redis

logger = logging.getLogger(__name__)
GLOBAL_VERSION_KEY = "gateway-routing:global"


def _version_key(team_id: int) -> str:
    return f"gateway-routing:team:{team_id}"


def _redis_key(key: str) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX') or 'portal'}:{key}"


def invalidate(*, team_id: int | None) -> None:
    """Routing of ``team_id`` (None: every team, for a global backend) changes when the
    current transaction commits; every process reloads it from its next request on.

    Call it inside the write's transaction (or in autocommit, where it acts at once);
    it does nothing if the transaction rolls back."""
    key = GLOBAL_VERSION_KEY if team_id is None else _version_key(team_id)
    transaction.on_commit(lambda: _bump(key))


def _bump(key: str) -> None:
    try:
        if settings.REDIS_URL:
            shared_redis.client().set(_redis_key(key), secrets.token_hex(8))
        else:
            cache.set(key, secrets.token_hex(8), timeout=None)
    except Exception:  # the write has committed: don't fail it; the age limit catches up
        logger.exception("gateway routing: version not bumped", extra={"key": key})


def stamp(team_id: int) -> tuple[str, str] | None:
    """The team's and the global routing version, in one round trip when both exist;
    None when the cache can't say (then nothing is served from or kept in memory)."""
    keys = (_version_key(team_id), GLOBAL_VERSION_KEY)
    try:
        found = _read(keys)
        if None in found:
            for key, value in zip(keys, found, strict=True):
                if value is None:
                    _add(key, secrets.token_hex(8))
            found = _read(keys)
    except Exception:
        logger.warning("gateway routing: versions unavailable", exc_info=True)
        return None
    return None if None in found else (found[0], found[1])


def _read(keys: tuple[str, str]) -> list[str | None]:
    if not settings.REDIS_URL:
        found = cache.get_many(keys)
        return [found.get(key) for key in keys]
    values = shared_redis.client().mget([_redis_key(key) for key in keys])
    return [value.decode() if value is not None else None for value in values]


def _add(key: str, value: str) -> None:
    """Set ``key`` unless another process did first (then both use the other's)."""
    if settings.REDIS_URL:
        shared_redis.client().set(_redis_key(key), value, nx=True)
    else:
        cache.add(key, value, timeout=None)
