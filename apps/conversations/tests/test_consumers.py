"""The playground WebSocket over the real Redis channel layer."""

import json

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from apps.assistants import services as assistants
from apps.conversations.models import Message
from apps.inference import feed
from apps.inference.models import ChatRun
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.teams.consumers import CLOSE_FORBIDDEN
from apps.teams.models import Role
from apps.teams.tests.factories import member_of
from conftest import run_async
from portal.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)
app = URLRouter(websocket_urlpatterns)


@pytest.fixture
def bot():
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    assistant = assistants.assistant_create(
        team=team,
        actor=admin,
        name="Bot",
        backend=backend.pk,
        model="local-echo",
        instructions="Be kind.",
    )
    return assistant, admin


def talk(user, assistant, commands, *, replies):
    """Connect, send each command, collect ``replies`` messages."""

    async def scenario():
        comm = WebsocketCommunicator(app, f"/ws/playground/{assistant.pk}/")
        comm.scope["user"] = user
        connected, code = await comm.connect()
        if not connected:
            return code, []
        received = []
        for command in commands:
            await comm.send_to(
                text_data=command if isinstance(command, str) else json.dumps(command)
            )
        for _ in range(replies):
            received.append(json.loads(await comm.receive_from(timeout=5)))
        await comm.disconnect()
        return None, received

    return run_async(scenario())


def test_bad_commands_get_errors_and_change_nothing(bot):
    assistant, admin = bot
    _, replies = talk(
        admin,
        assistant,
        [
            "this is not json",
            "[1, 2]",
            {"action": "dance"},
            {"action": "send", "content": "x" * 300_000},
            {"action": "send", "content": ""},
            {"action": "stop", "run": 12345},
            {"action": "send", "conversation": "abc", "content": "hi"},
        ],
        replies=7,
    )
    assert [r["type"] for r in replies] == ["error"] * 7
    assert "JSON" in replies[0]["message"] and "JSON" in replies[1]["message"]
    assert replies[2]["param"] == "action"
    assert "limited" in replies[3]["message"]
    assert replies[4]["param"] == "content"
    assert replies[5]["param"] == "run"
    assert replies[6]["param"] == "conversation"
    assert not ChatRun.objects.exists() and not Message.objects.exists()


def test_send_starts_a_turn_and_streams_the_runs_messages(bot):
    assistant, admin = bot

    async def scenario():
        from channels.db import database_sync_to_async

        comm = WebsocketCommunicator(app, f"/ws/playground/{assistant.pk}/")
        comm.scope["user"] = admin
        await comm.connect()
        await comm.send_json_to({"action": "send", "conversation": None, "content": "Hello"})
        turn = json.loads(await comm.receive_from(timeout=5))
        await database_sync_to_async(feed.publish)(
            turn["run_id"],
            {"type": "run.delta", "run_id": turn["run_id"], "delta": "Hi", "offset": 0},
            reply=None,
        )
        delta = json.loads(await comm.receive_from(timeout=5))
        await comm.disconnect()
        return turn, delta

    turn, delta = run_async(scenario())
    assert turn["type"] == "turn" and turn["conversation"]
    run = ChatRun.objects.get(pk=turn["run_id"])
    assert run.assistant == assistant and run.messages[-1] == {"role": "user", "content": "Hello"}
    assert delta == {"type": "run.delta", "run_id": run.pk, "delta": "Hi", "offset": 0}


def test_other_teams_and_viewers_are_refused(bot):
    assistant, _ = bot
    _, outsider = team_with_admin()
    code, _ = talk(outsider, assistant, [], replies=0)
    assert code == CLOSE_FORBIDDEN
    code, _ = talk(member_of(assistant.team, Role.VIEWER), assistant, [], replies=0)
    assert code == CLOSE_FORBIDDEN


def test_continuing_someone_elses_conversation_is_refused(bot):
    assistant, admin = bot
    from apps.conversations import services

    mine = services.conversation_start(assistant=assistant, actor=admin)
    teammate = member_of(assistant.team, Role.MEMBER)
    _, replies = talk(
        teammate,
        assistant,
        [{"action": "send", "conversation": mine.pk, "content": "hi"}],
        replies=1,
    )
    assert replies[0]["type"] == "error"
    assert not ChatRun.objects.exists()


def test_stop_cancels_a_run_started_here(bot):
    assistant, admin = bot

    async def scenario():
        comm = WebsocketCommunicator(app, f"/ws/playground/{assistant.pk}/")
        comm.scope["user"] = admin
        await comm.connect()
        await comm.send_json_to({"action": "send", "conversation": None, "content": "Hello"})
        turn = json.loads(await comm.receive_from(timeout=5))
        await comm.send_json_to({"action": "stop", "run": turn["run_id"]})
        done = json.loads(await comm.receive_from(timeout=5))
        await comm.disconnect()
        return turn, done

    turn, done = run_async(scenario())
    assert done["type"] == "run.done" and done["status"] == "cancelled"
    assert ChatRun.objects.get(pk=turn["run_id"]).status == "cancelled"


def test_compare_announces_one_run_per_version():
    from apps.prompts import services as prompts

    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    prompt = prompts.prompt_create(team=team, actor=admin, name="P", system="One")
    prompts.version_create(
        prompt=prompt, actor=admin, system="Two", messages=[], parameters={}, commit_message="2"
    )
    prompts.label_move(
        prompt=prompt, actor=admin, label="production", version=prompt.versions.get(number=1)
    )
    assistant = assistants.assistant_create(
        team=team,
        actor=admin,
        name="Cmp",
        backend=backend.pk,
        model="local-echo",
        instructions_source="label",
        prompt="p",
        prompt_label="production",
    )
    _, replies = talk(
        admin, assistant, [{"action": "compare", "content": "Hi", "versions": [1, 2]}], replies=1
    )
    assert replies[0]["type"] == "compare"
    assert [r["prompt_version"] for r in replies[0]["runs"]] == [1, 2]
    runs = ChatRun.objects.filter(pk__in=[r["run_id"] for r in replies[0]["runs"]])
    assert {r.messages[0]["content"] for r in runs} == {"One", "Two"}
