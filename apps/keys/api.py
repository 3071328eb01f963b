"""API keys over the REST API: list, issue, rotate, revoke and the key policy.

Managing keys needs the owner or admin role, or a key with the ``admin``
scope (which can't issue keys stronger than itself). The raw key appears only
in the answer to create and rotate.
"""

from django.http import HttpRequest
from ninja import Router, Status

from apps.assistants.selectors import assistant_for_team
from apps.keys import selectors, services
from apps.keys.models import ApiKey
from apps.keys.schemas import KeyIn, KeyOut, NewKeyOut, PolicyIn, PolicyOut, RotateIn
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


@router.get(
    "/{team_slug}/keys",
    response=list[KeyOut],
    operation_id="keys_list",
    summary="API keys of a team (never their secrets)",
)
def keys_list(request: HttpRequest, team_slug: str):
    team = team_for_request(request, team_slug, Action.MANAGE_KEYS)
    return [key_out(k) for k in selectors.keys_of(team)]


@router.post(
    "/{team_slug}/keys",
    response={201: NewKeyOut},
    operation_id="keys_create",
    summary="Issue an API key; the secret is in this answer only",
)
def keys_create(request: HttpRequest, team_slug: str, payload: KeyIn):
    team = team_for_request(request, team_slug, Action.MANAGE_KEYS)
    data = payload.dict()
    slug = data.pop("assistant")
    assistant = assistant_for_team(team, slug) if slug else None
    key, raw = services.key_create(team=team, actor=request.user, assistant=assistant, **data)
    return Status(201, NewKeyOut(key=key_out(key), secret=raw))


@router.get(
    "/{team_slug}/keys/{key_id}", response=KeyOut, operation_id="keys_get", summary="One API key"
)
def keys_get(request: HttpRequest, team_slug: str, key_id: str):
    team = team_for_request(request, team_slug, Action.MANAGE_KEYS)
    return key_out(selectors.key_in_team(team, key_id))


@router.post(
    "/{team_slug}/keys/{key_id}/rotate",
    response=NewKeyOut,
    operation_id="keys_rotate",
    summary="New secret; the old one works for the grace period, then stops",
)
def keys_rotate(request: HttpRequest, team_slug: str, key_id: str, payload: RotateIn):
    team = team_for_request(request, team_slug, Action.MANAGE_KEYS)
    key, raw = services.key_rotate(
        key=selectors.key_in_team(team, key_id),
        actor=request.user,
        grace_seconds=payload.grace_seconds,
    )
    return NewKeyOut(key=key_out(key), secret=raw)


@router.post(
    "/{team_slug}/keys/{key_id}/revoke",
    response=KeyOut,
    operation_id="keys_revoke",
    summary="Revoke a key; refused everywhere within a second",
)
def keys_revoke(request: HttpRequest, team_slug: str, key_id: str):
    team = team_for_request(request, team_slug, Action.MANAGE_KEYS)
    key = services.key_revoke(key=selectors.key_in_team(team, key_id), actor=request.user)
    return key_out(key)


@router.get(
    "/{team_slug}/key-policy",
    response=PolicyOut,
    operation_id="key_policy_get",
    summary="The team's key policy",
)
def key_policy_get(request: HttpRequest, team_slug: str):
    team = team_for_request(request, team_slug, Action.MANAGE_KEYS)
    policy = services.policy_for(team)
    return PolicyOut(max_lifetime_days=policy.max_lifetime_days if policy else None)


@router.put(
    "/{team_slug}/key-policy",
    response=PolicyOut,
    operation_id="key_policy_set",
    summary="Set the longest lifetime new keys may have",
)
def key_policy_set(request: HttpRequest, team_slug: str, payload: PolicyIn):
    team = team_for_request(request, team_slug, Action.MANAGE_KEYS)
    policy = services.policy_set(
        team=team, actor=request.user, max_lifetime_days=payload.max_lifetime_days
    )
    return PolicyOut(max_lifetime_days=policy.max_lifetime_days)
