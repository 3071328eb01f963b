"""The run WebSocket over the real Redis channel layer."""

import json

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from apps.inference import feed
from apps.inference.models import ChatRun
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.teams.consumers import CLOSE_FORBIDDEN
from conftest import run_async as run
from portal.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)
app = URLRouter(websocket_urlpatterns)


def make_run(**fields):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    created = ChatRun.objects.create(
        team=team,
        backend=backend,
        model="local-echo",
        messages=[{"role": "user", "content": "x"}],
        **fields,
    )
    return created, admin


def communicator(user, run_id):
    comm = WebsocketCommunicator(app, f"/ws/runs/{run_id}/")
    comm.scope["user"] = user
    return comm


def test_member_gets_state_then_relayed_deltas():
    chat_run, admin = make_run(status="running")

    async def scenario():
        from channels.db import database_sync_to_async

        comm = communicator(admin, chat_run.pk)
        connected, _ = await comm.connect()
        assert connected
        state = json.loads(await comm.receive_from(timeout=5))
        message = {"type": "run.delta", "run_id": chat_run.pk, "delta": "Hel", "offset": 0}
        await database_sync_to_async(feed.publish)(chat_run.pk, message, reply=None)
        delta = json.loads(await comm.receive_from(timeout=5))
        await comm.disconnect()
        return state, delta

    state, delta = run(scenario())
    assert state == {"type": "run.state", "status": "running"}
    assert delta["delta"] == "Hel"


def test_finished_run_sends_its_final_message_on_connect():
    chat_run, admin = make_run(
        status="succeeded", output="done", total_tokens=3, prompt_tokens=1, completion_tokens=2
    )

    async def scenario():
        comm = communicator(admin, chat_run.pk)
        await comm.connect()
        await comm.receive_from(timeout=5)
        text = json.loads(await comm.receive_from(timeout=5))
        final = json.loads(await comm.receive_from(timeout=5))
        await comm.disconnect()
        assert (text["type"], text["delta"], text["offset"]) == ("run.delta", "done", 0)
        return final

    final = run(scenario())
    assert final["type"] == "run.done" and final["output"] == "done"
    assert final["usage"]["total_tokens"] == 3


def test_other_teams_cannot_watch_a_run():
    chat_run, _ = make_run()
    _, outsider = team_with_admin()

    async def scenario():
        return await communicator(outsider, chat_run.pk).connect()

    connected, code = run(scenario())
    assert not connected and code == CLOSE_FORBIDDEN


def test_late_joiner_gets_what_was_streamed_so_far_then_offsets_continue():
    from apps.inference.relay import DeltaRelay

    chat_run, admin = make_run(status="running")
    relay = DeltaRelay(chat_run.pk)
    relay.push("Hello")  # the first delta goes out at once, before anyone watches

    async def scenario():
        from channels.db import database_sync_to_async

        comm = communicator(admin, chat_run.pk)
        await comm.connect()
        state = json.loads(await comm.receive_from(timeout=5))
        so_far = json.loads(await comm.receive_from(timeout=5))
        relay.pending.append(" world")
        await database_sync_to_async(relay.flush)()
        delta = json.loads(await comm.receive_from(timeout=5))
        await comm.disconnect()
        return state, so_far, delta

    state, so_far, delta = run(scenario())
    relay.forget()
    assert state == {"type": "run.state", "status": "running"}
    assert (so_far["offset"], so_far["delta"]) == (0, "Hello")
    assert (delta["offset"], delta["delta"]) == (5, " world")


def test_an_idle_socket_survives_past_the_layers_blocking_read():
    """Quiet for longer than the follower's re-read of the row (5 s) and Redis's
    blocking read: the socket stays open and still gets the next piece."""
    import asyncio

    chat_run, admin = make_run(status="running")

    async def scenario():
        from channels.db import database_sync_to_async

        comm = communicator(admin, chat_run.pk)
        await comm.connect()
        await comm.receive_from(timeout=5)
        await asyncio.sleep(7)
        await database_sync_to_async(feed.publish)(
            chat_run.pk,
            {"type": "run.delta", "run_id": chat_run.pk, "delta": "late", "offset": 0},
            reply=None,
        )
        delta = json.loads(await comm.receive_from(timeout=5))
        await comm.disconnect()
        return delta

    assert run(scenario())["delta"] == "late"
