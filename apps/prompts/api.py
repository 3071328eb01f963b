"""The prompt library over the REST API, under a team.

Another team's slug, prompt or version answers 404 like one that doesn't exist;
writes need the EDIT action (403 otherwise); everything else about the input
is checked by the services and comes back in the API's error schema.
"""

from collections import defaultdict

from django.db.models import Q
from django.http import HttpRequest
from ninja import Query, Router, Status

from apps.core.api_errors import BODY_ERRORS, with_errors
from apps.core.api_pagination import Rows, paginated
from apps.core.errors import NotFound, ServiceError
from apps.prompts import rendering, selectors, services
from apps.prompts.models import LabelMove, Prompt, PromptLabel, PromptVersion
from apps.prompts.schemas import (
    PROMPTS_ORDER,
    DiffOut,
    DiffQuery,
    LabelHistoryQuery,
    LabelIn,
    LabelMoveOut,
    LabelOut,
    PromptDetailOut,
    PromptIn,
    PromptListQuery,
    PromptOut,
    PromptPatch,
    RenderIn,
    RenderOut,
    UsageOut,
    VersionIn,
    VersionOut,
)
from apps.teams.permissions import Action
from apps.teams.selectors import team_for_request

router = Router(tags=["prompts"])


def _email(user) -> str | None:
    return user.email if user is not None else None


def _labels_by_version(prompt: Prompt) -> dict[int, list[str]]:
    names: dict[int, list[str]] = defaultdict(list)
    for label in selectors.labels_for_prompt(prompt):
        names[label.version_id].append(label.name)
    return names


def versions_out(prompt: Prompt, versions: list[PromptVersion]) -> list[VersionOut]:
    usage = selectors.version_usage(versions)
    labels = _labels_by_version(prompt)
    return [
        VersionOut(
            number=v.number,
            system=v.system,
            messages=v.messages,
            variables=v.variables,
            parameters=v.parameters,
            commit_message=v.commit_message,
            author=_email(v.author),
            created_at=v.created_at,
            labels=labels.get(v.pk, []),
            usage=UsageOut(**usage[v.pk]),
        )
        for v in versions
    ]


def _prompt_fields(prompt: Prompt, *, latest_number: int | None, labels: dict[str, int]) -> dict:
    return {
        "slug": prompt.slug,
        "name": prompt.name,
        "description": prompt.description,
        "created_by": _email(prompt.created_by),
        "created_at": prompt.created_at,
        "updated_at": prompt.updated_at,
        "archived_at": prompt.archived_at,
        "latest_version": latest_number,
        "labels": labels,
    }


def prompts_out(prompts) -> list[PromptOut]:
    """The list in a fixed number of queries: latest numbers are annotated, labels batched."""
    prompts = list(prompts)
    labels = selectors.label_versions([p.pk for p in prompts])
    return [
        PromptOut(**_prompt_fields(p, latest_number=p.latest_number, labels=labels.get(p.pk, {})))
        for p in prompts
    ]


def prompt_out(prompt: Prompt) -> PromptDetailOut:
    latest = selectors.latest_version(prompt)
    fields = _prompt_fields(
        prompt,
        latest_number=latest.number if latest else None,
        labels=selectors.label_versions([prompt.pk]).get(prompt.pk, {}),
    )
    return PromptDetailOut(**fields, latest=versions_out(prompt, [latest])[0] if latest else None)


def label_out(label: PromptLabel) -> LabelOut:
    return LabelOut(
        name=label.name,
        version=label.version.number,
        updated_by=_email(label.updated_by),
        updated_at=label.updated_at,
    )


def move_out(move: LabelMove) -> LabelMoveOut:
    return LabelMoveOut(
        label=move.label,
        from_version=move.from_version.number if move.from_version_id else None,
        to_version=move.to_version.number,
        moved_by=_email(move.moved_by),
        moved_at=move.moved_at,
    )


def _prompt(request, team_slug: str, prompt_slug: str, action: Action = Action.VIEW) -> Prompt:
    return selectors.prompt_for_team(team_for_request(request, team_slug, action), prompt_slug)


PROMPT = "/{team_slug}/prompts/{prompt_slug}"


