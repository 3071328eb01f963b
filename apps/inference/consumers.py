"""WebSocket that streams one run to the browser: its state, deltas, then the final state.

It follows the run with :func:`~apps.inference.streaming.follow`, like the
gateway and the SSE endpoint, so a client that connects after the run finished
gets the whole output and the final message at once, and one that connects
mid-stream gets the text so far and then each new piece.
"""

import asyncio
import contextlib
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.inference.models import ChatRun
from apps.inference.streaming import delta_message, follow
from apps.teams.consumers import CLOSE_FORBIDDEN
from apps.teams.permissions import Action, can


@database_sync_to_async
def _visible_run(user, run_id: int) -> ChatRun | None:
    run = ChatRun.objects.select_related("team").filter(pk=run_id).first()
    if run is None or not can(user, run.team, Action.VIEW):
        return None
    return run


class RunStreamConsumer(AsyncWebsocketConsumer):
    streaming: asyncio.Task | None = None

    async def connect(self):
        run = await _visible_run(
            self.scope.get("user"), self.scope["url_route"]["kwargs"]["run_id"]
        )
        if run is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.accept()
        events = await follow(run.pk)  # subscribed first, state second: no gap
        await self.send(text_data=json.dumps({"type": "run.state", "status": run.status}))
        self.streaming = asyncio.ensure_future(self._stream(run.pk, events))

    async def _stream(self, run_id: int, events) -> None:
        async for event in events:
            if event.kind == "text":
                await self.send(text_data=json.dumps(delta_message(run_id, event)))
            elif event.kind == "done":
                await self.send(text_data=json.dumps(event.final))

    async def disconnect(self, code):
        if self.streaming is not None:
            self.streaming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.streaming

    async def receive(self, text_data=None, bytes_data=None):
        """Listen-only; cancelling goes through the API or the page's form."""
