"""The playground's WebSocket: the browser sends JSON commands, answers stream back.

Commands: ``{"action": "send", "conversation": id|null, "content": "...",
"variables": {...}, "draft": "..."|null}``, ``{"action": "compare",
"content": "...", "versions": [1, 2], "variables": {...}}`` and
``{"action": "stop", "run": id}``. Everything goes through the same services
as the pages and the API; a bad command gets an ``error`` message back and
changes nothing.
"""

import asyncio
import contextlib
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404

from apps.assistants.models import Assistant
from apps.conversations import selectors, services
from apps.core.errors import ServiceError
from apps.inference import services as inference
from apps.inference.models import ChatRun
from apps.inference.streaming import delta_message, follow
from apps.teams.consumers import CLOSE_FORBIDDEN
from apps.teams.permissions import Action, can

MAX_COMMAND_BYTES = 256 * 1024


@database_sync_to_async
def _assistant_for(user, assistant_id: int) -> Assistant | None:
    assistant = Assistant.objects.select_related("team").filter(pk=assistant_id).first()
    if assistant is None or not can(user, assistant.team, Action.USE):
        return None
    return assistant


def _filled(variables):
    """The variables whose boxes were filled in. An empty box is a variable not given,
    so the prompt renderer refuses it ("Missing variable: x") exactly as the API refuses
    one left out, instead of the model getting an empty value."""
    if not isinstance(variables, dict):
        return variables  # the service says what is wrong with it
    return {
        name: value
        for name, value in variables.items()
        if not (isinstance(value, str) and not value.strip())
    }


class PlaygroundConsumer(AsyncWebsocketConsumer):
    assistant: Assistant | None = None

    async def connect(self):
        self.runs: set[int] = set()
        self.streams: set[asyncio.Task] = set()
        self.user = self.scope.get("user")
        self.assistant = await _assistant_for(
            self.user, self.scope["url_route"]["kwargs"]["assistant_id"]
        )
        if self.assistant is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.accept()

    async def disconnect(self, code):
        streams = getattr(self, "streams", set())
        for task in streams:
            task.cancel()
        for task in list(streams):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def send_json(self, payload: dict) -> None:
        await self.send(text_data=json.dumps(payload))

    async def error(
        self, message: str, param: str | None = None, *, action=None, code: str | None = None
    ) -> None:
        """``action`` names the command refused, so the page shows the message beside it."""
        await self.send_json(
            {"type": "error", "message": message, "param": param, "action": action, "code": code}
        )

    async def receive(self, text_data=None, bytes_data=None):
        raw = text_data if text_data is not None else (bytes_data or b"").decode(errors="replace")
        if len(raw.encode()) > MAX_COMMAND_BYTES:
            await self.error(f"Commands are limited to {MAX_COMMAND_BYTES // 1024} KB.")
            return
        try:
            command = json.loads(raw)
        except ValueError:
            await self.error("Commands must be JSON objects.")
            return
        if not isinstance(command, dict):
            await self.error("Commands must be JSON objects.")
            return
        handler = {"send": self.do_send, "compare": self.do_compare, "stop": self.do_stop}.get(
            command.get("action")
        )
        if handler is None:
            await self.error("Unknown action; use send, compare or stop.", "action")
            return
        action = command["action"]
        try:
            await handler(command)
        except ServiceError as problem:
            await self.error(problem.message, problem.param, action=action, code=problem.code)
        except (PermissionDenied, Http404) as problem:
            await self.error(str(problem) or "Not allowed.", action=action)

    async def watch(self, run_id: int):
        """Subscribe before the client is told about the run, so nothing is missed."""
        self.runs.add(run_id)
        return await follow(run_id)

    def stream(self, run_id: int, events) -> None:
        """Then stream it: the text it produced before we looked, each new piece, its end."""
        task = asyncio.ensure_future(self._forward(run_id, events))
        self.streams.add(task)
        task.add_done_callback(self.streams.discard)

    async def _forward(self, run_id: int, events) -> None:
        async for event in events:
            if event.kind == "text":
                await self.send_json(delta_message(run_id, event))
            elif event.kind == "done":
                await self.send_json(event.final)

    async def do_send(self, command: dict) -> None:
        turn = await database_sync_to_async(self._send)(command)
        events = await self.watch(turn.run.pk)
        await self.send_json(
            {
                "type": "turn",
                "conversation": turn.conversation.pk,
                "run_id": turn.run.pk,
                "user_message": turn.user_message.pk,
                "prompt_version": turn.run.prompt_version.number
                if turn.run.prompt_version
                else None,
                "extra_variables": turn.extra_variables,
            }
        )
        self.stream(turn.run.pk, events)

    @transaction.atomic
    def _send(self, command: dict):
        """One transaction: a first message that is refused leaves no empty conversation."""
        conversation_id = command.get("conversation")
        if conversation_id is None:
            conversation = services.conversation_start(assistant=self.assistant, actor=self.user)
        elif isinstance(conversation_id, int):
            conversation = selectors.conversation_for(
                self.assistant.team, self.user, conversation_id
            )
            if conversation.assistant_id != self.assistant.pk:
                raise ServiceError(
                    "That conversation is with another assistant.", param="conversation"
                )
        else:
            raise ServiceError("conversation must be an id or null.", param="conversation")
        draft = command.get("draft")
        if draft is not None and not isinstance(draft, str):
            raise ServiceError("draft must be text.", param="draft")
        turn = services.message_send(
            conversation=conversation,
            actor=self.user,
            content=command.get("content"),
            variables=_filled(command.get("variables")),
            draft=draft,
        )
        turn.run = ChatRun.objects.select_related("prompt_version").get(pk=turn.run.pk)
        return turn

    async def do_compare(self, command: dict) -> None:
        turns = await database_sync_to_async(services.compare_send)(
            assistant=self.assistant,
            actor=self.user,
            content=command.get("content"),
            versions=command.get("versions"),
            variables=_filled(command.get("variables")),
        )
        watched = [(turn.run.pk, await self.watch(turn.run.pk)) for turn in turns]
        await self.send_json(
            {
                "type": "compare",
                "runs": [
                    {"run_id": t.run.pk, "prompt_version": t.run.prompt_version.number}
                    for t in turns
                ],
            }
        )
        for run_id, events in watched:
            self.stream(run_id, events)

    async def do_stop(self, command: dict) -> None:
        run_id = command.get("run")
        if run_id not in self.runs:
            await self.error("Only runs started here can be stopped here.", "run")
            return

        def stop():
            run = ChatRun.objects.select_related("team").get(pk=run_id)
            if not run.is_finished:
                inference.run_cancel(run=run, actor=self.user)

        await database_sync_to_async(stop)()
