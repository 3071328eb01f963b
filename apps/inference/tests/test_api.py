import logging

import pytest

from apps.inference.models import Backend, ChatRun
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db
SECRET = "sk-live-never-show-me-7777"


def post(client, url, body):
    return client.post(url, body, content_type="application/json")


def test_backend_crud_never_returns_the_key(client, caplog):
    caplog.set_level(logging.DEBUG)
    team, admin = team_with_admin()
    client.force_login(admin)
    base = f"/api/v1/teams/{team.slug}/backends"
    created = post(
        client,
        base,
        {"kind": "openai", "name": "OpenAI", "api_key": SECRET, "models": ["gpt-4o-mini"]},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["has_api_key"] and body["api_key_last4"] == "7777"
    backend_id = body["id"]
    patched = client.patch(
        f"{base}/{backend_id}", {"timeout_seconds": 30}, content_type="application/json"
    )
    assert patched.json()["timeout_seconds"] == 30
    responses = [created, patched, client.get(base), client.get(f"{base}/{backend_id}")]
    for response in responses:
        assert SECRET not in response.content.decode()
    assert SECRET not in caplog.text
    assert client.delete(f"{base}/{backend_id}").json() == {"result": "deleted"}


def test_backend_validation_error_is_400_with_the_param(client):
    team, admin = team_with_admin()
    client.force_login(admin)
    response = post(
        client, f"/api/v1/teams/{team.slug}/backends", {"kind": "openai_compatible", "name": "x"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "base_url"


def test_members_cannot_add_backends_and_outsiders_see_nothing(client):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    client.force_login(member_of(team, Role.MEMBER))
    response = post(client, f"/api/v1/teams/{team.slug}/backends", {"kind": "local", "name": "L"})
    assert response.status_code == 403
    client.force_login(member_of(TeamFactory(), Role.OWNER))
    assert client.get(f"/api/v1/teams/{team.slug}/backends/{backend.pk}").status_code == 404
    other_team, other_admin = team_with_admin()
    client.force_login(other_admin)
    assert client.get(f"/api/v1/teams/{other_team.slug}/backends/{backend.pk}").status_code == 404
    assert (
        client.delete(f"/api/v1/teams/{other_team.slug}/backends/{backend.pk}").status_code == 404
    )
    assert Backend.objects.filter(pk=backend.pk).exists()


def test_runs_create_get_list_and_cancel(client):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    client.force_login(admin)
    base = f"/api/v1/teams/{team.slug}/runs"
    created = post(
        client,
        base,
        {
            "backend": backend.pk,
            "model": "local-echo",
            "messages": [{"role": "user", "content": "hi"}],
            "parameters": {"max_tokens": 5},
        },
    )
    assert created.status_code == 202, created.content
    run_id = created.json()["id"]
    assert created.json()["status"] == "queued"
    assert client.get(f"{base}/{run_id}").json()["attempts"] == []
    listing = client.get(f"{base}?limit=1").json()
    assert [r["id"] for r in listing["items"]] == [run_id] and listing["has_more"] is False
    cancelled = post(client, f"{base}/{run_id}/cancel", {})
    assert cancelled.json()["status"] == "cancelled"
    again = post(client, f"{base}/{run_id}/cancel", {})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "run_finished"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        (
            {"backend": 999999, "model": "m", "messages": [{"role": "user", "content": "x"}]},
            404,
            "backend",
        ),
        ({"backend": "BACKEND", "model": "m", "messages": []}, 422, "backend"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, 422, "backend"),
        ("BACKEND:bad-role", 400, "messages[0].role"),
        ("BACKEND:bad-param", 400, "temperature"),
    ],
)
def test_run_bad_input(client, body, status, param):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    client.force_login(admin)
    if body == "BACKEND:bad-role":
        body = {"backend": backend.pk, "model": "m", "messages": [{"role": "x", "content": "y"}]}
    elif body == "BACKEND:bad-param":
        body = {
            "backend": backend.pk,
            "model": "m",
            "messages": [{"role": "user", "content": "y"}],
            "parameters": {"temperature": 9},
        }
    response = post(client, f"/api/v1/teams/{team.slug}/runs", body)
    assert response.status_code == status, response.content
    assert response.json()["error"]["param"] == param
    assert not ChatRun.objects.exists()


def test_another_teams_run_is_404(client):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    run = ChatRun.objects.create(
        team=team, backend=backend, model="m", messages=[{"role": "user", "content": "x"}]
    )
    other_team, other_admin = team_with_admin()
    client.force_login(other_admin)
    assert client.get(f"/api/v1/teams/{other_team.slug}/runs/{run.pk}").status_code == 404
    assert (
        post(client, f"/api/v1/teams/{other_team.slug}/runs/{run.pk}/cancel", {}).status_code == 404
    )
    run.refresh_from_db()
    assert run.status == "queued"
