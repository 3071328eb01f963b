"""Reads for assistants."""

from django.db.models import QuerySet

from apps.assistants.models import Assistant
from apps.teams.models import Team


def assistants_for_team(team: Team, *, include_archived: bool = False) -> QuerySet[Assistant]:
    queryset = Assistant.objects.filter(team=team)
    if not include_archived:
        queryset = queryset.filter(archived_at__isnull=True)
    return queryset.order_by("name")
