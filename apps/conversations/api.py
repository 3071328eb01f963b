"""Conversations and messages over the REST API, under a team (your own conversations)."""

from django.http import HttpRequest
from ninja import Query, Router, Status

from apps.assistants.api import assistant_param
from apps.assistants.selectors import assistant_for_team
from apps.conversations import selectors, services
from apps.conversations.models import Conversation, Message
from apps.conversations.schemas import (
    CONVERSATIONS_ORDER,
    ConversationIn,
    ConversationListQuery,
    ConversationOut,
    MessageIn,
    MessageOut,
    TurnOut,
)
from apps.core.api_errors import BODY_ERRORS, with_errors
from apps.core.api_pagination import Rows, paginated
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
    response=with_errors(list[ConversationOut]),
    operation_id="conversations_list",
    summary="Your conversations, newest first",
)
@paginated
def conversations_list(request: HttpRequest, team_slug: str, filters: Query[ConversationListQuery]):
    """Only your own: a person's conversations, or those an API key started. An
    unknown ``assistant`` is 404, not an empty list."""
    team = team_for_request(request, team_slug)
    bot = assistant_param(team, filters.assistant) if filters.assistant else None
    found = selectors.conversations_for(team, request.user, assistant=bot, search=filters.q[:200])
    return Rows(CONVERSATIONS_ORDER.apply(found, filters.order), each=conversation_out)


@router.post(
    "/{team_slug}/conversations",
    response=with_errors({201: ConversationOut}, *BODY_ERRORS),
    operation_id="conversations_create",
    summary="Start a conversation",
)
def conversations_create(request: HttpRequest, team_slug: str, payload: ConversationIn):
    """A conversation with one of the team's assistants; send messages to it next."""
    assistant = assistant_for_team(team_for_request(request, team_slug), payload.assistant)
    conversation = services.conversation_start(
        assistant=assistant, actor=request.user, title=payload.title
    )
    return Status(201, conversation_out(conversation))


@router.get(
    "/{team_slug}/conversations/{conversation_id}",
    response=with_errors(ConversationOut),
    operation_id="conversations_get",
    summary="One conversation",
)
def conversations_get(request: HttpRequest, team_slug: str, conversation_id: int):
    """Someone else's conversation is 404."""
    return conversation_out(
        selectors.conversation_for(
            team_for_request(request, team_slug), request.user, conversation_id
        )
    )


@router.delete(
    "/{team_slug}/conversations/{conversation_id}",
    response=with_errors({204: None}),
    operation_id="conversations_delete",
    summary="Delete a conversation",
)
def conversations_delete(request: HttpRequest, team_slug: str, conversation_id: int):
    """Its messages go with it; the runs that answered stay in the team's usage."""
    conversation = selectors.conversation_for(
        team_for_request(request, team_slug), request.user, conversation_id
    )
    services.conversation_delete(conversation=conversation, actor=request.user)
    return Status(204, None)


@router.get(
    "/{team_slug}/conversations/{conversation_id}/messages",
    response=with_errors(list[MessageOut]),
    operation_id="messages_list",
    summary="Messages of a conversation, oldest first",
)
@paginated
def messages_list(request: HttpRequest, team_slug: str, conversation_id: int):
    """Assistant messages carry their run's status, model and usage."""
    conversation = selectors.conversation_for(
        team_for_request(request, team_slug), request.user, conversation_id
    )
    return Rows(selectors.messages_of(conversation), each=message_out)


@router.post(
    "/{team_slug}/conversations/{conversation_id}/messages",
    response=with_errors({202: TurnOut}, *BODY_ERRORS),
    operation_id="messages_send",
    summary="Send a message; the answer is a run a worker streams",
)
def messages_send(request: HttpRequest, team_slug: str, conversation_id: int, payload: MessageIn):
    """Answers at once (202) with your message and the assistant's queued one; its
    ``run_id`` is the run to follow. A variable the template needs but didn't get
    is 400 naming it (``variables.<name>``)."""
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
