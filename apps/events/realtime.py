"""Where a team's events go on the channel layer, and how they get there.

Group names come from here only; the bridge (Kafka mode) and the direct
hand-off (embedded default) both deliver through :func:`deliver`.
"""

import asyncio
from collections import defaultdict

from channels.layers import get_channel_layer

MESSAGE_TYPE = "events.batch"
# A team's events of one bridge batch travel as one channel-layer message (in order):
# one Redis round trip per team and batch instead of one per event.
MAX_PER_MESSAGE = 200


def events_group(team_id: int | str) -> str:
    return f"events.team.{team_id}"


async def deliver_async(events: list[dict]) -> None:
    """Send each event to its team's group: in order within a team, teams side by side."""
    layer = get_channel_layer()
    if layer is None or not events:
        return
    by_team: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        by_team[event["teamid"]].append(event)

    async def send_team(team_id: str, team_events: list[dict]) -> None:
        group = events_group(team_id)
        for start in range(0, len(team_events), MAX_PER_MESSAGE):
            chunk = team_events[start : start + MAX_PER_MESSAGE]
            await layer.group_send(group, {"type": MESSAGE_TYPE, "events": chunk})

    await asyncio.gather(*(send_team(t, evs) for t, evs in by_team.items()))


def deliver(events: list[dict]) -> None:
    from apps.inference.relay import run_on_layer

    run_on_layer(deliver_async, events)
