"""Assistant pages: list and create, settings, duplicate, archive, the playground."""

from django.contrib import messages
from django.db.models import prefetch_related_objects
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.assistants import resolution, services
from apps.assistants.forms import AssistantForm
from apps.assistants.models import InstructionsSource
from apps.assistants.selectors import assistant_for_team, assistants_for_team
from apps.conversations import selectors as conversation_selectors
from apps.core.errors import ServiceError
from apps.inference.selectors import backends_for_team
from apps.prompts.rendering import extract_variables
from apps.prompts.selectors import prompts_for_team
from apps.teams.decorators import team_view
from apps.teams.permissions import Action, can
from apps.usage import ledger as usage_ledger


def _form(team, data=None, initial=None, prompt=None):
    versions = prompt.versions.select_related("prompt").order_by("-number") if prompt else []
    return AssistantForm(
        data,
        initial=initial,
        backends=backends_for_team(team, include_disabled=False),
        prompts=prompts_for_team(team),
        versions=versions,
    )


def _save(request, form, call):
    """Run the service; its refusal lands on the form field it names."""
    if not form.is_valid():
        return None
    try:
        return call(form.service_data())
    except ServiceError as error:
        form.add_error(error.param if error.param in form.fields else None, error.message)
        return None


@team_view(Action.VIEW)
@require_http_methods(["GET", "POST"])
def assistant_list(request, team):
    show_archived = request.GET.get("archived") == "1"
    selected_prompt = None
    if request.method == "POST":
        if not can(request.user, team, Action.EDIT):
            return render(
                request, "403.html", {"exception": "Viewers can't create assistants."}, status=403
            )
        slug = request.POST.get("prompt")
        selected_prompt = team.prompts.filter(slug=slug).first() if slug else None
    form = _form(
        team,
        request.POST or None,
        initial={"instructions_source": "inline"},
        prompt=selected_prompt,
    )
    if request.method == "POST":
        assistant = _save(
            request,
            form,
            lambda data: services.assistant_create(team=team, actor=request.user, **data),
        )
        if assistant is not None:
            messages.success(request, f"Assistant {assistant.name} created.")
            return redirect("assistants:playground", team_slug=team.slug, slug=assistant.slug)
    context = {
        "assistants": assistants_for_team(team, include_archived=show_archived),
        "form": form,
        "show_archived": show_archived,
    }
    return render(
        request, "assistants/list.html", context, status=400 if request.method == "POST" else 200
    )


def _initial(assistant) -> dict:
    return {
        "name": assistant.name,
        "description": assistant.description,
        "backend": assistant.backend_id,
        "model": assistant.model,
        "instructions_source": assistant.instructions_source,
        "instructions": assistant.instructions,
        "prompt": assistant.prompt.slug if assistant.prompt else "",
        "prompt_label": assistant.prompt_label,
        "prompt_version": assistant.prompt_version.number if assistant.prompt_version else None,
        "temperature": assistant.temperature,
        "top_p": assistant.top_p,
        "max_tokens": assistant.max_tokens,
        "memory_messages": assistant.memory_messages,
        "stop": assistant.stop or "",
        "tools": assistant.tools or "",
        "fallbacks": assistant.fallbacks or "",
    }


@team_view(Action.VIEW)
@require_http_methods(["GET", "POST"])
def assistant_settings(request, team, slug: str):
    assistant = assistant_for_team(team, slug)
    prompt = assistant.prompt
    if request.method == "POST":
        if not can(request.user, team, Action.EDIT):
            return render(
                request, "403.html", {"exception": "Viewers can't edit assistants."}, status=403
            )
        chosen = request.POST.get("prompt")
        prompt = team.prompts.filter(slug=chosen).first() if chosen else None
    form = _form(team, request.POST or None, initial=_initial(assistant), prompt=prompt)
    if request.method == "POST":
        updated = _save(
            request,
            form,
            lambda data: services.assistant_update(assistant=assistant, actor=request.user, **data),
        )
        if updated is not None:
            messages.success(request, "Assistant saved.")
            return redirect("assistants:settings", team_slug=team.slug, slug=updated.slug)
    return render(
        request,
        "assistants/settings.html",
        {"assistant": assistant, "form": form},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@team_view(Action.EDIT)
def assistant_duplicate(request, team, slug: str):
    copy = services.assistant_duplicate(
        assistant=assistant_for_team(team, slug), actor=request.user
    )
    messages.success(request, f"Duplicated as {copy.name}.")
    return redirect("assistants:settings", team_slug=team.slug, slug=copy.slug)


@require_POST
@team_view(Action.EDIT)
def assistant_remove(request, team, slug: str):
    assistant = assistant_for_team(team, slug)
    if assistant.is_archived:
        services.assistant_restore(assistant=assistant, actor=request.user)
        messages.success(request, f"{assistant.name} restored.")
        return redirect("assistants:settings", team_slug=team.slug, slug=slug)
    result = services.assistant_remove(assistant=assistant, actor=request.user)
    messages.success(request, f"{assistant.name} {result}.")
    return redirect("assistants:list", team_slug=team.slug)


def _history(conversation) -> list:
    """The conversation's messages, each answer with what the ledger billed for its run."""
    history = list(conversation_selectors.messages_of(conversation))
    runs = [message.run for message in history if message.run is not None]
    prefetch_related_objects(runs, "usage_records")
    for run in runs:
        run.cost = (
            usage_ledger.billed_cost(list(run.usage_records.all())) if run.is_finished else None
        )
    return history


def _variables(assistant, current) -> list[str]:
    """The variables the next message needs boxes for: the prompt version's, or the
    placeholders of inline instructions (which are rendered the same way)."""
    if current is not None:
        return current.variables
    if assistant.instructions_source == InstructionsSource.INLINE:
        return extract_variables(assistant.instructions, [])
    return []


@team_view(Action.USE)
def playground(request, team, slug: str):
    assistant = assistant_for_team(team, slug)
    try:
        current = resolution.prompt_version_for(assistant)
    except ServiceError as error:
        current = None
        messages.error(request, error.message)
    conversation = None
    if request.GET.get("conversation"):
        try:
            conversation = conversation_selectors.conversation_for(
                team, request.user, int(request.GET["conversation"])
            )
        except (ValueError, Http404):
            raise Http404("No such conversation.") from None
    variables = _variables(assistant, current)
    versions = list(assistant.prompt.versions.order_by("-number")) if assistant.prompt else []
    # boxes for what only other versions use, so comparing them can fill it in
    others = sorted({name for version in versions for name in version.variables} - {*variables})
    context = {
        "assistant": assistant,
        "current_version": current,
        "variables": variables,
        "versions": versions,
        "compare_variables": others,
        "conversation": conversation,
        "history": _history(conversation) if conversation else [],
        "recent": conversation_selectors.conversations_for(team, request.user, assistant=assistant)[
            :10
        ],
    }
    return render(request, "assistants/playground.html", context)
