"""Puts the current team, the user's role and the switcher's list into every template."""

from apps.teams.permissions import ROLE_ACTIONS, Action
from apps.teams.selectors import teams_for_user


def current_team(request):
    team = getattr(request, "team", None)
    role = getattr(request, "team_role", None)
    allowed = ROLE_ACTIONS.get(role, frozenset())
    return {
        "team": team,
        "team_role": role,
        "team_can": {action.value: action in allowed for action in Action},
        "my_teams": teams_for_user(request.user) if hasattr(request, "user") else [],
    }
