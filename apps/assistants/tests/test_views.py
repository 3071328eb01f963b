import pytest
from django.urls import reverse

from apps.assistants import services
from apps.assistants.models import Assistant
from apps.assistants.tests.factories import AssistantFactory
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def bot():
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    assistant = services.assistant_create(
        team=team, actor=admin, name="Ours", backend=backend.pk, model="local-echo"
    )
    return team, admin, backend, assistant


def test_list_shows_only_this_teams_assistants(client, bot):
    team, _admin, *_ = bot
    AssistantFactory(team=TeamFactory(), name="Theirs")
    client.force_login(member_of(team, Role.VIEWER))
    page = client.get(reverse("assistants:list", args=[team.slug])).content.decode()
    assert "Ours" in page and "Theirs" not in page


def test_create_from_the_page_and_form_errors(client, bot):
    team, admin, backend, _ = bot
    client.force_login(admin)
    url = reverse("assistants:list", args=[team.slug])
    good = {
        "name": "Writer",
        "backend": backend.pk,
        "model": "local-echo",
        "instructions_source": "inline",
        "instructions": "Write.",
        "memory_messages": 10,
    }
    response = client.post(url, good)
    assert response.url == reverse("assistants:playground", args=[team.slug, "writer"])
    bad = client.post(url, {**good, "name": "Broken", "instructions": "{{ unbalanced"})
    assert bad.status_code == 400
    assert "Broken" not in {a.name for a in Assistant.objects.all()}


def test_playground_needs_use_and_membership(client, bot):
    team, _, _, assistant = bot
    url = reverse("assistants:playground", args=[team.slug, assistant.slug])
    client.force_login(member_of(team, Role.MEMBER))
    page = client.get(url).content.decode()
    assert f"/ws/playground/{assistant.pk}/" in page
    client.force_login(member_of(team, Role.VIEWER))
    assert client.get(url).status_code == 403
    client.force_login(member_of(TeamFactory(), Role.OWNER))
    assert client.get(url).status_code == 404


def test_viewers_cannot_change_and_outsiders_cannot_see(client, bot):
    team, _, _, assistant = bot
    client.force_login(member_of(team, Role.VIEWER))
    settings_url = reverse("assistants:settings", args=[team.slug, assistant.slug])
    assert client.get(settings_url).status_code == 200
    assert client.post(settings_url, {"name": "Hijacked"}).status_code == 403
    assert (
        client.post(reverse("assistants:duplicate", args=[team.slug, assistant.slug])).status_code
        == 403
    )
    other_team, other_admin = team_with_admin()
    client.force_login(other_admin)
    assert (
        client.get(
            reverse("assistants:settings", args=[other_team.slug, assistant.slug])
        ).status_code
        == 404
    )
    assert (
        client.post(
            reverse("assistants:remove", args=[other_team.slug, assistant.slug])
        ).status_code
        == 404
    )
    assert Assistant.objects.get(pk=assistant.pk).name == "Ours"


def test_duplicate_and_archive_from_the_page(client, bot):
    team, admin, _, assistant = bot
    client.force_login(admin)
    client.post(reverse("assistants:duplicate", args=[team.slug, assistant.slug]))
    assert Assistant.objects.filter(team=team, slug="ours-copy").exists()
    client.post(reverse("assistants:remove", args=[team.slug, "ours-copy"]))
    assert not Assistant.objects.filter(team=team, slug="ours-copy").exists()
