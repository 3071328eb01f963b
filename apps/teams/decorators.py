"""The decorator every team-scoped page goes through.

It resolves ``team_slug`` to a team the user belongs to (404 otherwise),
asks the permission helper for the action (403 otherwise) and remembers the
team as the user's current one for the switcher.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required

from apps.teams.permissions import Action, require, role_in
from apps.teams.selectors import team_for_member

SESSION_KEY = "current_team"


def team_view(action: Action = Action.VIEW):
    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, team_slug: str, *args, **kwargs):
            team = team_for_member(request.user, team_slug)
            require(request.user, team, action)
            request.team = team
            request.team_role = role_in(request.user, team)
            if request.session.get(SESSION_KEY) != team.slug:
                request.session[SESSION_KEY] = team.slug
            return view(request, team, *args, **kwargs)

        return wrapper

    return decorator
