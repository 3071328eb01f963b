"""Backends and runs over the REST API, under a team."""

from django.http import HttpRequest
from ninja import Query, Router, Status

from apps.inference import selectors, services
from apps.inference.backends import KINDS
from apps.inference.models import Backend, ChatRun, RunStatus
from apps.inference.schemas import (
    AttemptOut,
    BackendIn,
    BackendOut,
    BackendPatch,
    RunIn,
    RunOut,
    RunPage,
    UsageOut,
)
from apps.teams.selectors import team_for_request

router = Router(tags=["inference"])


def backend_out(backend: Backend) -> BackendOut:
    spec = KINDS[backend.kind]
    return BackendOut(
        id=backend.pk,
        name=backend.name,
        kind=backend.kind,
        kind_label=spec.label,
        scope="global" if backend.is_global else "team",
        development_only=spec.development_only,
        base_url=backend.base_url,
        azure_endpoint=backend.azure_endpoint,
        azure_deployment=backend.azure_deployment,
        api_version=backend.api_version,
        has_api_key=backend.has_api_key,
        api_key_last4=backend.api_key_last4,
        models=backend.model_ids,
        models_fetched_at=backend.models_fetched_at,
        timeout_seconds=backend.timeout_seconds,
        max_retries=backend.max_retries,
        enabled=backend.enabled,
    )


def run_out(run: ChatRun, *, with_attempts: bool = False) -> RunOut:
    attempts = None
    if with_attempts:
        attempts = [
            AttemptOut(
                number=a.number,
                backend=a.backend_id,
                model=a.model,
                succeeded=a.succeeded,
                error=a.error,
                http_status=a.http_status,
                prompt_tokens=a.prompt_tokens,
                completion_tokens=a.completion_tokens,
                usage_estimated=a.usage_estimated,
                latency_ms=a.latency_ms,
                ttft_ms=a.ttft_ms,
                started_at=a.started_at,
            )
            for a in selectors.attempts_for_run(run)
        ]
    return RunOut(
        id=run.pk,
        status=run.status,
        backend=run.backend_id,
        model=run.model,
        served_backend=run.served_backend_id,
        served_model=run.served_model,
        messages=run.messages,
        parameters=run.parameters,
        fallbacks=run.fallbacks,
        output=run.output,
        tool_calls=run.tool_calls,
        finish_reason=run.finish_reason,
        usage=UsageOut(
            prompt_tokens=run.prompt_tokens,
            completion_tokens=run.completion_tokens,
            total_tokens=run.total_tokens,
            estimated=run.usage_estimated,
        ),
        latency_ms=run.latency_ms,
        ttft_ms=run.ttft_ms,
        error=run.error,
        error_code=run.error_code,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        attempts=attempts,
    )


@router.get(
    "/{team_slug}/backends",
    response=list[BackendOut],
    operation_id="backends_list",
    summary="Backends this team may use (its own and global ones)",
)
def backends_list(request: HttpRequest, team_slug: str):
    return [
        backend_out(b) for b in selectors.backends_for_team(team_for_request(request, team_slug))
    ]


@router.post(
    "/{team_slug}/backends",
    response={201: BackendOut},
    operation_id="backends_create",
    summary="Add a backend; its models are fetched by a worker when not given",
)
def backends_create(request: HttpRequest, team_slug: str, payload: BackendIn):
    team = team_for_request(request, team_slug)
    data = payload.dict()
    backend = services.backend_create(team=team, actor=request.user, **data)
    return Status(201, backend_out(backend))


@router.get(
    "/{team_slug}/backends/{backend_id}",
    response=BackendOut,
    operation_id="backends_get",
    summary="One backend (never its key)",
)
def backends_get(request: HttpRequest, team_slug: str, backend_id: int):
    return backend_out(selectors.backend_for_team(team_for_request(request, team_slug), backend_id))


@router.patch(
    "/{team_slug}/backends/{backend_id}",
    response=BackendOut,
    operation_id="backends_update",
    summary="Change a backend",
)
def backends_update(request: HttpRequest, team_slug: str, backend_id: int, payload: BackendPatch):
    backend = selectors.backend_for_team(team_for_request(request, team_slug), backend_id)
    data = payload.dict(exclude_unset=True)
    return backend_out(services.backend_update(backend=backend, actor=request.user, **data))


@router.delete(
    "/{team_slug}/backends/{backend_id}",
    response=dict,
    operation_id="backends_delete",
    summary="Delete a backend; one with runs is disabled instead",
)
def backends_delete(request: HttpRequest, team_slug: str, backend_id: int):
    backend = selectors.backend_for_team(team_for_request(request, team_slug), backend_id)
    return {"result": services.backend_delete(backend=backend, actor=request.user)}


@router.post(
    "/{team_slug}/backends/{backend_id}/models/refresh",
    response={202: dict},
    operation_id="backends_models_refresh",
    summary="Ask a worker to fetch the backend's model list",
)
def backends_models_refresh(request: HttpRequest, team_slug: str, backend_id: int):
    backend = selectors.backend_for_team(team_for_request(request, team_slug), backend_id)
    services.backend_models_refresh_request(backend=backend, actor=request.user)
    return Status(202, {"result": "queued"})


@router.post(
    "/{team_slug}/runs",
    response={202: RunOut},
    operation_id="runs_create",
    summary="Queue a chat completion; a worker runs it",
)
def runs_create(request: HttpRequest, team_slug: str, payload: RunIn):
    team = team_for_request(request, team_slug)
    run = services.run_create(
        team=team,
        actor=request.user,
        backend_id=payload.backend,
        model=payload.model,
        messages=payload.messages,
        parameters=payload.parameters,
        fallbacks=[f.dict() for f in payload.fallbacks or []],
    )
    return Status(202, run_out(run))


@router.get(
    "/{team_slug}/runs",
    response=RunPage,
    operation_id="runs_list",
    summary="Recent runs, newest first",
)
def runs_list(
    request: HttpRequest,
    team_slug: str,
    status: RunStatus | None = None,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0),
):
    runs = selectors.runs_for_team(team_for_request(request, team_slug))
    if status:
        runs = runs.filter(status=status)
    page = list(runs.order_by("-created_at", "-pk")[offset : offset + limit + 1])
    return RunPage(
        items=[run_out(r) for r in page[:limit]],
        limit=limit,
        offset=offset,
        has_more=len(page) > limit,
    )


@router.get(
    "/{team_slug}/runs/{run_id}",
    response=RunOut,
    operation_id="runs_get",
    summary="One run with its attempts",
)
def runs_get(request: HttpRequest, team_slug: str, run_id: int):
    run = selectors.run_for_team(team_for_request(request, team_slug), run_id)
    return run_out(run, with_attempts=True)


@router.post(
    "/{team_slug}/runs/{run_id}/cancel",
    response=RunOut,
    operation_id="runs_cancel",
    summary="Stop a queued or running run",
)
def runs_cancel(request: HttpRequest, team_slug: str, run_id: int):
    run = selectors.run_for_team(team_for_request(request, team_slug), run_id)
    services.run_cancel(run=run, actor=request.user)
    run.refresh_from_db()
    return run_out(run)
