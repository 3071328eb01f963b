"""The live events page of a team, its gap-filling history and the replay."""

from django.http import JsonResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime

from apps.events import envelope, replay, selectors
from apps.events.catalogue import TYPES
from apps.events.presentation import frames, row_contexts
from apps.teams.decorators import team_view
from apps.teams.permissions import Action

HISTORY = 100


@team_view(Action.VIEW)
def events_page(request, team):
    rows = selectors.events_for_team(team)[:HISTORY]
    from apps.assistants.selectors import assistants_for_team
    from apps.keys.models import ApiKey

    return render(
        request,
        "events/page.html",
        {
            "rows": row_contexts([envelope.build(row) for row in rows], team=team),
            "types": sorted(TYPES),
            "assistants": assistants_for_team(team),
            "keys": ApiKey.objects.filter(team=team).order_by("name"),
        },
    )


def _frames(team, events) -> JsonResponse:
    import json

    return JsonResponse({"events": [json.loads(text) for text in frames(list(events), team=team)]})


@team_view(Action.VIEW)
def events_history(request, team):
    """Rows after ``after`` (a sequence): what a reconnecting page missed."""
    try:
        after = int(request.GET.get("after", "0"))
    except ValueError:
        after = 0
    rows = selectors.events_for_team(team, after_sequence=after).order_by("sequence")[:500]
    return _frames(team, (envelope.build(row) for row in rows))


@team_view(Action.VIEW)
def events_replay(request, team):
    since = parse_datetime(request.GET.get("since", "") or "")
    if since is None:
        return JsonResponse({"error": "since must be an ISO 8601 time"}, status=400)
    if since.tzinfo is None:
        from datetime import UTC

        since = since.replace(tzinfo=UTC)
    return _frames(team, replay.replay(team, since))
