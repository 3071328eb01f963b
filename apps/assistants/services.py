"""Writes for assistants: create, change, duplicate, archive.

Every reference an assistant holds (backend, fallbacks, prompt, label, pinned
version) is checked against the assistant's own team here, so a crafted id
from another team is refused before anything is saved.
"""

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.assistants.models import Assistant, InstructionsSource
from apps.core import routing_versions
from apps.core.errors import Conflict, NotFound, ServiceError
from apps.events.outbox import emit
from apps.inference import validation
from apps.inference.selectors import backend_available_to
from apps.prompts import rendering
from apps.prompts import selectors as prompt_selectors
from apps.teams.models import Team
from apps.teams.permissions import Action, require, user_of

SETTINGS = (
    "name",
    "description",
    "model",
    "instructions",
    "temperature",
    "top_p",
    "max_tokens",
    "memory_messages",
    "prompt_label",
)


def _prompt(team: Team, slug):
    prompt = team.prompts.filter(slug=slug).first() if isinstance(slug, str) else None
    if prompt is None:
        raise NotFound(f"No prompt {slug!r} in this team.", param="prompt")
    return prompt


def _apply(assistant: Assistant, data: dict) -> None:
    team = assistant.team
    for name in SETTINGS:
        if name in data and data[name] is not None:
            setattr(assistant, name, data[name])
    if "stop" in data and data["stop"] is not None:
        assistant.stop = data["stop"]
    if "tools" in data and data["tools"] is not None:
        assistant.tools = data["tools"]
    if data.get("backend") is not None:
        assistant.backend = backend_available_to(team, data["backend"], param="backend")
    if "fallbacks" in data and data["fallbacks"] is not None:
        assistant.fallbacks = validation.clean_fallbacks(data["fallbacks"])
        for i, fallback in enumerate(assistant.fallbacks):
            fallback_backend = backend_available_to(
                team, fallback["backend"], param=f"fallbacks[{i}].backend"
            )
            validation.require_served(
                fallback_backend, fallback["model"], param=f"fallbacks[{i}].model"
            )
    if data.get("instructions_source") is not None:
        if data["instructions_source"] not in InstructionsSource.values:
            raise ServiceError(
                "instructions_source must be inline, label or pinned.", param="instructions_source"
            )
        assistant.instructions_source = data["instructions_source"]
    if data.get("prompt") is not None:
        assistant.prompt = _prompt(team, data["prompt"])
    if data.get("prompt_version") is not None:
        if assistant.prompt is None:
            raise ServiceError("Pick the prompt before its version.", param="prompt")
        number = data["prompt_version"]
        version = (
            assistant.prompt.versions.filter(number=number).first()
            if isinstance(number, int)
            else None
        )
        if version is None:
            raise NotFound(
                f"Prompt {assistant.prompt.slug} has no version {number!r}.", param="prompt_version"
            )
        assistant.prompt_version = version


def _validate(assistant: Assistant) -> None:
    assistant.name = (assistant.name or "").strip()
    if not assistant.name or len(assistant.name) > 100:
        raise ServiceError("An assistant needs a name of at most 100 characters.", param="name")
    if assistant.backend is None or not assistant.model:
        raise ServiceError(
            "Pick a backend and a model.", param="backend" if assistant.backend is None else "model"
        )
    validation.clean_model(assistant.model)
    validation.clean_parameters(assistant.parameters())
    if not 0 <= assistant.memory_messages <= 200:
        raise ServiceError("memory_messages must be between 0 and 200.", param="memory_messages")
    source = assistant.instructions_source
    if source == InstructionsSource.INLINE:
        rendering.check_template(assistant.instructions, where="instructions")
    elif source == InstructionsSource.LABEL:
        if assistant.prompt is None or not assistant.prompt_label:
            raise ServiceError("Pick a prompt and the label to follow.", param="prompt_label")
        prompt_selectors.version_by_label(assistant.prompt, assistant.prompt_label)
    elif source == InstructionsSource.PINNED and assistant.prompt_version is None:
        raise ServiceError("Pick the prompt version to pin.", param="prompt_version")
    if assistant.prompt_version and assistant.prompt_version.prompt_id != assistant.prompt_id:
        raise ServiceError("The pinned version belongs to another prompt.", param="prompt_version")
    validation.require_served(assistant.backend, assistant.model)


