"""WebSocket of a team's live events: ``/ws/teams/<slug>/events/``.

Thin: the same permission helper as the pages decides (a logged-out browser,
a non-member or a crafted slug of another team is closed with 4403), the group
name comes from :mod:`apps.events.realtime`, and anything the client sends is
ignored, so it can't ask for another team's group.
"""

from apps.events.presentation import frame
from apps.events.realtime import events_group
from apps.teams.consumers import TeamGroupConsumer


class TeamEventsConsumer(TeamGroupConsumer):
    group_of = staticmethod(events_group)

    async def events_batch(self, message):
        for event in message["events"]:
            await self.send(text_data=frame(event))
