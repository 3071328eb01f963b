"""Writes for prompts, versions and labels.

Versions are append-only: an edit is a new version, numbered under a lock on
the prompt row so two concurrent saves never get the same number. Labels move
under the same lock, and every move is written to ``LabelMove`` in the same
transaction, so the history can't miss a move or record one that didn't happen.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.core import routing_versions
from apps.core.errors import Conflict, NotFound, ServiceError
from apps.events.outbox import emit
from apps.inference.validation import clean_parameters
from apps.prompts import rendering
from apps.prompts.models import (
    LABEL_MAX_LENGTH,
    RESERVED_LABELS,
    LabelMove,
    Prompt,
    PromptLabel,
    PromptVersion,
    label_validator,
)
from apps.teams.models import Team
from apps.teams.permissions import Action, require, user_of

SLUG_MAX_LENGTH = 60
COMMIT_MESSAGE_MAX_LENGTH = 500


def _actor(actor):
    return user_of(actor)


def _clean_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name:
        raise ServiceError("A prompt needs a name.", param="name")
    if len(name) > 100:
        raise ServiceError("Prompt names are at most 100 characters.", param="name")
    return name


def _clean_description(description) -> str:
    if not isinstance(description, str):
        raise ServiceError("description must be text.", param="description")
    return description.strip()


def _clean_commit_message(message) -> str:
    message = (message or "").strip() if isinstance(message, str) else None
    if message is None:
        raise ServiceError("commit_message must be text.", param="commit_message")
    if len(message) > COMMIT_MESSAGE_MAX_LENGTH:
        raise ServiceError(
            f"Commit messages are at most {COMMIT_MESSAGE_MAX_LENGTH} characters.",
            param="commit_message",
        )
    return message


def _clean_parameters(parameters) -> dict:
    """Inference's own checks, so a prompt's defaults are always valid run parameters."""
    try:
        return clean_parameters(parameters)
    except ServiceError as error:
        param = error.param or "parameters"
        if not param.startswith("parameters"):
            param = f"parameters.{param}"
        raise ServiceError(error.message, code=error.code, param=param) from None


def _clean_content(*, system, messages, parameters) -> dict:
    """Everything a version stores, checked; raises before anything is written."""
    system = system or ""
    rendering.check_template(system, where="system")
    messages = rendering.clean_messages(messages)
    return {
        "system": system,
        "messages": messages,
        "variables": rendering.extract_variables(system, messages),
        "parameters": _clean_parameters(parameters),
    }


def clean_label_name(label) -> str:
    """The canonical label name, or a ServiceError saying what a label may be called."""
    name = label.strip().lower() if isinstance(label, str) else ""
    if not name or len(name) > LABEL_MAX_LENGTH:
        raise ServiceError(
            f"A label needs a name of 1 to {LABEL_MAX_LENGTH} characters.", param="label"
        )
    if not label_validator.regex.match(name):
        raise ServiceError(label_validator.message, param="label", code="invalid_label")
    if name in RESERVED_LABELS:
        raise ServiceError(f"{name!r} is reserved; pick another label name.", param="label")
    return name


def _lock(prompt: Prompt) -> Prompt:
    return Prompt.objects.select_for_update().get(pk=prompt.pk)


def _writable(prompt: Prompt) -> None:
    if prompt.archived_at is not None:
        raise Conflict(
            f"Prompt {prompt.name} is archived; it can be read but not changed.", code="archived"
        )


def _insert_version(*, prompt: Prompt, actor, content: dict, commit_message: str) -> PromptVersion:
    """Append a version to a prompt whose row the caller holds locked."""
    routing_versions.invalidate(team_id=prompt.team_id)
    latest = prompt.versions.order_by("-number").first()
    if latest is not None and all(getattr(latest, key) == value for key, value in content.items()):
        raise ServiceError(
            f"Nothing changed since version {latest.number}: edit the templates or the "
            "parameters before saving a new version.",
            code="nothing_changed",
        )
    version = PromptVersion.objects.create(
        prompt=prompt,
        number=latest.number + 1 if latest else 1,
        commit_message=commit_message,
        author=_actor(actor),
        **content,
    )
    Prompt.objects.filter(pk=prompt.pk).update(updated_at=timezone.now())
    emit(
        prompt.team,
        "prompt.version_created",
        subject=f"prompt/{prompt.slug}",
        data={
            "prompt_id": prompt.pk,
            "prompt": prompt.slug,
            "version": version.number,
            "commit_message": commit_message,
        },
        actor=actor,
    )
    return version


@transaction.atomic
def prompt_create(
    *,
    team: Team,
    actor,
    name: str,
    description: str = "",
    system: str = "",
    messages: list[dict] | None = None,
    parameters: dict | None = None,
    commit_message: str = "Initial version",
) -> Prompt:
    """A new prompt and its version 1, or nothing at all if any part is invalid."""
    require(actor, team, Action.EDIT)
    name = _clean_name(name)
    description = _clean_description(description)
    slug = slugify(name)[:SLUG_MAX_LENGTH].strip("-")
    if not slug:
        raise ServiceError("A prompt needs a name with letters or digits.", param="name")
    content = _clean_content(system=system, messages=messages, parameters=parameters)
    commit_message = _clean_commit_message(commit_message)
    taken = Conflict(f"This team already has a prompt called {slug!r}.", param="name")
    if Prompt.objects.filter(team=team, slug=slug).exists():
        raise taken
    try:
        with transaction.atomic():
            prompt = Prompt.objects.create(
                team=team, name=name, slug=slug, description=description, created_by=_actor(actor)
            )
    except IntegrityError:  # a concurrent create took the slug between the check and insert
        raise taken from None
    _insert_version(prompt=prompt, actor=actor, content=content, commit_message=commit_message)
    return prompt


@transaction.atomic
def prompt_update(
    *, prompt: Prompt, actor, name: str | None = None, description: str | None = None
) -> Prompt:
    """Rename or re-describe a prompt. The slug stays: API callers and runs refer to it."""
    require(actor, prompt.team, Action.EDIT)
    prompt = _lock(prompt)
    _writable(prompt)
    if name is not None:
        prompt.name = _clean_name(name)
    if description is not None:
        prompt.description = _clean_description(description)
    prompt.save(update_fields=["name", "description", "updated_at"])
    return prompt


@transaction.atomic
def prompt_archive(*, prompt: Prompt, actor) -> Prompt:
    """Hide a prompt from the list; its versions and labels keep resolving for callers.

    Archiving twice is not an error, so a retried DELETE answers the same.
    """
    require(actor, prompt.team, Action.EDIT)
    prompt = _lock(prompt)
    if prompt.archived_at is None:
        prompt.archived_at = timezone.now()
        prompt.save(update_fields=["archived_at", "updated_at"])
    return prompt


@transaction.atomic
def version_create(
    *,
    prompt: Prompt,
    actor,
    system: str,
    messages: list[dict] | None,
    parameters: dict | None,
    commit_message: str,
) -> PromptVersion:
    """Save an edit as the next version; refused when it equals the latest version."""
    require(actor, prompt.team, Action.EDIT)
    content = _clean_content(system=system, messages=messages, parameters=parameters)
    commit_message = _clean_commit_message(commit_message)
    prompt = _lock(prompt)
    _writable(prompt)
    return _insert_version(
        prompt=prompt, actor=actor, content=content, commit_message=commit_message
    )


@transaction.atomic
def label_move(*, prompt: Prompt, actor, label: str, version: PromptVersion) -> PromptLabel:
    """Point a label at a version of the same prompt (creating the label if needed)."""
    require(actor, prompt.team, Action.EDIT)
    routing_versions.invalidate(team_id=prompt.team_id)
    name = clean_label_name(label)
    if version is None or version.prompt_id != prompt.pk:
        # Same answer for another prompt's and another team's version: ids don't leak.
        raise NotFound("No such version of this prompt.", param="version")
    prompt = _lock(prompt)
    _writable(prompt)
    current = PromptLabel.objects.filter(prompt=prompt, name=name).first()
    if current is not None and current.version_id == version.pk:
        raise Conflict(f"Label {name} already points at version {version.number}.", param="version")
    previous = current.version if current is not None else None
    if current is None:
        current = PromptLabel(prompt=prompt, name=name)
    current.version = version
    current.updated_by = _actor(actor)
    current.save()
    LabelMove.objects.create(
        prompt=prompt,
        label=name,
        from_version=previous,
        to_version=version,
        moved_by=_actor(actor),
    )
    emit(
        prompt.team,
        "prompt.label_moved",
        subject=f"prompt/{prompt.slug}",
        data={
            "prompt_id": prompt.pk,
            "prompt": prompt.slug,
            "label": name,
            "version": version.number,
            "previous_version": previous.number if previous is not None else None,
        },
        actor=actor,
    )
    return current


@transaction.atomic
def label_delete(*, prompt: Prompt, actor, label: str) -> None:
    """Remove a label; its past moves stay in the history."""
    require(actor, prompt.team, Action.EDIT)
    routing_versions.invalidate(team_id=prompt.team_id)
    prompt = _lock(prompt)
    _writable(prompt)
    name = label.strip().lower() if isinstance(label, str) else ""
    deleted, _ = PromptLabel.objects.filter(prompt=prompt, name=name).delete()
    if not deleted:
        raise NotFound(f"No label {name!r} on this prompt.", param="label")
