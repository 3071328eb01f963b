"""Reads for assistants."""

from django.db.models import QuerySet
from django.http import Http404

from apps.assistants.models import Assistant
from apps.teams.models import Team


def assistants_for_team(team: Team, *, include_archived: bool = False) -> QuerySet[Assistant]:
    queryset = Assistant.objects.filter(team=team).select_related("backend", "prompt")
    if not include_archived:
        queryset = queryset.filter(archived_at__isnull=True)
    return queryset.order_by("name")


def assistant_for_team(team: Team, slug: str) -> Assistant:
    assistant = (
        Assistant.objects.filter(team=team, slug=slug)
        .select_related("backend", "prompt", "prompt_version")
        .first()
    )
    if assistant is None:
        raise Http404("No such assistant in this team.")
    return assistant
