"""Channel-layer group names and pushes for a team.

Group names come from here only, so a consumer and a sender can never
disagree about where a team's messages go.
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def team_group(team_id: int) -> str:
    return f"team.{team_id}"


def team_notice_on_commit(*, team_id: int, text: str) -> None:
    """Tell everyone watching the team, once the change is committed."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(
                team_group(team_id), {"type": "team.notice", "text": text}
            )

    transaction.on_commit(send)
