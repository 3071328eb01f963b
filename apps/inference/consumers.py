"""WebSocket that streams one run to the browser: deltas, then the final state.

A client that connects after the run finished gets the final message at once,
so a page never waits for a stream that already ended.
"""

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.inference.executor import final_message
from apps.inference.models import ChatRun
from apps.inference.relay import partial_output, run_group
from apps.teams.consumers import CLOSE_FORBIDDEN
from apps.teams.permissions import Action, can


@database_sync_to_async
def _visible_run(user, run_id: int) -> ChatRun | None:
    run = ChatRun.objects.select_related("team").filter(pk=run_id).first()
    if run is None or not can(user, run.team, Action.VIEW):
        return None
    return run


@database_sync_to_async
def _snapshot(run: ChatRun) -> tuple[ChatRun, str, dict | None]:
    """The run's text so far, and its final message (with what the ledger billed) if it ended."""
    partial = partial_output(run.pk)
    run.refresh_from_db()
    final = final_message(run, list(run.usage_records.all())) if run.is_finished else None
    return run, partial, final


class RunStreamConsumer(AsyncWebsocketConsumer):
    group: str | None = None

    async def connect(self):
        run = await _visible_run(
            self.scope.get("user"), self.scope["url_route"]["kwargs"]["run_id"]
        )
        if run is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = run_group(run.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # Joined first, snapshot second: nothing streamed in between is missed.
        run, partial, final = await _snapshot(run)
        output = run.output if run.is_finished else partial
        await self.send(
            text_data=json.dumps({"type": "run.state", "status": run.status, "output": output})
        )
        if final is not None:
            await self.send(text_data=json.dumps(final))

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """Listen-only; cancelling goes through the API or the page's form."""

    async def run_delta(self, event):
        await self.send(text_data=json.dumps(event))

    async def run_done(self, event):
        await self.send(text_data=json.dumps(event))
