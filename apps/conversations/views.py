"""Conversation pages: list with search, delete. Opening one continues it in the playground."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.conversations import selectors, services
from apps.core.errors import ServiceError
from apps.teams.decorators import team_view
from apps.teams.permissions import Action


@team_view(Action.VIEW)
def conversation_list(request, team):
    query = request.GET.get("q", "").strip()[:200]
    conversations = selectors.conversations_for(team, request.user, search=query)[:100]
    return render(
        request, "conversations/list.html", {"conversations": conversations, "query": query}
    )


@team_view(Action.VIEW)
def conversation_open(request, team, conversation_id: int):
    conversation = selectors.conversation_for(team, request.user, conversation_id)
    url = reverse("assistants:playground", args=[team.slug, conversation.assistant.slug])
    return redirect(f"{url}?conversation={conversation.pk}")


@require_POST
@team_view(Action.USE)
def conversation_delete(request, team, conversation_id: int):
    conversation = selectors.conversation_for(team, request.user, conversation_id)
    try:
        services.conversation_delete(conversation=conversation, actor=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Conversation deleted.")
    return redirect("conversations:list", team_slug=team.slug)
