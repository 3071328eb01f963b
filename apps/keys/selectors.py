"""Reads for API keys; no side effects."""

from django.db.models import QuerySet
from django.http import Http404

from apps.keys.models import ApiKey
from apps.teams.models import Team


def keys_of(team: Team) -> QuerySet[ApiKey]:
    return team.api_keys.select_related("assistant", "created_by").order_by("-created_at", "-pk")


def key_in_team(team: Team, public_id: str) -> ApiKey:
    """The team's key with this public id; another team's key is simply not found."""
    key = keys_of(team).select_related("team").filter(public_id=public_id).first()
    if key is None:
        raise Http404("No such API key in this team.")
    return key
