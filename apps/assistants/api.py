"""Assistants over the REST API, under a team."""

from django.http import HttpRequest
from ninja import Router, Status

from apps.assistants import services
from apps.assistants.models import Assistant
from apps.assistants.schemas import AssistantIn, AssistantOut, AssistantPatch, DuplicateIn
from apps.assistants.selectors import assistant_for_team, assistants_for_team
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


@router.get(
    "/{team_slug}/assistants",
    response=list[AssistantOut],
    operation_id="assistants_list",
    summary="Assistants of a team",
)
def assistants_list(request: HttpRequest, team_slug: str, archived: bool = False):
    team = team_for_request(request, team_slug)
    return [assistant_out(a) for a in assistants_for_team(team, include_archived=archived)]


@router.post(
    "/{team_slug}/assistants",
    response={201: AssistantOut},
    operation_id="assistants_create",
    summary="Create an assistant",
)
def assistants_create(request: HttpRequest, team_slug: str, payload: AssistantIn):
    data = payload.dict()
    assistant = services.assistant_create(
        team=team_for_request(request, team_slug), actor=request.user, **data
    )
    return Status(201, assistant_out(assistant))


@router.get(
    "/{team_slug}/assistants/{slug}",
    response=AssistantOut,
    operation_id="assistants_get",
    summary="One assistant",
)
def assistants_get(request: HttpRequest, team_slug: str, slug: str):
    return assistant_out(assistant_for_team(team_for_request(request, team_slug), slug))


@router.patch(
    "/{team_slug}/assistants/{slug}",
    response=AssistantOut,
    operation_id="assistants_update",
    summary="Change an assistant",
)
def assistants_update(request: HttpRequest, team_slug: str, slug: str, payload: AssistantPatch):
    assistant = assistant_for_team(team_for_request(request, team_slug), slug)
    updated = services.assistant_update(
        assistant=assistant, actor=request.user, **payload.dict(exclude_unset=True)
    )
    return assistant_out(updated)


@router.post(
    "/{team_slug}/assistants/{slug}/duplicate",
    response={201: AssistantOut},
    operation_id="assistants_duplicate",
    summary="Copy an assistant",
)
def assistants_duplicate(request: HttpRequest, team_slug: str, slug: str, payload: DuplicateIn):
    assistant = assistant_for_team(team_for_request(request, team_slug), slug)
    copy = services.assistant_duplicate(assistant=assistant, actor=request.user, name=payload.name)
    return Status(201, assistant_out(copy))


@router.delete(
    "/{team_slug}/assistants/{slug}",
    response=dict,
    operation_id="assistants_delete",
    summary="Delete an assistant; one with history is archived instead",
)
def assistants_delete(request: HttpRequest, team_slug: str, slug: str):
    assistant = assistant_for_team(team_for_request(request, team_slug), slug)
    return {"result": services.assistant_remove(assistant=assistant, actor=request.user)}
