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


def role_in(user, team: Team) -> str | None:
    """The user's role in the team, or None for a non-member (staff included)."""
    if user is None or not user.is_authenticated or not user.is_active:
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
    role = role_in(user, team)
    return role is not None and action in ROLE_ACTIONS[role]


def require(user, team: Team, action: Action) -> None:
    if not can(user, team, action):
        raise PermissionDenied(f"Your role in {team.name} does not allow this ({action}).")


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
