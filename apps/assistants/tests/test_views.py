import pytest
from django.urls import reverse

from apps.assistants.tests.factories import AssistantFactory
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db


def test_assistant_list_shows_only_this_teams_assistants(client):
    team, other = TeamFactory(), TeamFactory()
    AssistantFactory(team=team, name="Ours")
    AssistantFactory(team=other, name="Theirs")
    client.force_login(member_of(team, Role.VIEWER))
    page = client.get(reverse("assistants:list", args=[team.slug])).content.decode()
    assert "Ours" in page and "Theirs" not in page


def test_assistant_api_lists_this_teams_assistants(client):
    team = TeamFactory()
    AssistantFactory(team=team, name="Ours", slug="ours")
    AssistantFactory(team=TeamFactory(), name="Theirs")
    client.force_login(member_of(team, Role.MEMBER))
    body = client.get(f"/api/v1/teams/{team.slug}/assistants").json()
    assert [a["slug"] for a in body] == ["ours"]
