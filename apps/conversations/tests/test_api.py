import pytest
from django.utils import timezone

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
    assert [m["role"] for m in listed["items"]] == ["user", "assistant"]
    assert [c["id"] for c in client.get(f"{base}?q=Hi").json()["items"]] == [conversation_id]
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


def test_conversations_and_messages_page_filter_and_order(client, bot):
    team, admin = bot
    backend = team.assistants.get(slug="bot").backend_id
    other = assistants.assistant_create(
        team=team, actor=admin, name="Other", backend=backend, model="local-echo"
    )
    base = f"/api/v1/teams/{team.slug}/conversations"
    made = {}
    for title, slug in [("Banana", "bot"), ("Apple", "other"), ("Cherry", "bot")]:
        made[title] = post(client, base, {"assistant": slug, "title": title}).json()["id"]
    # talking moves a conversation to the top of the default order
    Conversation.objects.filter(pk=made["Banana"]).update(updated_at=timezone.now())
    conversation = Conversation.objects.get(pk=made["Banana"])
    for i in range(5):
        Message.objects.create(conversation=conversation, role=Message.Role.USER, content=f"m{i}")

    def titles(query: str = "") -> list[str]:
        response = client.get(f"{base}?{query}")
        assert response.status_code == 200, response.content
        return [c["title"] for c in response.json()["items"]]

    assert titles() == ["Banana", "Cherry", "Apple"]
    assert titles("order=title") == ["Apple", "Banana", "Cherry"]
    assert titles("order=-created_at") == ["Cherry", "Apple", "Banana"]
    assert titles("assistant=bot") == ["Banana", "Cherry"]
    assert titles(f"assistant={other.slug}&order=title") == ["Apple"]
    assert titles("q=m3") == ["Banana"]
    assert titles("q=an&order=title") == ["Banana"]
    assert titles("order=title&limit=2&offset=1") == ["Banana", "Cherry"]

    unknown = client.get(f"{base}?assistant=nobody")
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "assistant"
    bad = client.get(f"{base}?order=assistant")
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "order"

    messages = f"{base}/{conversation.pk}/messages"
    first = client.get(f"{messages}?limit=2").json()
    assert [m["content"] for m in first["items"]] == ["m0", "m1"]
    assert (first["count"], first["next_offset"]) == (5, 2)
    last = client.get(f"{messages}?limit=2&offset=4").json()
    assert ([m["content"] for m in last["items"]], last["next_offset"]) == (["m4"], None)