def _event(assistant: Assistant, type_: str, actor, **extra) -> None:
    data = {
        "assistant_id": assistant.pk,
        "assistant": assistant.slug,
        "name": assistant.name,
        "model": assistant.model,
        **extra,
    }
    emit(
        assistant.team,
        type_,
        subject=f"assistant/{assistant.slug}",
        data=data,
        actor=actor,
        assistant_id=assistant.pk,
    )


def _unique_slug(team: Team, name: str, exclude: int | None = None) -> str:
    base = slugify(name)[:50]
    if not base:
        raise ServiceError("An assistant needs a name with letters or digits.", param="name")
    taken = set(
        Assistant.objects.filter(team=team, slug__startswith=base)
        .exclude(pk=exclude)
        .values_list("slug", flat=True)
    )
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def assistant_create(*, team: Team, actor, name: str, **data) -> Assistant:
    require(actor, team, Action.EDIT)
    routing_versions.invalidate(team_id=team.pk)
    assistant = Assistant(team=team, name=name, created_by=user_of(actor))
    _apply(assistant, data)
    _validate(assistant)
    slug = slugify(assistant.name)[:60]
    if Assistant.objects.filter(team=team, slug=slug).exists():
        raise Conflict(f"This team already has an assistant called {slug!r}.", param="name")
    assistant.slug = slug
    assistant.save()
    _event(assistant, "assistant.created", actor)
    return assistant


@transaction.atomic
def assistant_update(*, assistant: Assistant, actor, **data) -> Assistant:
    require(actor, assistant.team, Action.EDIT)
    routing_versions.invalidate(team_id=assistant.team_id)
    assistant = Assistant.objects.select_for_update().get(pk=assistant.pk)
    _apply(assistant, data)
    _validate(assistant)
    assistant.save()
    changed = sorted(name for name, value in data.items() if value is not None)
    _event(assistant, "assistant.changed", actor, changed=changed)
    return assistant


@transaction.atomic
def assistant_duplicate(*, assistant: Assistant, actor, name: str | None = None) -> Assistant:
    require(actor, assistant.team, Action.EDIT)
    routing_versions.invalidate(team_id=assistant.team_id)
    copy = Assistant.objects.get(pk=assistant.pk)
    copy.pk = None
    copy.name = (name or f"{assistant.name} (copy)")[:100]
    copy.slug = _unique_slug(assistant.team, copy.name)
    copy.created_by = user_of(actor)
    copy.archived_at = None
    copy.save()
    _event(copy, "assistant.created", actor)
    return copy


@transaction.atomic
def assistant_remove(*, assistant: Assistant, actor) -> str:
    """Delete an assistant without history; one with runs or conversations is archived."""
    require(actor, assistant.team, Action.EDIT)
    routing_versions.invalidate(team_id=assistant.team_id)
    has_history = assistant.runs.exists() or assistant.conversations.exists()
    if has_history:
        Assistant.objects.filter(pk=assistant.pk).update(archived_at=timezone.now())
        _event(assistant, "assistant.archived", actor)
        return "archived"
    assistant.delete()
    return "deleted"


@transaction.atomic
def assistant_restore(*, assistant: Assistant, actor) -> Assistant:
    require(actor, assistant.team, Action.EDIT)
    routing_versions.invalidate(team_id=assistant.team_id)
    Assistant.objects.filter(pk=assistant.pk).update(archived_at=None)
    assistant.refresh_from_db()
    return assistant
