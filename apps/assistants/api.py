"""Assistants over the REST API, under a team."""

from django.db.models import Q
from django.http import Http404, HttpRequest
from ninja import Query, Router, Status

from apps.assistants import services
from apps.assistants.models import Assistant
from apps.assistants.schemas import (
    ASSISTANTS_ORDER,
    AssistantIn,
    AssistantListQuery,
    AssistantOut,
    AssistantPatch,
    DuplicateIn,
    RemovedOut,
)
from apps.assistants.selectors import assistant_for_team, assistants_for_team
from apps.core.api_errors import BODY_ERRORS, with_errors
from apps.core.api_pagination import Rows, paginated
from apps.core.errors import NotFound
from apps.teams.selectors import team_for_request

router = Router(tags=["assistants"])


def assistant_out(a: Assistant) -> AssistantOut:
    return AssistantOut(
        slug=a.slug,
        name=a.name,
        description=a.description,
        backend=a.backend_id,
        model=a.model,
        fallbacks=a.fallbacks,
        instructions_source=a.instructions_source,
        instructions=a.instructions,
        prompt=a.prompt.slug if a.prompt else None,
        prompt_label=a.prompt_label,
        prompt_version=a.prompt_version.number if a.prompt_version else None,
        temperature=a.temperature,
        top_p=a.top_p,
        max_tokens=a.max_tokens,
        stop=a.stop,
        memory_messages=a.memory_messages,
        tools=a.tools,
        archived=a.is_archived,
        created_at=a.created_at,
        updated_at=a.updated_at,
    )


def assistant_param(team, slug: str, param: str = "assistant") -> Assistant:
    """The assistant a list filter names; an unknown slug is a 404 naming the parameter,
    so a typo isn't mistaken for an empty list."""
    try:
        return assistant_for_team(team, slug)
    except Http404:
        raise NotFound(f"No assistant {slug!r} in this team.", param=param) from None


@router.get(
    "/{team_slug}/assistants",
    response=with_errors(list[AssistantOut]),
    operation_id="assistants_list",
    summary="Assistants of a team",
)
@paginated
def assistants_list(request: HttpRequest, team_slug: str, filters: Query[AssistantListQuery]):
    """Active assistants by name unless the filters ask for archived ones."""
    team = team_for_request(request, team_slug)
    found = assistants_for_team(team, include_archived=True).select_related("prompt_version")
    if not filters.include_archived:
        found = found.filter(archived_at__isnull=not filters.archived)
    if filters.q:
        found = found.filter(Q(name__icontains=filters.q) | Q(description__icontains=filters.q))
    if filters.model:
        found = found.filter(model=filters.model)
    return Rows(ASSISTANTS_ORDER.apply(found, filters.order), each=assistant_out)


@router.post(
    "/{team_slug}/assistants",
    response=with_errors({201: AssistantOut}, *BODY_ERRORS, 409),
    operation_id="assistants_create",
    summary="Create an assistant",
)
def assistants_create(request: HttpRequest, team_slug: str, payload: AssistantIn):
    """Its slug comes from the name (409 when taken). The backend, prompt and
    parameters are checked here (400 or 404 naming the field), not at the first chat."""
    data = payload.dict()
    assistant = services.assistant_create(
        team=team_for_request(request, team_slug), actor=request.user, **data
    )
    return Status(201, assistant_out(assistant))


@router.get(
    "/{team_slug}/assistants/{slug}",
    response=with_errors(AssistantOut),
    operation_id="assistants_get",
    summary="One assistant",
)
def assistants_get(request: HttpRequest, team_slug: str, slug: str):
    """One assistant by slug, archived or not."""
    return assistant_out(assistant_for_team(team_for_request(request, team_slug), slug))


@router.patch(
    "/{team_slug}/assistants/{slug}",
    response=with_errors(AssistantOut, *BODY_ERRORS),
    operation_id="assistants_update",
    summary="Change an assistant",
)
def assistants_update(request: HttpRequest, team_slug: str, slug: str, payload: AssistantPatch):
    """Only the fields sent change, checked like on create; the slug stays."""
    assistant = assistant_for_team(team_for_request(request, team_slug), slug)
    updated = services.assistant_update(
        assistant=assistant, actor=request.user, **payload.dict(exclude_unset=True)
    )
    return assistant_out(updated)


@router.post(
    "/{team_slug}/assistants/{slug}/duplicate",
    response=with_errors({201: AssistantOut}, *BODY_ERRORS),
    operation_id="assistants_duplicate",
    summary="Copy an assistant",
)
def assistants_duplicate(request: HttpRequest, team_slug: str, slug: str, payload: DuplicateIn):
    """A new assistant with the same settings and a slug of its own."""
    assistant = assistant_for_team(team_for_request(request, team_slug), slug)
    copy = services.assistant_duplicate(assistant=assistant, actor=request.user, name=payload.name)
    return Status(201, assistant_out(copy))


@router.delete(
    "/{team_slug}/assistants/{slug}",
    response=with_errors(RemovedOut),
    operation_id="assistants_delete",
    summary="Delete an assistant; one with history is archived instead",
)
def assistants_delete(request: HttpRequest, team_slug: str, slug: str):
    """An assistant with conversations or runs is archived so their history keeps its
    name; the answer says which happened."""
    assistant = assistant_for_team(team_for_request(request, team_slug), slug)
    return {"result": services.assistant_remove(assistant=assistant, actor=request.user)}
