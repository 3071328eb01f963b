"""The playground socket refuses empty prompt variables as the API refuses missing ones
(the same renderer says so), and creates nothing. Real Redis channel layer."""

import json

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from apps.assistants.tests.factories import greeter_on_two_versions
from apps.conversations.models import Conversation, Message
from apps.core.errors import ServiceError
from apps.inference.models import ChatRun
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.prompts import rendering
from conftest import run_async
from portal.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)
app = URLRouter(websocket_urlpatterns)


@pytest.fixture
def greeter():
    """An assistant on a prompt whose v1 uses {{name}} and v2 {{name}} and {{tone}}."""
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    assistant, prompt = greeter_on_two_versions(team, admin, backend, "local-echo")
    return assistant, admin, prompt


def talk(user, assistant, commands, *, replies):
    async def scenario():
        comm = WebsocketCommunicator(app, f"/ws/playground/{assistant.pk}/")
        comm.scope["user"] = user
        connected, _ = await comm.connect()
        assert connected
        for command in commands:
            await comm.send_json_to(command)
        received = [json.loads(await comm.receive_from(timeout=5)) for _ in range(replies)]
        await comm.disconnect()
        return received

    return run_async(scenario())


def api_refusal(version, variables) -> ServiceError:
    """What the API's renderer says for these variables (the API answers it as a 400)."""
    with pytest.raises(ServiceError) as refused:
        rendering.render(version, variables)
    return refused.value


def test_empty_variables_are_refused_like_missing_ones_and_nothing_is_created(greeter):
    assistant, admin, prompt = greeter
    version = prompt.versions.get(number=2)
    replies = talk(
        admin,
        assistant,
        [
            {"action": "send", "conversation": None, "content": "Hi", "variables": {}},
            {
                "action": "send",
                "conversation": None,
                "content": "Hi",
                "variables": {"name": "", "tone": "  "},
            },
            {
                "action": "send",
                "conversation": None,
                "content": "Hi",
                "variables": {"name": "Ada", "tone": ""},
            },
        ],
        replies=3,
    )
    absent, both_empty, one_empty = replies
    expected_both = api_refusal(version, {})
    assert absent["message"] == expected_both.message == "Missing variables: name, tone"
    assert both_empty == {
        "type": "error",
        "message": expected_both.message,
        "param": expected_both.param,
        "action": "send",
        "code": "missing_variable",
    }
    assert one_empty["message"] == api_refusal(version, {"name": "Ada"}).message
    assert one_empty["message"] == "Missing variable: tone"
    assert one_empty["param"] == "variables.tone"
    assert not ChatRun.objects.exists()
    assert not Message.objects.exists()
    assert not Conversation.objects.exists(), "a refused first message leaves no conversation"


def test_compare_refuses_empty_variables_of_either_version(greeter):
    assistant, admin, _ = greeter
    replies = talk(
        admin,
        assistant,
        [
            {
                "action": "compare",
                "content": "Hi",
                "versions": [1, 2],
                "variables": {"name": "Ada", "tone": ""},
            }
        ],
        replies=1,
    )
    assert replies[0]["type"] == "error" and replies[0]["action"] == "compare"
    assert replies[0]["message"] == "Missing variable: tone"
    assert not ChatRun.objects.exists()


def test_filled_variables_start_the_run_with_their_values(greeter):
    assistant, admin, _ = greeter
    replies = talk(
        admin,
        assistant,
        [
            {
                "action": "send",
                "conversation": None,
                "content": "Hi",
                "variables": {"name": "Ada", "tone": "warmly"},
            }
        ],
        replies=1,
    )
    assert replies[0]["type"] == "turn"
    run = ChatRun.objects.get(pk=replies[0]["run_id"])
    assert run.messages[0]["content"] == "Greet Ada, warmly."


def test_a_draft_with_an_empty_variable_is_refused_too(greeter):
    assistant, admin, _ = greeter
    replies = talk(
        admin,
        assistant,
        [
            {
                "action": "send",
                "conversation": None,
                "content": "Hi",
                "variables": {"name": "Ada", "tone": "warmly", "city": ""},
                "draft": "Greet {{name}} from {{city}}.",
            }
        ],
        replies=1,
    )
    assert replies[0]["message"] == "Missing variable: city"
    assert not ChatRun.objects.exists()
