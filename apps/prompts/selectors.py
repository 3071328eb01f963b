"""Reads for prompts, versions and labels; no side effects."""

import difflib
from collections.abc import Iterable

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Count, Max, QuerySet, Sum
from django.http import Http404

from apps.core.errors import NotFound
from apps.prompts.models import LabelMove, Prompt, PromptLabel, PromptVersion
from apps.teams.models import Team


def prompts_for_team(team: Team, include_archived: bool = False) -> QuerySet[Prompt]:
    """The team's prompts with ``latest_number`` and ``version_count`` annotated."""
    queryset = Prompt.objects.filter(team=team)
    if not include_archived:
        queryset = queryset.filter(archived_at__isnull=True)
    return queryset.annotate(
        latest_number=Max("versions__number"), version_count=Count("versions")
    ).order_by("name", "pk")


def prompt_for_team(team: Team, slug: str) -> Prompt:
    """One prompt of the team, archived ones included (they still resolve for callers)."""
    prompt = Prompt.objects.filter(team=team, slug=slug).select_related("team").first()
    if prompt is None:
        raise Http404("No such prompt in this team.")
    return prompt


def versions_for_prompt(prompt: Prompt) -> QuerySet[PromptVersion]:
    """Newest first."""
    return prompt.versions.select_related("author").order_by("-number")


def latest_version(prompt: Prompt) -> PromptVersion | None:
    return versions_for_prompt(prompt).first()


def version_for_prompt(prompt: Prompt, number: int) -> PromptVersion:
    version = versions_for_prompt(prompt).filter(number=number).first()
    if version is None:
        raise Http404(f"Prompt {prompt.slug} has no version {number}.")
    return version


def labels_for_prompt(prompt: Prompt) -> QuerySet[PromptLabel]:
    return prompt.labels.select_related("version", "updated_by").order_by("name")


def label_versions(prompt_ids: list[int]) -> dict[int, dict[str, int]]:
    """{prompt id: {label name: version number}} for many prompts in one query."""
    result: dict[int, dict[str, int]] = {pk: {} for pk in prompt_ids}
    rows = PromptLabel.objects.filter(prompt_id__in=prompt_ids).order_by("name")
    for prompt_id, name, number in rows.values_list("prompt_id", "name", "version__number"):
        result[prompt_id][name] = number
    return result


def version_by_label(prompt: Prompt, label: str) -> PromptVersion:
    """The version a label points at; how production callers resolve "the live prompt"."""
    name = label.strip().lower() if isinstance(label, str) else ""
    found = labels_for_prompt(prompt).filter(name=name).first()
    if found is None:
        raise NotFound(f"Prompt {prompt.slug} has no label {name!r}.", param="label")
    return found.version


def label_history(prompt: Prompt, label: str | None = None) -> QuerySet[LabelMove]:
    """Moves of the prompt's labels (or of one label), newest first."""
    moves = LabelMove.objects.filter(prompt=prompt)
    if label is not None:
        moves = moves.filter(label=label.strip().lower())
    return moves.select_related("from_version", "to_version", "moved_by").order_by(
        "-moved_at", "-pk"
    )


def _message_lines(messages: list[dict]) -> list[str]:
    lines: list[str] = []
    for message in messages:
        lines += f"{message['role']}: {message['content']}".splitlines() or [""]
    return lines


def _unified(a: list[str], b: list[str], a_name: str, b_name: str) -> list[str]:
    return list(difflib.unified_diff(a, b, fromfile=a_name, tofile=b_name, lineterm=""))


def version_diff(a: PromptVersion, b: PromptVersion) -> dict:
    """What changed from version ``a`` to ``b``.

    ``system`` and ``messages`` are unified-diff lines (empty when equal; messages
    as "role: content" lines); ``parameters`` maps each changed key to (old, new),
    with None for a key one side doesn't set.
    """
    old, new = f"v{a.number}", f"v{b.number}"
    parameters = {
        key: (a.parameters.get(key), b.parameters.get(key))
        for key in sorted(set(a.parameters) | set(b.parameters))
        if a.parameters.get(key) != b.parameters.get(key)
    }
    return {
        "from": a.number,
        "to": b.number,
        "system": _unified(a.system.splitlines(), b.system.splitlines(), old, new),
        "messages": _unified(_message_lines(a.messages), _message_lines(b.messages), old, new),
        "parameters": parameters,
    }


def _runs_link_versions() -> bool:
    """Whether ``ChatRun.prompt_version`` exists yet (it lands with the inference work)."""
    from apps.inference.models import ChatRun

    try:
        field = ChatRun._meta.get_field("prompt_version")
    except FieldDoesNotExist:
        return False
    return field.is_relation and field.related_model is PromptVersion


def version_usage(versions: Iterable[PromptVersion]) -> dict[int, dict[str, int]]:
    """Runs and total tokens per version id; zeros until runs record their prompt version."""
    ids = [v.pk for v in versions]
    usage = {pk: {"runs": 0, "tokens": 0} for pk in ids}
    if not ids or not _runs_link_versions():
        return usage
    from apps.inference.models import ChatRun

    rows = (
        ChatRun.objects.filter(prompt_version__in=ids)
        .values("prompt_version")
        .annotate(runs=Count("pk"), tokens=Sum("total_tokens"))
        .order_by()
    )
    for row in rows:
        usage[row["prompt_version"]] = {"runs": row["runs"], "tokens": row["tokens"] or 0}
    return usage
