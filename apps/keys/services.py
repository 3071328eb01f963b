"""Writes for API keys and the team's key policy.

Pages, the admin and (later) the API come through here. The raw key exists
only in the return value of :func:`key_create` and :func:`key_rotate`; the
database holds its public id and an HMAC of the secret.
"""

import logging
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import Conflict, NotFound, ServiceError
from apps.events.outbox import emit
from apps.keys import auth, tokens
from apps.keys.models import ApiKey, KeyPolicy, KeyStatus, Scope
from apps.teams.models import Team
from apps.teams.permissions import Action, api_key_of, require, user_of

logger = logging.getLogger(__name__)

MAX_GRACE_SECONDS = 7 * 24 * 3600
MAX_POLICY_DAYS = 3650


def _require_key_admin(actor, team: Team) -> None:
    """Team owners and admins manage their keys; staff (in the Django admin) manage all."""
    if getattr(actor, "is_staff", False) and getattr(actor, "is_active", False):
        return
    require(actor, team, Action.MANAGE_KEYS)


def _user_or_none(actor):
    return user_of(actor)


def _check_no_escalation(actor, scopes: list[str]) -> None:
    """A key with the admin scope may issue keys, but none stronger than itself."""
    key = api_key_of(actor)
    if key is not None and not set(scopes) <= set(key.scopes):
        raise PermissionDenied("An API key can't issue a key with scopes it does not have.")


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ServiceError("A key needs a name of at most 100 characters.", param="name")
    return name


def clean_scopes(scopes) -> list[str]:
    if isinstance(scopes, str) or not isinstance(scopes, list | tuple | set | frozenset):
        raise ServiceError("scopes must be a list.", param="scopes")
    valid = [s.value for s in Scope]
    unknown = sorted({str(s) for s in scopes} - set(valid))
    if unknown:
        raise ServiceError(
            f"Unknown scope(s): {', '.join(unknown)}. Use {', '.join(valid)}.", param="scopes"
        )
    if not scopes:
        raise ServiceError("A key needs at least one scope.", param="scopes")
    return [s for s in valid if s in scopes]


def _clean_models(models) -> list[str]:
    if models is None:
        return []
    if isinstance(models, str):
        models = models.replace("\n", ",").split(",")
    if not isinstance(models, list | tuple) or not all(isinstance(m, str) for m in models):
        raise ServiceError("allowed_models must be a list of model ids.", param="allowed_models")
    cleaned = sorted({m.strip() for m in models if m.strip()})
    if any(len(m) > 200 for m in cleaned) or len(cleaned) > 100:
        raise ServiceError(
            "At most 100 model ids of at most 200 characters.", param="allowed_models"
        )
    return cleaned


