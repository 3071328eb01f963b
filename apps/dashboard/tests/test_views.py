import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.assistants.models import Assistant
from apps.dashboard.sections import PLANNED_SECTIONS
from apps.inference.models import Backend
from apps.teams.models import Membership, Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db


def test_planned_sections_say_so_plainly(client):
    team = TeamFactory()
    client.force_login(member_of(team, Role.VIEWER))
    for section in PLANNED_SECTIONS:
        page = client.get(reverse("dashboard:planned", args=[team.slug, section]))
        assert page.status_code == 200
        assert "Not built yet" in page.content.decode()
    assert client.get(reverse("dashboard:planned", args=[team.slug, "nope"])).status_code == 404


def test_dashboard_home_shows_real_counts(client):
    team = TeamFactory(name="Counting")
    owner = member_of(team, Role.OWNER)
    member_of(team, Role.MEMBER)
    client.force_login(owner)
    page = client.get(reverse("dashboard:team_home", args=[team.slug])).content.decode()
    assert "<strong>2</strong> members" in page
    assert "<strong>0</strong> assistants" in page


def test_seed_demo_is_idempotent_and_prints_the_login(client, capsys, settings):
    call_command("seed_demo")
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert f"Demo login: {settings.DEMO_EMAIL} / {settings.DEMO_PASSWORD}" in out
    membership = Membership.objects.get(user__email=settings.DEMO_EMAIL)
    assert membership.role == Role.OWNER
    assert Assistant.objects.filter(team=membership.team).count() == 1
    local = Backend.objects.get(team=membership.team)
    assert (local.kind, local.model_ids) == ("local", ["local-echo"])
    assert client.login(username=settings.DEMO_EMAIL, password=settings.DEMO_PASSWORD)


def test_admin_lists_every_model_for_staff(admin_client):
    call_command("seed_demo", quiet=True)
    for model in (
        "accounts/user",
        "teams/team",
        "teams/membership",
        "teams/invitation",
        "assistants/assistant",
        "inference/backend",
    ):
        response = admin_client.get(f"/admin/{model}/")
        assert response.status_code == 200, model
        assert admin_client.get(f"/admin/{model}/add/").status_code == 200, model
    for read_only in (
        "inference/chatrun",
        "inference/runattempt",
        "keys/apikey",
        "conversations/conversation",
        "prompts/promptversion",
    ):
        assert admin_client.get(f"/admin/{read_only}/").status_code == 200, read_only


def test_staff_add_a_global_backend_in_the_admin_with_an_encrypted_key(admin_client):
    response = admin_client.post(
        "/admin/inference/backend/add/",
        {
            "name": "Shared OpenAI",
            "kind": "openai",
            "api_key": "sk-admin-secret-0042",
            "models_text": "gpt-4o-mini",
            "timeout_seconds": 60,
            "max_retries": 3,
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    backend = Backend.objects.get(name="Shared OpenAI")
    assert backend.is_global and backend.api_key_last4 == "0042"
    assert "sk-admin-secret-0042" not in backend.api_key_encrypted
    page = admin_client.get(f"/admin/inference/backend/{backend.pk}/change/").content.decode()
    assert "sk-admin-secret-0042" not in page and "0042" in page


def test_admin_form_shows_service_errors(admin_client):
    response = admin_client.post(
        "/admin/inference/backend/add/",
        {
            "name": "No key",
            "kind": "openai",
            "timeout_seconds": 60,
            "max_retries": 3,
        },
    )
    assert response.status_code == 200
    assert "needs an API key" in response.content.decode()
    assert not Backend.objects.exists()


def test_admin_is_closed_to_non_staff(client):
    client.force_login(member_of(TeamFactory(), Role.OWNER))
    assert client.get("/admin/teams/team/").status_code == 302
