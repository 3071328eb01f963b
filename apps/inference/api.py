"""Backends and runs over the REST API, under a team."""

from django.db.models import F
from django.http import HttpRequest
from ninja import Query, Router, Status

from apps.assistants.api import assistant_param
from apps.core.api_errors import BODY_ERRORS, with_errors
from apps.core.api_pagination import Rows, paginated
from apps.inference import selectors, services
from apps.inference.backends import KINDS
from apps.inference.models import Backend, ChatRun
from apps.inference.schemas import (
    RUNS_ORDER,
    AttemptOut,
    BackendIn,
    BackendOut,
    BackendPatch,
    QueuedOut,
    RemovedOut,
    RunIn,
    RunListQuery,
    RunOut,
    UsageOut,
)
from apps.teams.selectors import team_for_request

router = Router(tags=["inference"])
BACKENDS = ["backends"]
RUNS = ["runs"]


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
        assistant=run.assistant.slug if run.assistant_id else None,
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
    response=with_errors(list[BackendOut]),
    operation_id="backends_list",
    summary="Backends this team may use (its own and global ones)",
    tags=BACKENDS,
)
@paginated
def backends_list(request: HttpRequest, team_slug: str):
    """The team's own backends, then the global ones every team may use, each by name.
    Keys are never returned, only whether one is stored and its last four characters."""
    backends = selectors.backends_for_team(team_for_request(request, team_slug))
    ordered = backends.order_by(F("team_id").asc(nulls_last=True), "name", "pk")
    return Rows(ordered, each=backend_out)


@router.post(
    "/{team_slug}/backends",
    response=with_errors({201: BackendOut}, *BODY_ERRORS, 409),
    operation_id="backends_create",
    summary="Add a backend; its models are fetched by a worker when not given",
    tags=BACKENDS,
)
def backends_create(request: HttpRequest, team_slug: str, payload: BackendIn):
    """Needs the owner or admin role. The API key is stored encrypted and never
    returned; a name the team already uses is 409."""
    team = team_for_request(request, team_slug)
    data = payload.dict()
    backend = services.backend_create(team=team, actor=request.user, **data)
    return Status(201, backend_out(backend))


@router.get(
    "/{team_slug}/backends/{backend_id}",
    response=with_errors(BackendOut),
    operation_id="backends_get",
    summary="One backend (never its key)",
    tags=BACKENDS,
)
def backends_get(request: HttpRequest, team_slug: str, backend_id: int):
    """One of the team's backends or a global one; another team's is 404."""
    return backend_out(selectors.backend_for_team(team_for_request(request, team_slug), backend_id))


@router.patch(
    "/{team_slug}/backends/{backend_id}",
    response=with_errors(BackendOut, *BODY_ERRORS, 409),
    operation_id="backends_update",
    summary="Change a backend",
    tags=BACKENDS,
)
def backends_update(request: HttpRequest, team_slug: str, backend_id: int, payload: BackendPatch):
    """Only the fields sent change; an empty ``api_key`` clears the stored key."""
    backend = selectors.backend_for_team(team_for_request(request, team_slug), backend_id)
    data = payload.dict(exclude_unset=True)
    return backend_out(services.backend_update(backend=backend, actor=request.user, **data))


@router.delete(
    "/{team_slug}/backends/{backend_id}",
    response=with_errors(RemovedOut),
    operation_id="backends_delete",
    summary="Delete a backend; one with runs is disabled instead",
    tags=BACKENDS,
)
def backends_delete(request: HttpRequest, team_slug: str, backend_id: int):
    """Runs keep pointing at the backends they used, so one with runs is disabled
    rather than deleted; the answer says which happened."""
    backend = selectors.backend_for_team(team_for_request(request, team_slug), backend_id)
    return {"result": services.backend_delete(backend=backend, actor=request.user)}


@router.post(
    "/{team_slug}/backends/{backend_id}/models/refresh",
    response=with_errors({202: QueuedOut}, 400),
    operation_id="backends_models_refresh",
    summary="Ask a worker to fetch the backend's model list",
    tags=BACKENDS,
)
def backends_models_refresh(request: HttpRequest, team_slug: str, backend_id: int):
    """A worker calls the backend's ``/v1/models``; read the backend again for the
    result. Kinds that can't list their models answer 400."""
    backend = selectors.backend_for_team(team_for_request(request, team_slug), backend_id)
    services.backend_models_refresh_request(backend=backend, actor=request.user)
    return Status(202, {"result": "queued"})


@router.post(
    "/{team_slug}/runs",
    response=with_errors({202: RunOut}, *BODY_ERRORS),
    operation_id="runs_create",
    summary="Queue a chat completion; a worker runs it",
    tags=RUNS,
)
def runs_create(request: HttpRequest, team_slug: str, payload: RunIn):
    """The run is recorded as queued and handed to a worker when this request
    commits; poll it, or follow it live over the run's WebSocket."""
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
    response=with_errors(list[RunOut]),
    operation_id="runs_list",
    summary="Recent runs, newest first",
    tags=RUNS,
)
@paginated
def runs_list(request: HttpRequest, team_slug: str, filters: Query[RunListQuery]):
    """The team's runs, without their attempts (read one run for those). An unknown
    ``assistant`` is 404, not an empty list."""
    team = team_for_request(request, team_slug)
    runs = selectors.runs_for_team(team).select_related("assistant")
    if filters.status:
        runs = runs.filter(status=filters.status)
    if filters.assistant:
        runs = runs.filter(assistant=assistant_param(team, filters.assistant))
    if filters.model:
        runs = runs.filter(model=filters.model)
    return Rows(RUNS_ORDER.apply(runs, filters.order), each=run_out)


@router.get(
    "/{team_slug}/runs/{run_id}",
    response=with_errors(RunOut),
    operation_id="runs_get",
    summary="One run with its attempts",
    tags=RUNS,
)
def runs_get(request: HttpRequest, team_slug: str, run_id: int):
    """Every call made to a backend for this run (retries and fallbacks) is an attempt."""
    run = selectors.run_for_team(team_for_request(request, team_slug), run_id)
    return run_out(run, with_attempts=True)


@router.post(
    "/{team_slug}/runs/{run_id}/cancel",
    response=with_errors(RunOut, 409),
    operation_id="runs_cancel",
    summary="Stop a queued or running run",
    tags=RUNS,
)
def runs_cancel(request: HttpRequest, team_slug: str, run_id: int):
    """A finished run can't be cancelled (409, code ``run_finished``)."""
    run = selectors.run_for_team(team_for_request(request, team_slug), run_id)
    services.run_cancel(run=run, actor=request.user)
    run.refresh_from_db()
    return run_out(run)