def _clean_limit(value, param: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ServiceError(f"{param} must be a whole number of at least 1.", param=param)
    return value


def _check_expiry(team: Team, expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise ServiceError("The expiry must be in the future.", param="expires_at")
    policy = KeyPolicy.objects.filter(team=team).first()
    if policy is None or policy.max_lifetime_days is None:
        return
    days = policy.max_lifetime_days
    if expires_at is None:
        raise ServiceError(
            f"This team's keys must expire within {days} days; set an expiry.",
            param="expires_at",
        )
    if expires_at > now + timedelta(days=days):
        raise ServiceError(f"This team's keys may live at most {days} days.", param="expires_at")


@transaction.atomic
def key_create(
    *,
    team: Team,
    actor,
    name: str,
    scopes,
    expires_at: datetime | None = None,
    assistant=None,
    allowed_models=None,
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key. Returns it with the raw key, which is never available again."""
    _require_key_admin(actor, team)
    now = timezone.now()
    key = ApiKey(
        team=team,
        name=_clean_name(name),
        scopes=clean_scopes(scopes),
        allowed_models=_clean_models(allowed_models),
        requests_per_minute=_clean_limit(requests_per_minute, "requests_per_minute"),
        tokens_per_minute=_clean_limit(tokens_per_minute, "tokens_per_minute"),
        expires_at=expires_at,
        created_by=_user_or_none(actor),
    )
    _check_no_escalation(actor, key.scopes)
    _check_expiry(team, expires_at, now)
    if assistant is not None:
        if assistant.team_id != team.pk:
            raise NotFound("No such assistant in this team.", param="assistant")
        key.assistant = assistant
    for _attempt in range(3):
        public_id, secret, raw = tokens.generate()
        key.public_id, key.secret_hash = public_id, tokens.hash_secret(secret)
        try:
            with transaction.atomic():
                key.save()
        except IntegrityError:  # a public id collision: astronomically rare
            key.pk = None
            continue
        break
    else:  # pragma: no cover
        raise Conflict("Could not allocate a key id; try again.")
    auth.forget(key.public_id)
    key_event(key, "key.created", actor, scopes=key.scopes, expires_at=key.expires_at)
    logger.info("api key created", extra={"key_public_id": key.public_id, "team": team.slug})
    return key, raw


def key_event(key: ApiKey, type_: str, actor, **extra) -> None:
    data = {"key_id": key.pk, "prefix": key.prefix, "name": key.name, **extra}
    emit(
        key.team,
        type_,
        subject=f"key/{key.public_id}",
        data=data,
        actor=actor,
        key_id=key.pk,
        assistant_id=key.assistant_id,
    )


def _locked(key: ApiKey) -> ApiKey:
    return ApiKey.objects.select_for_update().select_related("team").get(pk=key.pk)


def _forget_now_and_on_commit(public_id: str) -> None:
    auth.forget(public_id)
    transaction.on_commit(lambda: auth.forget(public_id))


@transaction.atomic
def key_revoke(*, key: ApiKey, actor) -> ApiKey:
    _require_key_admin(actor, key.team)
    locked = _locked(key)
    if locked.revoked_at is not None:
        raise Conflict("This key is already revoked.")
    locked.revoked_at = timezone.now()
    locked.revoked_by = _user_or_none(actor)
    locked.save(update_fields=["revoked_at", "revoked_by"])
    _forget_now_and_on_commit(locked.public_id)
    key_event(locked, "key.revoked", actor)
    logger.info("api key revoked", extra={"key_public_id": locked.public_id})
    return locked


@transaction.atomic
def key_rotate(*, key: ApiKey, actor, grace_seconds: int) -> tuple[ApiKey, str]:
    """A new secret for the same key; the old one keeps working for ``grace_seconds``."""
    _require_key_admin(actor, key.team)
    if (
        isinstance(grace_seconds, bool)
        or not isinstance(grace_seconds, int)
        or not 0 <= grace_seconds <= MAX_GRACE_SECONDS
    ):
        raise ServiceError("The grace period must be 0 to 7 days.", param="grace_seconds")
    locked = _locked(key)
    if locked.status != KeyStatus.ACTIVE:
        raise Conflict(f"A {locked.status} key can't be rotated.")
    secret = tokens.generate_secret()
    if grace_seconds:
        locked.previous_secret_hash = locked.secret_hash
        locked.previous_valid_until = timezone.now() + timedelta(seconds=grace_seconds)
    else:
        locked.previous_secret_hash = ""
        locked.previous_valid_until = None
    locked.secret_hash = tokens.hash_secret(secret)
    locked.save(update_fields=["secret_hash", "previous_secret_hash", "previous_valid_until"])
    _forget_now_and_on_commit(locked.public_id)
    key_event(locked, "key.rotated", actor, grace_seconds=grace_seconds)
    logger.info("api key rotated", extra={"key_public_id": locked.public_id})
    return locked, tokens.format_key(locked.public_id, secret)


@transaction.atomic
def policy_set(*, team: Team, actor, max_lifetime_days: int | None) -> KeyPolicy:
    """Set the team's maximum key lifetime (None: no limit). Existing keys are unchanged."""
    _require_key_admin(actor, team)
    if max_lifetime_days is not None and (
        isinstance(max_lifetime_days, bool)
        or not isinstance(max_lifetime_days, int)
        or not 1 <= max_lifetime_days <= MAX_POLICY_DAYS
    ):
        raise ServiceError(
            f"The maximum lifetime must be 1 to {MAX_POLICY_DAYS} days.",
            param="max_lifetime_days",
        )
    policy, _ = KeyPolicy.objects.update_or_create(
        team=team, defaults={"max_lifetime_days": max_lifetime_days}
    )
    return policy


def policy_for(team: Team) -> KeyPolicy | None:
    return KeyPolicy.objects.filter(team=team).first()
