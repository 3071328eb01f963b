from django.shortcuts import render

from apps.assistants.selectors import assistants_for_team
from apps.teams.decorators import team_view
from apps.teams.permissions import Action


@team_view(Action.VIEW)
def assistant_list(request, team):
    return render(request, "assistants/list.html", {"assistants": assistants_for_team(team)})
