"""WebSocket of a team's live events: ``/ws/teams/<slug>/events/``.

Thin: the same permission helper as the pages decides (a logged-out browser,
a non-member or a crafted slug of another team is closed with 4403), the group
name comes from :mod:`apps.events.realtime`, and anything the client sends is
ignored, so it can't ask for another team's group.
"""

from channels.db import database_sync_to_async

from apps.events.presentation import cached_frames, frames
from apps.events.realtime import events_group
from apps.teams.consumers import TeamGroupConsumer


class TeamEventsConsumer(TeamGroupConsumer):
    group_of = staticmethod(events_group)

    async def events_batch(self, message):
        # The first socket of the team in this process renders the batch (one lookup of
        # key names and the team's clock); the others find it rendered.
        texts = cached_frames(message["events"])
        if texts is None:
            texts = await database_sync_to_async(frames)(message["events"])
        for text in texts:
            await self.send(text_data=text)
