import pytest
from django.core.management import call_command
from django.urls import reverse

from apps.assistants.models import Assistant
from apps.teams.models import Membership, Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db


def test_planned_sections_say_so_plainly(client):
    team = TeamFactory()
    client.force_login(member_of(team, Role.VIEWER))
    for section in ("prompts", "keys", "usage", "events"):
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
    assert client.login(username=settings.DEMO_EMAIL, password=settings.DEMO_PASSWORD)


def test_admin_lists_every_model_for_staff(admin_client):
    call_command("seed_demo", quiet=True)
    for model in (
        "accounts/user",
        "teams/team",
        "teams/membership",
        "teams/invitation",
        "assistants/assistant",
    ):
        response = admin_client.get(f"/admin/{model}/")
        assert response.status_code == 200, model
        assert admin_client.get(f"/admin/{model}/add/").status_code == 200, model


def test_admin_is_closed_to_non_staff(client):
    client.force_login(member_of(TeamFactory(), Role.OWNER))
    assert client.get("/admin/teams/team/").status_code == 302
