import pytest
from django.utils import timezone

from apps.assistants.models import Assistant
from apps.inference.tests.factories import (
    azure_backend,
    compatible_backend,
    local_backend,
    team_with_admin,
)
from apps.prompts import services as prompts
from apps.teams.models import Role
from apps.teams.tests.factories import member_of

pytestmark = pytest.mark.django_db


def post(client, url, body):
    return client.post(url, body, content_type="application/json")


@pytest.fixture
def team_setup(client):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    client.force_login(admin)
    return team, admin, backend


def test_create_get_update_duplicate_delete(client, team_setup):
    team, _admin, backend = team_setup
    base = f"/api/v1/teams/{team.slug}/assistants"
    created = post(
        client,
        base,
        {
            "name": "Support",
            "backend": backend.pk,
            "model": "local-echo",
            "instructions": "Help.",
            "temperature": 0.2,
            "stop": ["END"],
            "memory_messages": 6,
        },
    )
    assert created.status_code == 201, created.content
    assert created.json()["slug"] == "support" and created.json()["stop"] == ["END"]
    patched = client.patch(f"{base}/support", {"temperature": 0.9}, content_type="application/json")
    assert patched.json()["temperature"] == 0.9
    copy = post(client, f"{base}/support/duplicate", {})
    assert copy.status_code == 201 and copy.json()["slug"] == "support-copy"
    assert [a["slug"] for a in client.get(base).json()["items"]] == ["support", "support-copy"]
    assert client.delete(f"{base}/support-copy").json() == {"result": "deleted"}


def test_label_and_pin_through_the_api(client, team_setup):
    team, admin, backend = team_setup
    prompt = prompts.prompt_create(team=team, actor=admin, name="Base", system="Hi")
    prompts.label_move(
        prompt=prompt, actor=admin, label="production", version=prompt.versions.get()
    )
    base = f"/api/v1/teams/{team.slug}/assistants"
    by_label = post(
        client,
        base,
        {
            "name": "A",
            "backend": backend.pk,
            "model": "local-echo",
            "instructions_source": "label",
            "prompt": "base",
            "prompt_label": "production",
        },
    )
    assert by_label.status_code == 201
    pinned_missing = post(
        client,
        base,
        {
            "name": "B",
            "backend": backend.pk,
            "model": "local-echo",
            "instructions_source": "pinned",
            "prompt": "base",
            "prompt_version": 9,
        },
    )
    assert pinned_missing.status_code == 404
    assert pinned_missing.json()["error"]["param"] == "prompt_version"
    assert Assistant.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"name": "X", "backend": 99999, "model": "local-echo"}, 404, "backend"),
        ({"name": "X", "backend": "one", "model": "local-echo"}, 422, "backend"),
        ({"name": "X", "model": "local-echo"}, 422, "backend"),
        (
            {"name": "X", "backend": "BACKEND", "model": "local-echo", "instructions": "{{oops"},
            400,
            "instructions",
        ),
        ({"name": "X", "backend": "BACKEND", "model": "local-echo", "top_p": 3}, 400, "top_p"),
    ],
)
def test_bad_input(client, team_setup, body, status, param):
    team, _admin, backend = team_setup
    if body.get("backend") == "BACKEND":
        body = {**body, "backend": backend.pk}
    response = post(client, f"/api/v1/teams/{team.slug}/assistants", body)
    assert response.status_code == status, response.content
    assert response.json()["error"]["param"] == param
    assert not Assistant.objects.exists()


