"""WebSocket of a team's live events: ``/ws/teams/<slug>/events/``.

Thin: the same permission helper as the pages decides (a logged-out browser,
a non-member or a crafted slug of another team is closed with 4403), the group
name comes from :mod:`apps.events.realtime`, and anything the client sends is
ignored, so it can't ask for another team's group.
"""

from channels.generic.websocket import AsyncWebsocketConsumer

from apps.events.presentation import frame
from apps.events.realtime import events_group
from apps.teams.consumers import CLOSE_FORBIDDEN, _visible_team


class TeamEventsConsumer(AsyncWebsocketConsumer):
    group: str | None = None

    async def connect(self):
        team = await _visible_team(
            self.scope.get("user"), self.scope["url_route"]["kwargs"]["team_slug"]
        )
        if team is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = events_group(team.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """Clients only listen."""

    async def events_batch(self, message):
        for event in message["events"]:
            await self.send(text_data=frame(event))
