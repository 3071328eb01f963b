"""WebSocket for a team's live notices (members joining, leaving, changing role).

Thin on purpose: membership is checked with the same permission helper as the
pages, and the group name comes from :mod:`apps.teams.realtime`.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.template.loader import render_to_string

from apps.teams.models import Team
from apps.teams.permissions import Action, can
from apps.teams.realtime import team_group

CLOSE_FORBIDDEN = 4403


@database_sync_to_async
def _visible_team(user, slug: str) -> Team | None:
    team = Team.objects.filter(slug=slug).first()
    if team is None or not can(user, team, Action.VIEW):
        return None
    return team


class TeamGroupConsumer(AsyncWebsocketConsumer):
    """A listen-only socket on one of a team's groups, for members who may view it.

    Logged-out visitors, outsiders and unknown slugs are closed with
    ``CLOSE_FORBIDDEN`` before joining anything; ``group_of`` (team id -> group
    name, from the module that owns the group) is what subclasses set.
    """

    group: str | None = None
    group_of = staticmethod(team_group)

    async def connect(self):
        team = await _visible_team(
            self.scope.get("user"), self.scope["url_route"]["kwargs"]["team_slug"]
        )
        if team is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = self.group_of(team.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """Clients only listen; anything they send is ignored."""


class TeamNoticeConsumer(TeamGroupConsumer):
    group_of = staticmethod(team_group)

    async def team_notice(self, event):
        await self.send(text_data=render_to_string("teams/_notice.html", {"text": event["text"]}))
