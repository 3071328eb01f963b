"""API keys over the REST API: list, issue, rotate, revoke and the key policy.

Managing keys needs the owner or admin role, or a key with the ``admin``
scope (which can't issue keys stronger than itself). The raw key appears only
in the answer to create and rotate.
"""

from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Status

from apps.assistants.selectors import assistant_for_team
from apps.core.api_errors import BODY_ERRORS, with_errors
from apps.core.api_pagination import Rows, paginated
from apps.keys import selectors, services
from apps.keys.models import ApiKey
from apps.keys.schemas import (
    KEYS_ORDER,
    KeyIn,
    KeyListQuery,
    KeyOut,
    NewKeyOut,
    PolicyIn,
    PolicyOut,
    RotateIn,
)
from apps.teams.permissions import Action
from apps.teams.selectors import team_for_request

router = Router(tags=["keys"])


def key_out(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.public_id,
        name=key.name,
        prefix=key.prefix,
        scopes=key.scopes,
        status=key.status,
        assistant=key.assistant.slug if key.assistant else None,
        allowed_models=key.allowed_models,
        requests_per_minute=key.requests_per_minute,
        tokens_per_minute=key.tokens_per_minute,
        expires_at=key.expires_at,
        created_by=key.created_by.email if key.created_by else None,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
        previous_secret_valid_until=key.previous_valid_until,
    )


def _with_status(keys, status: str | None):
    """Filter by the status ``ApiKey.status`` works out, in the database."""
    if status is None:
        return keys
    revoked = Q(revoked_at__isnull=False)
    expired = Q(expires_at__isnull=False, expires_at__lte=timezone.now())
    if status == "revoked":
        return keys.filter(revoked)
    if status == "expired":
        return keys.filter(expired & ~revoked)
    return keys.exclude(revoked | expired)


@router.get(
    "/{team_slug}/keys",
    response=with_errors(list[KeyOut]),
    operation_id="keys_list",
    summary="API keys of a team (never their secrets)",
)
@paginated
def keys_list(request: HttpRequest, team_slug: str, filters: Query[KeyListQuery]):
    """Needs the owner or admin role (or an ``admin`` key). Only the public prefix of
    each key is shown; the secret was in the answer that issued it."""
    team = team_for_request(request, team_slug, Action.MANAGE_KEYS)
    keys = _with_status(selectors.keys_of(team), filters.status)
    return Rows(KEYS_ORDER.apply(keys, filters.order), each=key_out)


@router.post(
    "/{team_slug}/keys",
    response=with_errors({201: NewKeyOut}, *BODY_ERRORS),
    operation_id="keys_create",
    summary="Issue an API key; the secret is in this answer only",
)
def keys_create(request: HttpRequest, team_slug: str, payload: KeyIn):
    """Store ``secret`` now: it is never shown again. A key with the ``admin`` scope
    can't issue one with scopes it lacks itself (403)."""
    team = team_for_request(request, team_slug, Action.MANAGE_KEYS)
    data = payload.dict()
    slug = data.pop("assistant")
    assistant = assistant_for_team(team, slug) if slug else None
    key, raw = services.key_create(team=team, actor=request.user, assistant=assistant, **data)
    return Status(201, NewKeyOut(key=key_out(key), secret=raw))


@router.get(
    "/{team_slug}/keys/{key_id}",
    response=with_errors(KeyOut),
    operation_id="keys_get",
    summary="One API key",
)
def keys_get(request: HttpRequest, team_slug: str, key_id: str):
    """By its public id (the part of the prefix after ``aip_``); never its secret."""
    team = team_for_request(request, team_slug, Action.MANAGE_KEYS)
    return key_out(selectors.key_in_team(team, key_id))


@router.post(
    "/{team_slug}/keys/{key_id}/rotate",
    response=with_errors(NewKeyOut, *BODY_ERRORS, 409),
    operation_id="keys_rotate",
    summary="New secret; the old one works for the grace period, then stops",
)
def keys_rotate(request: HttpRequest, team_slug: str, key_id: str, payload: RotateIn):
    """The id and prefix stay; only the secret changes. A revoked or expired key
    can't be rotated (409)."""
    team = team_for_request(request, team_slug, Action.MANAGE_KEYS)
    key, raw = services.key_rotate(
        key=selectors.key_in_team(team, key_id),
        actor=request.user,
        grace_seconds=payload.grace_seconds,
    )
    return NewKeyOut(key=key_out(key), secret=raw)


@router.post(
    "/{team_slug}/keys/{key_id}/revoke",
    response=with_errors(KeyOut, 409),
    operation_id="keys_revoke",
    summary="Revoke a key; refused everywhere within a second",
)
def keys_revoke(request: HttpRequest, team_slug: str, key_id: str):
    """For good: a revoked key can't be restored. Revoking twice is 409."""
    team = team_for_request(request, team_slug, Action.MANAGE_KEYS)
    key = services.key_revoke(key=selectors.key_in_team(team, key_id), actor=request.user)
    return key_out(key)


@router.get(
    "/{team_slug}/key-policy",
    response=with_errors(PolicyOut),
    operation_id="key_policy_get",
    summary="The team's key policy",
)
def key_policy_get(request: HttpRequest, team_slug: str):
    """The rules new keys of this team must follow."""
    team = team_for_request(request, team_slug, Action.MANAGE_KEYS)
    policy = services.policy_for(team)
    return PolicyOut(max_lifetime_days=policy.max_lifetime_days if policy else None)


@router.put(
    "/{team_slug}/key-policy",
    response=with_errors(PolicyOut, *BODY_ERRORS),
    operation_id="key_policy_set",
    summary="Set the longest lifetime new keys may have",
)
def key_policy_set(request: HttpRequest, team_slug: str, payload: PolicyIn):
    """Applies to keys issued from now on; existing keys keep their expiry."""
    team = team_for_request(request, team_slug, Action.MANAGE_KEYS)
    policy = services.policy_set(
        team=team, actor=request.user, max_lifetime_days=payload.max_lifetime_days
    )
    return PolicyOut(max_lifetime_days=policy.max_lifetime_days)
