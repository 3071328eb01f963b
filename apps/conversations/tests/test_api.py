import pytest

from apps.assistants import services as assistants
from apps.conversations.models import Conversation, Message
from apps.inference.models import ChatRun
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.teams.models import Role
from apps.teams.tests.factories import member_of

pytestmark = pytest.mark.django_db


def post(client, url, body):
    return client.post(url, body, content_type="application/json")


@pytest.fixture
def bot(client):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    assistants.assistant_create(
        team=team,
        actor=admin,
        name="Bot",
        backend=backend.pk,
        model="local-echo",
        instructions="Hello {{who}}.",
    )
    client.force_login(admin)
    return team, admin


def test_conversation_round_trip(client, bot):
    team, _ = bot
    base = f"/api/v1/teams/{team.slug}/conversations"
    created = post(client, base, {"assistant": "bot", "title": "Test"})
    assert created.status_code == 201
    conversation_id = created.json()["id"]
    sent = post(
        client,
        f"{base}/{conversation_id}/messages",
        {"content": "Hi", "variables": {"who": "you", "unused": "x"}},
    )
    assert sent.status_code == 202, sent.content
    body = sent.json()
    assert body["user_message"]["content"] == "Hi"
    assert body["assistant_message"]["status"] == "queued"
    assert body["extra_variables"] == ["unused"]
    listed = client.get(f"{base}/{conversation_id}/messages").json()
    assert [m["role"] for m in listed] == ["user", "assistant"]
    assert [c["id"] for c in client.get(f"{base}?q=Hi").json()] == [conversation_id]
    assert client.delete(f"{base}/{conversation_id}").status_code == 204
    assert not Conversation.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"content": "Hi"}, 400, "variables.who"),
        ({"content": "x" * 2_000_000, "variables": {"who": "a"}}, 413, None),
        ({"content": 5}, 422, "content"),
        ("not json", 400, None),
    ],
)
def test_bad_messages(client, bot, body, status, param):
    team, _ = bot
    base = f"/api/v1/teams/{team.slug}/conversations"
    conversation_id = post(client, base, {"assistant": "bot"}).json()["id"]
    if body == "not json":
        response = client.post(
            f"{base}/{conversation_id}/messages", "{not json", content_type="application/json"
        )
    else:
        response = post(client, f"{base}/{conversation_id}/messages", body)
    assert response.status_code in ({status} if status != 400 or param else {400, 422})
    assert "error" in response.json()
    if param:
        assert response.json()["error"]["param"] == param
    assert not Message.objects.exists() and not ChatRun.objects.exists()


def test_other_peoples_conversations_are_404(client, bot):
    team, _ = bot
    base = f"/api/v1/teams/{team.slug}/conversations"
    conversation_id = post(client, base, {"assistant": "bot"}).json()["id"]
    client.force_login(member_of(team, Role.MEMBER))
    assert client.get(f"{base}/{conversation_id}").status_code == 404
    assert post(client, f"{base}/{conversation_id}/messages", {"content": "hi"}).status_code == 404
    other_team, other_admin = team_with_admin()
    client.force_login(other_admin)
    assert (
        client.get(f"/api/v1/teams/{other_team.slug}/conversations/{conversation_id}").status_code
        == 404
    )
    assert (
        post(
            client, f"/api/v1/teams/{other_team.slug}/conversations", {"assistant": "bot"}
        ).status_code
        == 404
    )
