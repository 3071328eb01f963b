import pytest
from django.urls import reverse

from apps.inference.models import Backend, ChatRun
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db
SECRET = "sk-page-secret-4321"


def test_admin_adds_a_backend_from_the_page_and_never_sees_the_key_again(client):
    team, admin = team_with_admin()
    client.force_login(admin)
    response = client.post(
        reverse("inference:backends", args=[team.slug]),
        {
            "kind": "openai",
            "name": "OpenAI",
            "api_key": SECRET,
            "models": "gpt-4o-mini\ngpt-4o",
            "timeout_seconds": 60,
            "max_retries": 3,
            "enabled": "on",
        },
    )
    backend = Backend.objects.get(name="OpenAI")
    assert response.url == reverse("inference:backend", args=[team.slug, backend.pk])
    assert backend.model_ids == ["gpt-4o", "gpt-4o-mini"]
    for url in (reverse("inference:backends", args=[team.slug]), response.url):
        page = client.get(url).content.decode()
        assert SECRET not in page
        assert "…4321" in page


def test_form_errors_come_back_as_400(client):
    team, admin = team_with_admin()
    client.force_login(admin)
    response = client.post(
        reverse("inference:backends", args=[team.slug]),
        {
            "kind": "openai_compatible",
            "name": "No URL",
            "timeout_seconds": 60,
            "max_retries": 3,
        },
    )
    assert response.status_code == 400
    assert "base URL" in response.content.decode()
    assert not Backend.objects.exists()


def test_local_backend_is_labelled_as_development(client):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    client.force_login(admin)
    page = client.get(reverse("inference:backend", args=[team.slug, backend.pk])).content.decode()
    assert "development backend" in page and "not a language model" in page


def test_members_see_backends_but_cannot_change_them(client):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    client.force_login(member_of(team, Role.MEMBER))
    assert client.get(reverse("inference:backends", args=[team.slug])).status_code == 200
    assert (
        client.post(
            reverse("inference:backends", args=[team.slug]), {"kind": "local", "name": "x"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            reverse("inference:backend", args=[team.slug, backend.pk]), {"name": "renamed"}
        ).status_code
        == 403
    )
    assert (
        client.post(reverse("inference:backend_delete", args=[team.slug, backend.pk])).status_code
        == 403
    )
    assert Backend.objects.get(pk=backend.pk).name == backend.name


def test_outsiders_get_404_everywhere(client):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    run = ChatRun.objects.create(
        team=team, backend=backend, model="m", messages=[{"role": "user", "content": "x"}]
    )
    client.force_login(member_of(TeamFactory(), Role.OWNER))
    for name, args in [
        ("inference:backends", [team.slug]),
        ("inference:backend", [team.slug, backend.pk]),
        ("inference:run", [team.slug, run.pk]),
    ]:
        assert client.get(reverse(name, args=args)).status_code == 404
    other_team, other_admin = team_with_admin()
    client.force_login(other_admin)
    assert client.get(reverse("inference:run", args=[other_team.slug, run.pk])).status_code == 404
    assert (
        client.post(
            reverse("inference:backend_test", args=[other_team.slug, backend.pk]),
            {"model": "m", "prompt": "x"},
        ).status_code
        == 404
    )


def test_test_connection_creates_a_run_and_shows_its_page(client):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    client.force_login(admin)
    response = client.post(
        reverse("inference:backend_test", args=[team.slug, backend.pk]),
        {"model": "local-echo", "prompt": "Say hi"},
    )
    run = ChatRun.objects.get()
    assert response.url == reverse("inference:run", args=[team.slug, run.pk])
    assert run.parameters == {"max_tokens": 64}
    page = client.get(response.url).content.decode()
    assert f"/ws/runs/{run.pk}/" in page
    assert 'data-testid="run-status"' in page
