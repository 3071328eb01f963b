import logging

import pytest

from apps.assistants.tests.factories import AssistantFactory
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
    assert [r["id"] for r in listing["items"]] == [run_id]
    assert (listing["count"], listing["next_offset"]) == (1, None)
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


def test_runs_list_filters_orders_and_pages(client):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    bot = AssistantFactory(team=team, backend=backend, model="local-echo", slug="bot")
    AssistantFactory(team=team, backend=backend, model="local-echo", slug="idle")
    messages = [{"role": "user", "content": "x"}]

    def run(model, status="queued", assistant=None, tokens=None):
        return ChatRun.objects.create(
            team=team,
            backend=backend,
            model=model,
            messages=messages,
            status=status,
            assistant=assistant,
            total_tokens=tokens,
        ).pk

    first = run("small", "succeeded", bot, tokens=30)
    second = run("large", "failed", tokens=10)
    third = run("small", "queued", bot)
    other_team, other_admin = team_with_admin()
    ChatRun.objects.create(
        team=other_team,
        backend=local_backend(other_team, other_admin),
        model="small",
        messages=messages,
    )
    client.force_login(admin)
    base = f"/api/v1/teams/{team.slug}/runs"

    def ids(query: str = "") -> list[int]:
        response = client.get(f"{base}?{query}")
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["items"]]

    assert ids() == [third, second, first]
    assert ids("order=created_at") == [first, second, third]
    assert ids("order=-total_tokens") == [first, second, third]  # no tokens yet: last
    assert ids("order=total_tokens") == [second, first, third]
    assert ids("status=succeeded") == [first]
    assert ids("model=small") == [third, first]
    assert ids("assistant=bot") == [third, first]
    assert ids("assistant=idle") == []
    assert ids("assistant=bot&status=queued") == [third]
    listing = client.get(f"{base}?assistant=bot").json()
    assert [r["assistant"] for r in listing["items"]] == ["bot", "bot"]

    page = client.get(f"{base}?limit=2").json()
    assert [r["id"] for r in page["items"]] == [third, second]
    assert (page["count"], page["next_offset"]) == (3, 2)
    rest = client.get(f"{base}?limit=2&offset={page['next_offset']}").json()
    assert ([r["id"] for r in rest["items"]], rest["next_offset"]) == ([first], None)

    unknown = client.get(f"{base}?assistant=ghost")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["param"] == "assistant"
    for query, param in [("order=cost", "order"), ("status=done", "status")]:
        response = client.get(f"{base}?{query}")
        assert response.status_code == 422, query
        assert response.json()["error"]["param"] == param
