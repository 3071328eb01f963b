"""Writes for conversations, and sending a message to an assistant.

Sending renders the assistant's instructions (by label, pin, inline text or
an unsaved draft), adds the memory window of past messages, creates the run
through the inference service (which hands it to a worker on commit) and
records both sides of the turn, all in one transaction.
"""

from dataclasses import dataclass

from django.db import transaction

from apps.assistants import resolution
from apps.assistants.models import Assistant
from apps.conversations import selectors
from apps.conversations.models import Conversation, Message
from apps.core.errors import ServiceError
from apps.inference import services as inference
from apps.inference.models import ChatRun
from apps.teams.permissions import Action, api_key_of, require, require_use_of, user_of

MAX_MESSAGE_CHARS = 100_000


@dataclass
class Turn:
    conversation: Conversation | None
    user_message: Message | None
    assistant_message: Message | None
    run: ChatRun
    extra_variables: list[str]


def _check_content(content) -> str:
    if not isinstance(content, str) or not content.strip():
        raise ServiceError("Write a message first.", param="content")
    if len(content) > MAX_MESSAGE_CHARS:
        raise ServiceError(
            f"Messages are limited to {MAX_MESSAGE_CHARS:,} characters.",
            param="content",
            code="too_large",
        )
    return content


def _usable(assistant: Assistant) -> None:
    if assistant.is_archived:
        raise ServiceError("This assistant is archived; restore it to chat.", param="assistant")
    if assistant.backend is None:
        raise ServiceError("This assistant has no backend.", param="backend")


@transaction.atomic
def conversation_start(*, assistant: Assistant, actor, title: str = "") -> Conversation:
    require(actor, assistant.team, Action.USE)
    require_use_of(actor, assistant=assistant)
    _usable(assistant)
    return Conversation.objects.create(
        team=assistant.team,
        assistant=assistant,
        user=user_of(actor),
        api_key=api_key_of(actor),
        title=title.strip()[:200],
    )


def _run_for(assistant: Assistant, actor, messages: list[dict], resolved) -> ChatRun:
    parameters = {**resolved.parameters, **assistant.parameters()}
    return inference.run_create(
        team=assistant.team,
        actor=actor,
        backend_id=assistant.backend_id,
        model=assistant.model,
        messages=messages,
        parameters=parameters,
        fallbacks=assistant.fallbacks,
        assistant=assistant,
        prompt_version=resolved.prompt_version,
    )


@transaction.atomic
def message_send(
    *, conversation: Conversation, actor, content: str, variables=None, draft: str | None = None
) -> Turn:
    """Append the user's message and queue the assistant's answer."""
    require(actor, conversation.team, Action.USE)
    content = _check_content(content)
    if variables is not None and not isinstance(variables, dict):
        raise ServiceError("variables must be an object.", param="variables")
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("assistant", "assistant__prompt")
        .get(pk=conversation.pk)
    )
    assistant = conversation.assistant
    _usable(assistant)
    resolved = resolution.resolve(assistant, variables=variables, draft=draft)
    past = selectors.history(conversation, assistant.memory_messages)
    messages = [*resolved.messages, *past, {"role": "user", "content": content}]
    user_message = Message.objects.create(
        conversation=conversation, role=Message.Role.USER, content=content
    )
    run = _run_for(assistant, actor, messages, resolved)
    assistant_message = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, run=run
    )
    if not conversation.title:
        conversation.title = content.strip().splitlines()[0][:80]
    conversation.save(update_fields=["title", "updated_at"])
    return Turn(conversation, user_message, assistant_message, run, resolved.extra_variables)


@transaction.atomic
def compare_send(
    *, assistant: Assistant, actor, content: str, versions: list, variables=None
) -> list[Turn]:
    """The same message to several prompt versions side by side, outside any conversation."""
    require(actor, assistant.team, Action.USE)
    content = _check_content(content)
    _usable(assistant)
    if assistant.prompt is None:
        raise ServiceError(
            "Comparing needs an assistant whose instructions come from a prompt.", param="versions"
        )
    if not isinstance(versions, list) or not 2 <= len(versions) <= 4:
        raise ServiceError("Pick two to four versions to compare.", param="versions")
    turns = []
    for number in versions:
        version = (
            assistant.prompt.versions.filter(number=number).first()
            if isinstance(number, int)
            else None
        )
        if version is None:
            raise ServiceError(
                f"Prompt {assistant.prompt.slug} has no version {number!r}.",
                param="versions",
                code="not_found",
            )
        resolved = resolution.resolve(assistant, variables=variables, version=version)
        run = _run_for(
            assistant, actor, [*resolved.messages, {"role": "user", "content": content}], resolved
        )
        turns.append(Turn(None, None, None, run, resolved.extra_variables))
    return turns


@transaction.atomic
def conversation_delete(*, conversation: Conversation, actor) -> None:
    require(actor, conversation.team, Action.USE)
    key = api_key_of(actor)
    owned = conversation.api_key_id == key.pk if key else conversation.user_id == actor.pk
    if not owned:
        raise ServiceError("Only its owner can delete a conversation.", code="forbidden")
    conversation.delete()
