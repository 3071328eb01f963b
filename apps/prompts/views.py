"""Prompt pages: the list with a create form, a prompt's page (versions, labels, render)
and the diff between two versions.

Everyone in the team can read and render; saving, moving labels and archiving
need the EDIT action, so a viewer's POST is a 403 and another team's prompt a 404.
A refused form comes back as a 400 with the service's message next to the field.
"""

from collections import defaultdict

from django.contrib import messages as flash
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.core.errors import ServiceError
from apps.prompts import rendering, selectors, services
from apps.prompts.forms import (
    SUGGESTED_LABELS,
    LabelMoveForm,
    PromptCreateForm,
    RenderForm,
    VersionForm,
)
from apps.prompts.models import Prompt
from apps.teams.decorators import team_view
from apps.teams.permissions import Action, can


def _field_error(form, error: ServiceError) -> None:
    """Show a service error on the form field it names, or above the form."""
    param = (error.param or "").split(".")[0].split("[")[0]
    form.add_error(param if param in form.fields else None, error.message)


def _require_edit(request, team) -> None:
    if not can(request.user, team, Action.EDIT):
        raise PermissionDenied("Your role lets you read prompts, not change them.")


def _version_number(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@team_view(Action.VIEW)
@require_http_methods(["GET", "POST"])
def prompt_list(request, team):
    form = PromptCreateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        _require_edit(request, team)
        if form.is_valid():
            try:
                prompt = services.prompt_create(team=team, actor=request.user, **form.cleaned_data)
            except ServiceError as error:
                _field_error(form, error)
            else:
                flash.success(request, f"Prompt {prompt.name} created as version 1.")
                return redirect("prompts:detail", team_slug=team.slug, prompt_slug=prompt.slug)
        status = 400
    show_archived = request.GET.get("archived") == "1"
    context = {
        "prompts": selectors.prompts_for_team(team, include_archived=show_archived),
        "show_archived": show_archived,
        "form": form,
    }
    return render(request, "prompts/list.html", context, status=status)


def _detail_page(
    request,
    team,
    prompt: Prompt,
    *,
    selected=None,
    version_form=None,
    label_form=None,
    render_form=None,
    rendered=None,
    render_error: str = "",
    status: int = 200,
):
    versions = list(selectors.versions_for_prompt(prompt))
    latest = versions[0] if versions else None
    selected = selected or latest
    labels = list(selectors.labels_for_prompt(prompt))
    labels_by_version: dict[int, list[str]] = defaultdict(list)
    for label in labels:
        labels_by_version[label.version_id].append(label.name)
    usage = selectors.version_usage(versions)
    rows = [
        {"version": v, "usage": usage[v.pk], "labels": labels_by_version.get(v.pk, [])}
        for v in versions
    ]
    suggestions = sorted(set(SUGGESTED_LABELS) | {label.name for label in labels})
    context = {
        "prompt": prompt,
        "latest": latest,
        "selected": selected,
        "rows": rows,
        "labels": labels,
        "label_suggestions": suggestions,
        "history": selectors.label_history(prompt)[:50],
        "may_edit": can(request.user, team, Action.EDIT) and not prompt.is_archived,
        "version_form": version_form or VersionForm(initial=VersionForm.initial_for(selected)),
        "label_form": label_form
        or LabelMoveForm(versions=versions, initial={"version": selected and selected.number}),
        "render_form": render_form or RenderForm(variables=selected.variables if selected else ()),
        "rendered": rendered,
        "render_error": render_error,
    }
    return render(request, "prompts/detail.html", context, status=status)


@team_view(Action.VIEW)
@require_http_methods(["GET", "POST"])
def prompt_detail(request, team, prompt_slug: str):
    """GET shows the prompt (``?version=N`` selects a version); POST saves a new version."""
    prompt = selectors.prompt_for_team(team, prompt_slug)
    if request.method == "GET":
        number = _version_number(request.GET.get("version"))
        selected = selectors.version_for_prompt(prompt, number) if number else None
        return _detail_page(request, team, prompt, selected=selected)
    _require_edit(request, team)
    form = VersionForm(request.POST)
    if form.is_valid():
        try:
            version = services.version_create(
                prompt=prompt, actor=request.user, **form.cleaned_data
            )
        except ServiceError as error:
            _field_error(form, error)
        else:
            flash.success(request, f"Saved as version {version.number}.")
            return redirect("prompts:detail", team_slug=team.slug, prompt_slug=prompt.slug)
    return _detail_page(request, team, prompt, version_form=form, status=400)


@require_POST
@team_view(Action.EDIT)
def label_move(request, team, prompt_slug: str):
    prompt = selectors.prompt_for_team(team, prompt_slug)
    versions = list(selectors.versions_for_prompt(prompt))
    form = LabelMoveForm(request.POST, versions=versions)
    if form.is_valid():
        version = selectors.version_for_prompt(prompt, form.cleaned_data["version"])
        try:
            label = services.label_move(
                prompt=prompt, actor=request.user, label=form.cleaned_data["label"], version=version
            )
        except ServiceError as error:
            _field_error(form, error)
        else:
            flash.success(request, f"Label {label.name} now points at version {version.number}.")
            return redirect("prompts:detail", team_slug=team.slug, prompt_slug=prompt.slug)
    return _detail_page(request, team, prompt, label_form=form, status=400)


@require_POST
@team_view(Action.EDIT)
def label_delete(request, team, prompt_slug: str, label: str):
    prompt = selectors.prompt_for_team(team, prompt_slug)
    try:
        services.label_delete(prompt=prompt, actor=request.user, label=label)
    except ServiceError as error:
        if error.status == 404:
            raise Http404(error.message) from None
        flash.error(request, error.message)
    else:
        flash.success(request, f"Label {label} removed.")
    return redirect("prompts:detail", team_slug=team.slug, prompt_slug=prompt.slug)


@require_POST
@team_view(Action.EDIT)
def prompt_archive(request, team, prompt_slug: str):
    prompt = selectors.prompt_for_team(team, prompt_slug)
    services.prompt_archive(prompt=prompt, actor=request.user)
    flash.success(request, f"Prompt {prompt.name} archived; its labels still resolve.")
    return redirect("prompts:list", team_slug=team.slug)


@require_POST
@team_view(Action.VIEW)
def prompt_render(request, team, prompt_slug: str):
    """Rendering reads only, so viewers may use it too; it's a POST for long variable values."""
    prompt = selectors.prompt_for_team(team, prompt_slug)
    number = _version_number(request.POST.get("version"))
    version = (
        selectors.version_for_prompt(prompt, number) if number else selectors.latest_version(prompt)
    )
    if version is None:
        raise Http404("This prompt has no versions yet.")
    form = RenderForm(request.POST, variables=version.variables)
    form.is_valid()  # every field is optional text; nothing to refuse here
    try:
        rendered = rendering.render(version, form.variables())
    except ServiceError as error:
        return _detail_page(
            request,
            team,
            prompt,
            selected=version,
            render_form=form,
            render_error=error.message,
            status=400,
        )
    return _detail_page(
        request, team, prompt, selected=version, render_form=form, rendered=rendered
    )


def _diff_rows(lines: list[str]) -> list[tuple[str, str]]:
    rows = []
    for line in lines:
        if line.startswith(("+++", "---")):
            css = "diff-file"
        elif line.startswith("@@"):
            css = "diff-hunk"
        elif line.startswith("+"):
            css = "diff-add"
        elif line.startswith("-"):
            css = "diff-del"
        else:
            css = "diff-ctx"
        rows.append((css, line))
    return rows


@require_GET
@team_view(Action.VIEW)
def prompt_diff(request, team, prompt_slug: str):
    """``?from=A&to=B``; without them, the latest version against the one before it."""
    prompt = selectors.prompt_for_team(team, prompt_slug)
    versions = list(selectors.versions_for_prompt(prompt))
    if not versions:
        raise Http404("This prompt has no versions yet.")
    latest = versions[0].number
    to_number = _version_number(request.GET.get("to")) or latest
    from_number = _version_number(request.GET.get("from")) or max(to_number - 1, 1)
    old = selectors.version_for_prompt(prompt, from_number)
    new = selectors.version_for_prompt(prompt, to_number)
    diff = selectors.version_diff(old, new)
    context = {
        "prompt": prompt,
        "versions": versions,
        "old": old,
        "new": new,
        "system_rows": _diff_rows(diff["system"]),
        "message_rows": _diff_rows(diff["messages"]),
        "parameters": diff["parameters"],
        "unchanged": not (diff["system"] or diff["messages"] or diff["parameters"]),
    }
    return render(request, "prompts/diff.html", context)