@router.get(
    "/{team_slug}/prompts",
    response=with_errors(list[PromptOut]),
    operation_id="prompts_list",
    summary="The team's prompts (archived ones with include_archived=true)",
)
@paginated
def prompts_list(request: HttpRequest, team_slug: str, filters: Query[PromptListQuery]):
    """Each with its latest version number and where its labels point, by name."""
    team = team_for_request(request, team_slug)
    prompts = selectors.prompts_for_team(team, include_archived=filters.include_archived)
    if filters.q:
        prompts = prompts.filter(
            Q(name__icontains=filters.q)
            | Q(slug__icontains=filters.q)
            | Q(description__icontains=filters.q)
        )
    prompts = PROMPTS_ORDER.apply(prompts.select_related("created_by"), filters.order)
    return Rows(prompts, batch=prompts_out)


@router.post(
    "/{team_slug}/prompts",
    response=with_errors({201: PromptDetailOut}, *BODY_ERRORS, 409),
    operation_id="prompts_create",
    summary="Create a prompt with its version 1",
)
def prompts_create(request: HttpRequest, team_slug: str, payload: PromptIn):
    """Its slug comes from the name (409 when taken). Templates are checked here: a
    broken one is 400 naming the field."""
    team = team_for_request(request, team_slug, Action.EDIT)
    data = payload.dict()
    if data["messages"] is not None:
        data["messages"] = [dict(m) for m in data["messages"]]
    prompt = services.prompt_create(team=team, actor=request.user, **data)
    return Status(201, prompt_out(prompt))


@router.get(
    PROMPT,
    response=with_errors(PromptDetailOut),
    operation_id="prompts_get",
    summary="One prompt with its latest version and labels",
)
def prompts_get(request: HttpRequest, team_slug: str, prompt_slug: str):
    """Archived prompts are found too: their versions and labels keep resolving."""
    return prompt_out(_prompt(request, team_slug, prompt_slug))


@router.patch(
    PROMPT,
    response=with_errors(PromptDetailOut, *BODY_ERRORS, 409),
    operation_id="prompts_update",
    summary="Rename or re-describe a prompt (the slug stays)",
)
def prompts_update(request: HttpRequest, team_slug: str, prompt_slug: str, payload: PromptPatch):
    """Content changes are new versions, not edits; an archived prompt is 409."""
    prompt = _prompt(request, team_slug, prompt_slug, Action.EDIT)
    prompt = services.prompt_update(
        prompt=prompt, actor=request.user, **payload.dict(exclude_unset=True)
    )
    return prompt_out(prompt)


@router.delete(
    PROMPT,
    response=with_errors(PromptDetailOut),
    operation_id="prompts_archive",
    summary="Archive a prompt; its versions and labels keep resolving",
)
def prompts_archive(request: HttpRequest, team_slug: str, prompt_slug: str):
    """Prompts are never deleted, so assistants and runs that used one keep working."""
    prompt = _prompt(request, team_slug, prompt_slug, Action.EDIT)
    return prompt_out(services.prompt_archive(prompt=prompt, actor=request.user))


@router.get(
    PROMPT + "/versions",
    response=with_errors(list[VersionOut]),
    operation_id="prompt_versions_list",
    summary="Every version of a prompt, newest first, with usage",
)
@paginated
def versions_list(request: HttpRequest, team_slug: str, prompt_slug: str):
    """Each version with the labels on it and the runs and tokens that used it."""
    prompt = _prompt(request, team_slug, prompt_slug)
    versions = selectors.versions_for_prompt(prompt).order_by("-number", "-pk")
    return Rows(versions, batch=lambda page: versions_out(prompt, page))


@router.post(
    PROMPT + "/versions",
    response=with_errors({201: VersionOut}, *BODY_ERRORS, 409),
    operation_id="prompt_versions_create",
    summary="Save a new version (refused when nothing changed)",
)
def versions_create(request: HttpRequest, team_slug: str, prompt_slug: str, payload: VersionIn):
    """The body is the whole new content. The same content as the latest version is
    400 (code ``nothing_changed``); an archived prompt is 409."""
    prompt = _prompt(request, team_slug, prompt_slug, Action.EDIT)
    version = services.version_create(
        prompt=prompt,
        actor=request.user,
        system=payload.system,
        messages=[dict(m) for m in payload.messages],
        parameters=payload.parameters,
        commit_message=payload.commit_message,
    )
    return Status(201, versions_out(prompt, [version])[0])


@router.get(
    PROMPT + "/versions/{number}",
    response=with_errors(VersionOut),
    operation_id="prompt_versions_get",
    summary="One version with its usage",
)
def versions_get(request: HttpRequest, team_slug: str, prompt_slug: str, number: int):
    """Versions are numbered from 1 and never change."""
    prompt = _prompt(request, team_slug, prompt_slug)
    return versions_out(prompt, [selectors.version_for_prompt(prompt, number)])[0]


