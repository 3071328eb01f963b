"""Routing versions: how every process learns that a team's routing changed.

The write services (assistants, prompts, backends) call :func:`invalidate`;
the gateway's per-process routing cache (:mod:`apps.gateway.routing`) reads
:func:`stamp` per request and reloads an entry whose stamp differs. It lives
in core because the services that change routing sit below the gateway: they
must not import it. Versions are random tokens in the Django cache (Redis in
the full stack, shared by every process): the team's, and a global one for
the global backends that serve every team.
"""

import logging
import secrets

from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)
GLOBAL_VERSION_KEY = "gateway-routing:global"


def _version_key(team_id: int) -> str:
    return f"gateway-routing:team:{team_id}"


def invalidate(*, team_id: int | None) -> None:
    """Routing of ``team_id`` (None: every team, for a global backend) changes when the
    current transaction commits; every process reloads it from its next request on.

    Call it inside the write's transaction (or in autocommit, where it acts at once);
    it does nothing if the transaction rolls back."""
    key = GLOBAL_VERSION_KEY if team_id is None else _version_key(team_id)
    transaction.on_commit(lambda: _bump(key))


def _bump(key: str) -> None:
    try:
        cache.set(key, secrets.token_hex(8), timeout=None)
    except Exception:  # the write has committed: don't fail it; the age limit catches up
        logger.exception("gateway routing: version not bumped", extra={"key": key})


def stamp(team_id: int) -> tuple[str, str] | None:
    """The team's and the global routing version, in one round trip when both exist;
    None when the cache can't say (then nothing is served from or kept in memory)."""
    keys = (_version_key(team_id), GLOBAL_VERSION_KEY)
    try:
        found = cache.get_many(keys)
        if len(found) < len(keys):
            for key in keys:
                if key not in found:
                    cache.add(key, secrets.token_hex(8), timeout=None)
            found = cache.get_many(keys)
    except Exception:
        logger.warning("gateway routing: versions unavailable", exc_info=True)
        return None
    stamp = (found.get(keys[0]), found.get(keys[1]))
    return None if None in stamp else stamp
