import pytest
from django.urls import reverse

from apps.assistants import services as assistants
from apps.conversations import services
from apps.conversations.models import Conversation
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.teams.models import Role
from apps.teams.tests.factories import member_of

pytestmark = pytest.mark.django_db


def test_list_search_open_and_delete(client):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    bot = assistants.assistant_create(
        team=team, actor=admin, name="Bot", backend=backend.pk, model="local-echo"
    )
    conversation = services.conversation_start(assistant=bot, actor=admin)
    services.message_send(conversation=conversation, actor=admin, content="Quarterly numbers")
    client.force_login(admin)
    url = reverse("conversations:list", args=[team.slug])
    assert "Quarterly numbers" in client.get(url, {"q": "quarterly"}).content.decode()
    assert "No conversation mentions" in client.get(url, {"q": "zebra"}).content.decode()
    opened = client.get(reverse("conversations:open", args=[team.slug, conversation.pk]))
    assert opened.url.endswith(f"/assistants/bot/?conversation={conversation.pk}")
    page = client.get(opened.url).content.decode()
    assert "Quarterly numbers" in page
    teammate = member_of(team, Role.MEMBER)
    client.force_login(teammate)
    assert (
        client.get(reverse("conversations:open", args=[team.slug, conversation.pk])).status_code
        == 404
    )
    assert (
        client.post(reverse("conversations:delete", args=[team.slug, conversation.pk])).status_code
        == 404
    )
    client.force_login(admin)
    client.post(reverse("conversations:delete", args=[team.slug, conversation.pk]))
    assert not Conversation.objects.exists()
