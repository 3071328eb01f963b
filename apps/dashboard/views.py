"""The dashboard shell: landing redirect, team home and not-yet-built sections."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render

from apps.assistants.selectors import assistants_for_team
from apps.dashboard.sections import PLANNED_SECTIONS, getting_started
from apps.teams import selectors
from apps.teams.decorators import SESSION_KEY, team_view
from apps.teams.permissions import Action, can


@login_required
def home(request):
    """Send the user to their current team, or to team creation when they have none."""
    teams = selectors.teams_for_user(request.user)
    remembered = request.session.get(SESSION_KEY)
    team = teams.filter(slug=remembered).first() if remembered else None
    team = team or teams.first()
    if team is None:
        return redirect("teams:create")
    return redirect("dashboard:team_home", team_slug=team.slug)


def _usage_today(team):
    """Today's requests, tokens and cost from the rollups; the page then adds each
    finished run's figures from the live event stream."""
    from django.utils import timezone

    from apps.usage.query import Filters, Window
    from apps.usage.selectors import usage_summary

    today = timezone.now().astimezone(team.zone).date()
    return usage_summary(team, Window(today, today, team.zone), Filters()).totals


@team_view(Action.VIEW)
def team_home(request, team):
    assistant_count = assistants_for_team(team).count()
    # The first steps, for those who can take them, until the team has taken them all;
    # a viewer only hears that someone else sets the team up.
    steps = None
    if can(request.user, team, Action.EDIT):
        steps = getting_started(request.user, team, assistant_count=assistant_count)
        if all(step.done for step in steps):
            steps = None
    context = {
        "member_count": selectors.members(team).count(),
        "assistants": assistants_for_team(team)[:5],
        "assistant_count": assistant_count,
        "today": _usage_today(team),
        "steps": steps,
        "next_step": next((step for step in steps if not step.done), None) if steps else None,
    }
    return render(request, "dashboard/home.html", context)


@team_view(Action.VIEW)
def planned_section(request, team, section: str):
    if section not in PLANNED_SECTIONS:
        raise Http404("No such section.")
    title, summary = PLANNED_SECTIONS[section]
    return render(
        request, "dashboard/planned.html", {"section": section, "title": title, "summary": summary}
    )
