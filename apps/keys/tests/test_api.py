"""Key auth on the REST API and the keys endpoints themselves."""

import pytest
from django.test import Client

from apps.assistants.tests.factories import AssistantFactory
from apps.inference.models import ChatRun
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.keys.tests.factories import make_key
from apps.teams.models import Role
from apps.teams.tests.factories import member_of

pytestmark = pytest.mark.django_db


def bearer(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def post(client, url, body):
    return client.post(url, body, content_type="application/json")


def test_a_key_reads_its_team_and_nothing_else():
    team, admin = team_with_admin()
    other, _ = team_with_admin()
    _key, raw = make_key(team, admin, scopes=["read"])
    client = bearer(raw)

    teams = client.get("/api/v1/teams")
    assert teams.status_code == 200
    assert [t["slug"] for t in teams.json()["items"]] == [team.slug]
    assert client.get(f"/api/v1/teams/{team.slug}/members").status_code == 200
    missing = client.get(f"/api/v1/teams/{other.slug}/members")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"


def test_scopes_decide_what_a_key_may_do():
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    _key, read_only = make_key(team, admin, scopes=["read"])
    body = {"name": "Bot", "backend": backend.pk, "model": "local-echo", "instructions": "Hi."}

    refused = post(bearer(read_only), f"/api/v1/teams/{team.slug}/assistants", body)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert "scopes" in refused.json()["error"]["message"]

    _key, writer = make_key(team, admin, scopes=["read", "write"])
    created = post(bearer(writer), f"/api/v1/teams/{team.slug}/assistants", body)
    assert created.status_code == 201, created.content
    assert created.json()["slug"] == "bot"


def test_bad_headers_and_dead_keys_get_401_with_a_reason():
    team, admin = team_with_admin()
    key, raw = make_key(team, admin, scopes=["read"])
    url = "/api/v1/teams"
    cases = {
        "Bearer": "Send the API key",
        "Basic dXNlcjpwYXNz": "Send the API key",
        "Bearer not-a-key": "Incorrect API key",
        f"Bearer {raw[:-1]}X": "Incorrect API key",
    }
    for header, message in cases.items():
        answer = Client(HTTP_AUTHORIZATION=header).get(url)
        assert answer.status_code == 401, header
        assert message in answer.json()["error"]["message"]
        assert answer.json()["error"]["type"] == "authentication_error"

    from apps.keys import services

    services.key_revoke(key=key, actor=admin)
    revoked = bearer(raw).get(url)
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["error"]["message"]


def test_a_bad_bearer_does_not_fall_back_to_the_session(client):
    _team, admin = team_with_admin()
    client.force_login(admin)
    assert client.get("/api/v1/teams").status_code == 200
    answer = client.get("/api/v1/teams", HTTP_AUTHORIZATION="Bearer aip_nope")
    assert answer.status_code == 401


def test_a_key_of_another_deployment_is_incorrect(settings):
    team, admin = team_with_admin()
    settings.API_KEY_HMAC_SECRET = "staging-secret-staging-secret-00"
    _key, raw = make_key(team, admin, scopes=["read"])
    settings.API_KEY_HMAC_SECRET = "production-secret-production-01"
    answer = bearer(raw).get("/api/v1/teams")
    assert answer.status_code == 401
    assert answer.json()["error"]["message"] == "Incorrect API key provided."


def test_keys_endpoints_issue_rotate_and_revoke():
    team, admin = team_with_admin()
    _key, admin_key = make_key(team, admin, scopes=["admin", "read", "chat"])
    client = bearer(admin_key)
    base = f"/api/v1/teams/{team.slug}/keys"

    created = post(client, base, {"name": "Deploy", "scopes": ["chat"]})
    assert created.status_code == 201, created.content
    body = created.json()
    raw = body["secret"]
    assert raw.startswith(body["key"]["prefix"])
    assert body["key"]["status"] == "active"
    listed = client.get(base).json()["items"]
    assert {k["name"] for k in listed} == {"Deploy", "CI key"}
    assert all("secret" not in k and raw not in str(k) for k in listed)

    rotated = post(client, f"{base}/{body['key']['id']}/rotate", {"grace_seconds": 3600})
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != raw
    assert rotated.json()["key"]["previous_secret_valid_until"] is not None

    revoked = post(client, f"{base}/{body['key']['id']}/revoke", {})
    assert revoked.json()["status"] == "revoked"
    again = post(client, f"{base}/{body['key']['id']}/revoke", {})
    assert again.status_code == 409


def test_an_admin_key_cannot_mint_a_stronger_key_or_touch_owners():
    team, admin = team_with_admin()
    owner = member_of(team, Role.OWNER)
    _key, admin_key = make_key(team, admin, scopes=["admin"])
    client = bearer(admin_key)
    stronger = post(client, f"/api/v1/teams/{team.slug}/keys", {"name": "x", "scopes": ["write"]})
    assert stronger.status_code == 403

    members = {
        m["email"]: m["id"]
        for m in bearer(make_key(team, admin, scopes=["read"])[1])
        .get(f"/api/v1/teams/{team.slug}/members")
        .json()["items"]
    }
    demote = client.put(
        f"/api/v1/teams/{team.slug}/members/{members[owner.email]}/role",
        {"role": "member"},
        content_type="application/json",
    )
    assert demote.status_code == 400
    assert demote.json()["error"]["code"] == "forbidden_role"


def test_member_and_invitation_endpoints_for_admin_keys():
    team, admin = team_with_admin()
    member = member_of(team, Role.MEMBER)
    _key, admin_key = make_key(team, admin, scopes=["admin", "read"])
    client = bearer(admin_key)
    base = f"/api/v1/teams/{team.slug}"
    ids = {m["email"]: m["id"] for m in client.get(f"{base}/members").json()["items"]}

    promoted = client.put(
        f"{base}/members/{ids[member.email]}/role",
        {"role": "admin"},
        content_type="application/json",
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    invited = post(client, f"{base}/invitations", {"role": "viewer"})
    assert invited.status_code == 201
    assert "/invitations/" in invited.json()["url"]
    assert [i["id"] for i in client.get(f"{base}/invitations").json()["items"]] == [
        invited.json()["id"]
    ]
    assert client.delete(f"{base}/members/{ids[member.email]}").status_code == 204
    assert member.email not in {m["email"] for m in client.get(f"{base}/members").json()["items"]}


def test_keys_cannot_create_teams():
    team, admin = team_with_admin()
    _key, raw = make_key(team, admin, scopes=["admin", "write"])
    assert post(bearer(raw), "/api/v1/teams", {"name": "Mine"}).status_code == 403


def test_runs_record_the_key_and_bound_keys_stay_on_their_assistant():
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    bot = AssistantFactory(team=team, backend=backend, model="local-echo")
    key, raw = make_key(team, admin, scopes=["chat", "read"], assistant=bot)
    client = bearer(raw)

    raw_run = post(
        client,
        f"/api/v1/teams/{team.slug}/runs",
        {
            "backend": backend.pk,
            "model": "local-echo",
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert raw_run.status_code == 403
    assert "bound" in raw_run.json()["error"]["message"]

    conversation = post(client, f"/api/v1/teams/{team.slug}/conversations", {"assistant": bot.slug})
    assert conversation.status_code == 201, conversation.content
    sent = post(
        client,
        f"/api/v1/teams/{team.slug}/conversations/{conversation.json()['id']}/messages",
        {"content": "Hello"},
    )
    assert sent.status_code == 202, sent.content
    run = ChatRun.objects.get()
    assert run.api_key_id == key.pk and run.created_by_id is None

    # the key's conversations are its own: the admin's session does not list them
    session = Client()
    session.force_login(admin)
    assert session.get(f"/api/v1/teams/{team.slug}/conversations").json()["items"] == []
