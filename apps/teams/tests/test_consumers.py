"""The team WebSocket over the real Redis channel layer."""

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from apps.teams import services
from apps.teams.consumers import CLOSE_FORBIDDEN
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of
from conftest import run_async as run
from portal.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)
app = URLRouter(websocket_urlpatterns)


def communicator(user, slug):
    comm = WebsocketCommunicator(app, f"/ws/teams/{slug}/")
    comm.scope["user"] = user
    return comm


def test_member_receives_live_notices_of_membership_changes():
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    viewer = member_of(team, Role.VIEWER, display_name="Vera")

    async def scenario():
        comm = communicator(owner, team.slug)
        connected, _ = await comm.connect()
        assert connected
        await database_sync_to_async(services.membership_leave)(team=team, user=viewer)
        message = await comm.receive_from(timeout=5)
        await comm.disconnect()
        return message

    message = run(scenario())
    assert "Vera left the team." in message
    assert 'id="team-notices"' in message


@pytest.mark.parametrize("who", ["outsider", "anonymous"])
def test_non_members_are_refused(who):
    team = TeamFactory()
    member_of(team, Role.OWNER)
    user = member_of(TeamFactory(), Role.OWNER) if who == "outsider" else AnonymousUser()

    async def scenario():
        comm = communicator(user, team.slug)
        connected, code = await comm.connect()
        return connected, code

    connected, code = run(scenario())
    assert not connected
    assert code == CLOSE_FORBIDDEN


def test_unknown_team_is_refused():
    user = member_of(TeamFactory(), Role.OWNER)

    async def scenario():
        return await communicator(user, "no-such-team").connect()

    connected, code = run(scenario())
    assert not connected and code == CLOSE_FORBIDDEN


def test_other_teams_notices_do_not_leak():
    team, other = TeamFactory(), TeamFactory()
    owner = member_of(team, Role.OWNER)
    member_of(other, Role.OWNER)
    leaver = member_of(other, Role.MEMBER)

    async def scenario():
        comm = communicator(owner, team.slug)
        await comm.connect()
        await database_sync_to_async(services.membership_leave)(team=other, user=leaver)
        nothing = await comm.receive_nothing(timeout=1)
        await comm.disconnect()
        return nothing

    assert run(scenario()) is True
