"""The one place that decides "may this user do X in team T".

Views, the REST API and WebSocket consumers all ask :func:`can` or
:func:`require`; none of them compares roles on its own.
"""

from enum import StrEnum

from django.core.exceptions import PermissionDenied

from apps.teams.models import Membership, Role, Team


class Action(StrEnum):
    VIEW = "view"  # read anything in the team
    USE = "use"  # chat with assistants, run prompts
    EDIT = "edit"  # create and change assistants, prompts, backends
    MANAGE_MEMBERS = "manage_members"  # invite, remove, change roles below owner
    MANAGE_KEYS = "manage_keys"  # issue, rotate, revoke API keys
    MANAGE_BACKENDS = "manage_backends"  # add inference backends and their credentials
    MANAGE_QUOTAS = "manage_quotas"
    MANAGE_OWNERS = "manage_owners"  # grant or take the owner role
    MANAGE_TEAM = "manage_team"  # rename, delete the team


_MEMBER_ACTIONS = {Action.VIEW, Action.USE, Action.EDIT}
_ADMIN_ACTIONS = _MEMBER_ACTIONS | {
    Action.MANAGE_MEMBERS,
    Action.MANAGE_KEYS,
    Action.MANAGE_BACKENDS,
    Action.MANAGE_QUOTAS,
}

ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.VIEW}),
    Role.MEMBER: frozenset(_MEMBER_ACTIONS),
    Role.ADMIN: frozenset(_ADMIN_ACTIONS),
    Role.OWNER: frozenset(Action),
}

ROLE_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def user_of(actor):
    """The user account behind an actor, for ``created_by``-like columns.

    None for an API key (see :func:`api_key_of`) and for anonymous callers.
    """
    if getattr(actor, "api_key", None) is not None:
        return None
    return actor if getattr(actor, "is_authenticated", False) else None


def api_key_of(actor):
    """The API key an actor stands for, or None for a signed-in user."""
    return getattr(actor, "api_key", None)


def role_in(user, team: Team) -> str | None:
    """The user's role in the team, or None for a non-member (staff and API keys included)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if api_key_of(user) is not None:
        return None
    cached = getattr(user, "_team_roles", None)
    if cached is None:
        cached = user._team_roles = {}
    if team.pk not in cached:
        cached[team.pk] = (
            Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()
        )
    return cached[team.pk]


def can(user, team: Team, action: Action) -> bool:
    """Whether ``user`` (a user, or an API key acting as one) may do ``action`` in ``team``.

    A key's scopes decide for it, and only in its own team.
    """
    key_allows = getattr(user, "key_allows", None)
    if key_allows is not None:
        return key_allows(team, action)
    role = role_in(user, team)
    return role is not None and action in ROLE_ACTIONS[role]


def require(user, team: Team, action: Action) -> None:
    if not can(user, team, action):
        if api_key_of(user) is not None:
            raise PermissionDenied(f"This API key's scopes do not allow this ({action}).")
        raise PermissionDenied(f"Your role in {team.name} does not allow this ({action}).")


def require_use_of(actor, *, assistant=None, model: str | None = None) -> None:
    """Refuse an API key that is bound to another assistant or not allowed this model.

    Users are limited by their role alone; this adds the key's own allow-list.
    """
    may_use = getattr(actor, "may_use", None)
    if may_use is not None:
        reason = may_use(assistant=assistant, model=model)
        if reason:
            raise PermissionDenied(reason)


def acting_role(actor, team: Team) -> str | None:
    """The role to judge member changes by: the user's own, or for an API key
    with the admin scope the admin role (keys never manage owners)."""
    if api_key_of(actor) is not None:
        return Role.ADMIN if can(actor, team, Action.MANAGE_MEMBERS) else None
    return role_in(actor, team)


def may_assign(actor_role: str, *, current_role: str | None, new_role: str) -> bool:
    """Whether someone with ``actor_role`` may move a member from ``current_role`` to ``new_role``.

    Owners may do anything. Admins manage members and viewers and may make
    admins, but may not touch owners or create them.
    """
    if actor_role == Role.OWNER:
        return True
    if Action.MANAGE_MEMBERS not in ROLE_ACTIONS.get(actor_role, frozenset()):
        return False
    return current_role != Role.OWNER and new_role != Role.OWNER


def forget_cached_roles(user) -> None:
    """Drop the per-request role cache after a membership change."""
    if hasattr(user, "_team_roles"):
        del user._team_roles
