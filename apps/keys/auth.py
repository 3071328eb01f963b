"""Who is calling with this API key, and what its scopes let it do.

:func:`authenticate` looks a key up by its public id in the process's own
entries (:mod:`apps.keys.key_cache`), which live one second, so a change made
anywhere wins within a second; the services' changes (:func:`forget`) drop the
entry in every process at once. The raw key is never logged; only the public
id is.
"""

import hmac
import logging
import time

from django.core.cache import cache
from django.utils import timezone

from apps.keys import key_cache, tokens
from apps.keys.models import ApiKey, KeyStatus, Scope
from apps.teams.permissions import Action

logger = logging.getLogger(__name__)

LAST_USED_EVERY_SECONDS = 60

SCOPE_ACTIONS: dict[str, frozenset[Action]] = {
    Scope.READ: frozenset({Action.VIEW}),
    Scope.CHAT: frozenset({Action.USE}),
    Scope.WRITE: frozenset({Action.EDIT}),
    Scope.ADMIN: frozenset(
        {
            Action.MANAGE_MEMBERS,
            Action.MANAGE_KEYS,
            Action.MANAGE_BACKENDS,
            Action.MANAGE_QUOTAS,
        }
    ),
}


def forget(public_id: str) -> None:
    """Drop the kept lookup in every process so the next request reads the database."""
    key_cache.forget(public_id)


def _lookup(public_id: str) -> ApiKey | None:
    found, key = key_cache.get(public_id)
    if found:
        return key
    read_at = time.monotonic()
    # the team comes along: every caller of a key needs it next
    key = ApiKey.objects.select_related("team").filter(public_id=public_id).first()
    return key_cache.put(public_id, key, read_at)


def _secret_matches(key: ApiKey, secret: str, now) -> bool:
    digest = tokens.hash_secret(secret)
    if hmac.compare_digest(digest, key.secret_hash):
        return True
    in_grace = (
        bool(key.previous_secret_hash)
        and key.previous_valid_until is not None
        and key.previous_valid_until > now
    )
    return in_grace and hmac.compare_digest(digest, key.previous_secret_hash)


def _touch(key: ApiKey, now) -> None:
    """Record use at most once a minute per key: ``cache.add`` is the guard.

    The kept key is at most a second old, so a recent ``last_used_at`` on it
    means nothing to do, without the guard's round trip to Redis.
    """
    recent = key.last_used_at and (now - key.last_used_at).total_seconds() < LAST_USED_EVERY_SECONDS
    if recent:
        return
    if cache.add(f"keys:apikey-used:{key.public_id}", 1, LAST_USED_EVERY_SECONDS):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        key_cache.note_use(key.public_id, now)


INVALID = "Incorrect API key provided."
REASONS = {
    KeyStatus.REVOKED: "This API key has been revoked.",
    KeyStatus.EXPIRED: "This API key has expired.",
}


def check(raw: str) -> tuple[ApiKey | None, str]:
    """``(key, "")`` for an active key, else ``(None, why)``.

    The reason names revocation or expiry only once the secret matched, so it
    tells a stranger nothing; a malformed, unknown, rotated-out key or one
    from another deployment (another HMAC secret) is simply incorrect.
    """
    parsed = tokens.parse(raw)
    if parsed is None:
        return None, INVALID
    public_id, secret = parsed
    key = _lookup(public_id)
    if key is None:
        return None, INVALID
    now = timezone.now()
    if not _secret_matches(key, secret, now):
        logger.info("api key rejected: wrong secret", extra={"key_public_id": public_id})
        return None, INVALID
    if key.status != KeyStatus.ACTIVE:
        logger.info("api key rejected: %s", key.status, extra={"key_public_id": public_id})
        return None, REASONS[key.status]
    _touch(key, now)
    return key, ""


def authenticate(raw: str) -> ApiKey | None:
    """The active key this raw string belongs to, or None (malformed, unknown,
    wrong secret, revoked, expired)."""
    return check(raw)[0]


def scope_allows(key: ApiKey, action: Action) -> bool:
    """Whether one of the key's scopes covers ``action``.

    The mapping (scopes do not imply each other; grant several for more):

    - ``read``  -> ``VIEW``
    - ``chat``  -> ``USE``
    - ``write`` -> ``EDIT``
    - ``admin`` -> ``MANAGE_MEMBERS``, ``MANAGE_KEYS``, ``MANAGE_BACKENDS``, ``MANAGE_QUOTAS``

    ``MANAGE_OWNERS`` and ``MANAGE_TEAM`` are never granted to a key. The key's
    creator's role is not consulted here; the REST API wiring decides that.
    """
    return any(action in SCOPE_ACTIONS.get(scope, frozenset()) for scope in key.scopes)