@router.get(
    PROMPT + "/diff",
    response=with_errors(DiffOut),
    operation_id="prompt_versions_diff",
    summary="What changed between two versions",
)
def versions_diff(request: HttpRequest, team_slug: str, prompt_slug: str, query: Query[DiffQuery]):
    """Unified diffs of the templates and the changed parameters, ``from`` -> ``to``."""
    prompt = _prompt(request, team_slug, prompt_slug)
    diff = selectors.version_diff(
        selectors.version_for_prompt(prompt, query.from_),
        selectors.version_for_prompt(prompt, query.to),
    )
    return DiffOut(
        from_version=diff["from"],
        to_version=diff["to"],
        system=diff["system"],
        messages=diff["messages"],
        parameters=diff["parameters"],
    )


@router.get(
    PROMPT + "/labels",
    response=with_errors(list[LabelOut]),
    operation_id="prompt_labels_list",
    summary="The prompt's labels and the versions they point at",
)
@paginated
def labels_list(request: HttpRequest, team_slug: str, prompt_slug: str):
    """By name. Callers resolve "the live prompt" through a label such as ``production``."""
    prompt = _prompt(request, team_slug, prompt_slug)
    return Rows(selectors.labels_for_prompt(prompt).order_by("name", "pk"), each=label_out)


# Registered before /labels/{label} so "history" is never taken for a label name.
@router.get(
    PROMPT + "/labels/history",
    response=with_errors(list[LabelMoveOut]),
    operation_id="prompt_labels_history",
    summary="Every label move, newest first (filter with ?label=)",
)
@paginated
def labels_history(
    request: HttpRequest, team_slug: str, prompt_slug: str, filters: Query[LabelHistoryQuery]
):
    """Who pointed which label from which version to which, and when."""
    prompt = _prompt(request, team_slug, prompt_slug)
    return Rows(selectors.label_history(prompt, filters.label), each=move_out)


@router.put(
    PROMPT + "/labels/{label}",
    response=with_errors(LabelOut, *BODY_ERRORS, 409),
    operation_id="prompt_labels_move",
    summary="Point a label at a version (creates the label)",
)
def labels_move(
    request: HttpRequest, team_slug: str, prompt_slug: str, label: str, payload: LabelIn
):
    """Names are case-insensitive; one that isn't allowed is 400. Pointing a label where
    it already points is 409; every move is kept in the history."""
    prompt = _prompt(request, team_slug, prompt_slug, Action.EDIT)
    version = selectors.version_for_prompt(prompt, payload.version)
    return label_out(
        services.label_move(prompt=prompt, actor=request.user, label=label, version=version)
    )


@router.delete(
    PROMPT + "/labels/{label}",
    response=with_errors({204: None}, 409),
    operation_id="prompt_labels_delete",
    summary="Remove a label (its history stays)",
)
def labels_delete(request: HttpRequest, team_slug: str, prompt_slug: str, label: str):
    """Assistants that follow the label stop resolving it; an archived prompt is 409."""
    prompt = _prompt(request, team_slug, prompt_slug, Action.EDIT)
    services.label_delete(prompt=prompt, actor=request.user, label=label)
    return Status(204, None)


@router.post(
    PROMPT + "/render",
    response=with_errors(RenderOut, *BODY_ERRORS),
    operation_id="prompts_render",
    summary="Fill a version (by number, by label, or the latest) with variables",
)
def prompts_render(request: HttpRequest, team_slug: str, prompt_slug: str, payload: RenderIn):
    """The messages a model would get. A missing variable is 400 naming it
    (``variables.<name>``); ones no template uses come back in ``extra_variables``."""
    prompt = _prompt(request, team_slug, prompt_slug)
    if payload.version is not None and payload.label is not None:
        raise ServiceError("Give version or label, not both.", param="label")
    if payload.label is not None:
        version = selectors.version_by_label(prompt, payload.label)
    elif payload.version is not None:
        version = selectors.version_for_prompt(prompt, payload.version)
    else:
        version = selectors.latest_version(prompt)
        if version is None:
            raise NotFound(f"Prompt {prompt.slug} has no versions yet.", param="version")
    rendered = rendering.render(version, payload.variables)
    return RenderOut(
        version=version.number, messages=rendered.messages, extra_variables=rendered.extra
    )
