"""Reads for conversations; no side effects."""

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.conversations.models import Conversation, Message
from apps.teams.models import Team
from apps.teams.permissions import api_key_of


def conversations_for(team: Team, user, *, assistant=None, search: str = "") -> QuerySet:
    """The conversations a user (or an API key) owns in a team, newest first,
    optionally matching text."""
    key = api_key_of(user)
    owner = Q(api_key=key) if key is not None else Q(user=user, api_key__isnull=True)
    queryset = Conversation.objects.filter(owner, team=team).select_related("assistant")
    if assistant is not None:
        queryset = queryset.filter(assistant=assistant)
    if search:
        matches = Message.objects.filter(
            Q(content__icontains=search) | Q(run__output__icontains=search)
        ).values("conversation_id")
        queryset = queryset.filter(Q(title__icontains=search) | Q(pk__in=matches))
    return queryset.order_by("-updated_at")


def conversation_for(team: Team, user, conversation_id: int) -> Conversation:
    conversation = conversations_for(team, user).filter(pk=conversation_id).first()
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def messages_of(conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.select_related("run", "run__prompt_version").order_by(
        "created_at", "pk"
    )


def history(conversation: Conversation, window: int) -> list[dict]:
    """The last ``window`` messages as chat messages for the model.

    Assistant turns that failed without producing text are left out: the model
    should not see an empty answer as something it said.
    """
    if window <= 0:
        return []
    recent = list(messages_of(conversation).order_by("-created_at", "-pk")[:window])
    turns = []
    for message in reversed(recent):
        text = message.text
        if message.role == Message.Role.ASSISTANT and not text:
            continue
        turns.append({"role": message.role, "content": text})
    return turns