def test_isolation_and_roles(client, team_setup):
    team, _admin, backend = team_setup
    post(
        client,
        f"/api/v1/teams/{team.slug}/assistants",
        {"name": "Mine", "backend": backend.pk, "model": "local-echo"},
    )
    other_team, other_admin = team_with_admin()
    client.force_login(other_admin)
    assert client.get(f"/api/v1/teams/{team.slug}/assistants/mine").status_code == 404
    assert client.get(f"/api/v1/teams/{other_team.slug}/assistants/mine").status_code == 404
    client.force_login(member_of(team, Role.VIEWER))
    assert client.get(f"/api/v1/teams/{team.slug}/assistants/mine").status_code == 200
    response = client.patch(
        f"/api/v1/teams/{team.slug}/assistants/mine",
        {"name": "Hijack"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert Assistant.objects.get().name == "Mine"


def test_list_filters_and_orders(client, team_setup):
    team, _admin, backend = team_setup
    base = f"/api/v1/teams/{team.slug}/assistants"
    other = compatible_backend(team, _admin, models=["other-model"])
    for name, on, model, description in [
        ("Bravo", backend, "local-echo", "Answers billing questions"),
        ("Alpha", other, "other-model", "Writes release notes"),
        ("Charlie", backend, "local-echo", "Old helper"),
    ]:
        body = {"name": name, "backend": on.pk, "model": model, "description": description}
        assert post(client, base, body).status_code == 201
    Assistant.objects.filter(slug="charlie").update(archived_at=timezone.now())

    def slugs(query: str = "") -> list[str]:
        response = client.get(f"{base}?{query}")
        assert response.status_code == 200, response.content
        return [a["slug"] for a in response.json()["items"]]

    assert slugs() == ["alpha", "bravo"]
    assert slugs("archived=false") == ["alpha", "bravo"]
    assert slugs("archived=true") == ["charlie"]
    assert slugs("include_archived=true") == ["alpha", "bravo", "charlie"]
    assert slugs("q=BILLING") == ["bravo"]
    assert slugs("model=local-echo") == ["bravo"]
    assert slugs("model=local-echo&include_archived=true") == ["bravo", "charlie"]
    assert slugs("order=-name") == ["bravo", "alpha"]
    assert slugs("order=-created_at&include_archived=true") == ["charlie", "alpha", "bravo"]
    assert slugs("order=created_at&include_archived=true&limit=2") == ["bravo", "alpha"]
    page = client.get(f"{base}?order=created_at&include_archived=true&limit=2").json()
    assert (page["count"], page["next_offset"]) == (3, 2)
    assert slugs("order=created_at&include_archived=true&offset=2") == ["charlie"]

    for bad in ("order=slug", "order=--name", "order=name,created_at"):
        response = client.get(f"{base}?{bad}")
        assert response.status_code == 422, bad
        assert response.json()["error"]["param"] == "order"
        assert "'-updated_at'" in response.json()["error"]["message"]


def test_a_model_the_backend_does_not_serve_is_refused(client, team_setup):
    """The local development backend serves local-echo only: a commercial model name
    is refused with the list, not saved and later answered and billed."""
    team, _admin, backend = team_setup
    base = f"/api/v1/teams/{team.slug}/assistants"
    refused = post(client, base, {"name": "X", "backend": backend.pk, "model": "gpt-4o"})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["param"], error["code"]) == ("model", "model_not_served")
    assert "local-echo" in error["message"]
    fallback = post(
        client,
        base,
        {
            "name": "X",
            "backend": backend.pk,
            "model": "local-echo",
            "fallbacks": [{"backend": backend.pk, "model": "gpt-4o"}],
        },
    )
    assert fallback.status_code == 400
    assert fallback.json()["error"]["param"] == "fallbacks[0].model"
    assert not Assistant.objects.exists()
    created = post(client, base, {"name": "Y", "backend": backend.pk, "model": "local-echo"})
    assert created.status_code == 201
    changed = client.patch(
        f"{base}/{created.json()['slug']}", {"model": "gpt-4o"}, content_type="application/json"
    )
    assert changed.status_code == 400 and Assistant.objects.get().model == "local-echo"


def test_a_backend_that_lists_no_models_takes_any_name(client, team_setup):
    """Azure serves deployments by name and lists none: there is nothing to check."""
    team, admin, _backend = team_setup
    azure = azure_backend(team, admin)
    assert azure.model_ids == []
    body = {"name": "Z", "backend": azure.pk, "model": "my-deployment"}
    assert post(client, f"/api/v1/teams/{team.slug}/assistants", body).status_code == 201
