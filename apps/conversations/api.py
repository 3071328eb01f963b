"""Conversations and messages over the REST API, under a team (your own conversations)."""

from django.http import HttpRequest
from ninja import Query, Router, Status

from apps.assistants.selectors import assistant_for_team
from apps.conversations import selectors, services
from apps.conversations.models import Conversation, Message
from apps.conversations.schemas import (
    ConversationIn,
    ConversationOut,
    MessageIn,
    MessageOut,
    TurnOut,
)
from apps.teams.selectors import team_for_request

router = Router(tags=["conversations"])


def conversation_out(c: Conversation) -> ConversationOut:
    return ConversationOut(
        id=c.pk,
        assistant=c.assistant.slug,
        title=c.title,
        created_at=c.created_at,
        updated_at=c.updated_at,
    )


def message_out(m: Message) -> MessageOut:
    run = m.run
    return MessageOut(
        id=m.pk,
        role=m.role,
        content=m.text,
        run_id=m.run_id,
        status=run.status if run else None,
        model=(run.served_model or run.model) if run else None,
        prompt_version=run.prompt_version.number if run and run.prompt_version else None,
        total_tokens=run.total_tokens if run else None,
        latency_ms=run.latency_ms if run else None,
        created_at=m.created_at,
    )


@router.get(
    "/{team_slug}/conversations",
    response=list[ConversationOut],
    operation_id="conversations_list",
    summary="Your conversations, newest first",
)
def conversations_list(
    request: HttpRequest,
    team_slug: str,
    q: str = "",
    assistant: str | None = None,
    limit: int = Query(50, ge=1, le=200),
):
    team = team_for_request(request, team_slug)
    bot = assistant_for_team(team, assistant) if assistant else None
    found = selectors.conversations_for(team, request.user, assistant=bot, search=q[:200])
    return [conversation_out(c) for c in found[:limit]]


@router.post(
    "/{team_slug}/conversations",
    response={201: ConversationOut},
    operation_id="conversations_create",
    summary="Start a conversation",
)
def conversations_create(request: HttpRequest, team_slug: str, payload: ConversationIn):
    assistant = assistant_for_team(team_for_request(request, team_slug), payload.assistant)
    conversation = services.conversation_start(
        assistant=assistant, actor=request.user, title=payload.title
    )
    return Status(201, conversation_out(conversation))


@router.get(
    "/{team_slug}/conversations/{conversation_id}",
    response=ConversationOut,
    operation_id="conversations_get",
    summary="One conversation",
)
def conversations_get(request: HttpRequest, team_slug: str, conversation_id: int):
    return conversation_out(
        selectors.conversation_for(
            team_for_request(request, team_slug), request.user, conversation_id
        )
    )


@router.delete(
    "/{team_slug}/conversations/{conversation_id}",
    response={204: None},
    operation_id="conversations_delete",
    summary="Delete a conversation",
)
def conversations_delete(request: HttpRequest, team_slug: str, conversation_id: int):
    conversation = selectors.conversation_for(
        team_for_request(request, team_slug), request.user, conversation_id
    )
    services.conversation_delete(conversation=conversation, actor=request.user)
    return Status(204, None)


@router.get(
    "/{team_slug}/conversations/{conversation_id}/messages",
    response=list[MessageOut],
    operation_id="messages_list",
    summary="Messages of a conversation, oldest first",
)
def messages_list(request: HttpRequest, team_slug: str, conversation_id: int):
    conversation = selectors.conversation_for(
        team_for_request(request, team_slug), request.user, conversation_id
    )
    return [message_out(m) for m in selectors.messages_of(conversation)]


@router.post(
    "/{team_slug}/conversations/{conversation_id}/messages",
    response={202: TurnOut},
    operation_id="messages_send",
    summary="Send a message; the answer is a run a worker streams",
)
def messages_send(request: HttpRequest, team_slug: str, conversation_id: int, payload: MessageIn):
    conversation = selectors.conversation_for(
        team_for_request(request, team_slug), request.user, conversation_id
    )
    turn = services.message_send(
        conversation=conversation,
        actor=request.user,
        content=payload.content,
        variables=payload.variables,
        draft=payload.draft,
    )
    assistant_message = Message.objects.select_related("run", "run__prompt_version").get(
        pk=turn.assistant_message.pk
    )
    return Status(
        202,
        TurnOut(
            conversation=conversation.pk,
            user_message=message_out(turn.user_message),
            assistant_message=message_out(assistant_message),
            extra_variables=turn.extra_variables,
        ),
    )
