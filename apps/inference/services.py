"""Writes for backends and runs.

Pages, the API, the admin and the tasks all come through here; credentials
are encrypted before they touch the database and never leave it in clear.
Calls to backends themselves happen only in workers (``executor`` and the
tasks), never in a web request.
"""

from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from apps.core import routing_versions
from apps.core.crypto import encrypt, last4
from apps.core.errors import Conflict, ServiceError
from apps.events.outbox import emit
from apps.events.statement_events import insert_with_event
from apps.inference import dispatch, executor, validation
from apps.inference.backends import KINDS, BackendError, client_for
from apps.inference.models import Backend, BackendKind, ChatRun, RunStatus
from apps.inference.selectors import backend_available_to
from apps.quotas import enforcement as quotas
from apps.teams.models import Team
from apps.teams.permissions import Action, api_key_of, require, require_use_of, user_of

BACKEND_FIELDS = (
    "name",
    "base_url",
    "azure_endpoint",
    "azure_deployment",
    "api_version",
    "timeout_seconds",
    "max_retries",
    "enabled",
)


def _check_url(value: str, param: str) -> str:
    value = (value or "").strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ServiceError(f"{param} must be an http(s) URL.", param=param)
    return value.rstrip("/")


def _clean_models(models) -> list[str]:
    if models is None:
        return []
    if isinstance(models, str):
        models = [m for m in models.replace(",", "\n").splitlines()]
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ServiceError("models must be a list of model ids.", param="models")
    cleaned = sorted({m.strip() for m in models if m.strip()})
    if any(len(m) > 200 for m in cleaned) or len(cleaned) > 500:
        raise ServiceError("At most 500 model ids of at most 200 characters.", param="models")
    return cleaned


def _validate_backend(backend: Backend, *, api_key_present: bool) -> None:
    spec = KINDS.get(backend.kind)
    if spec is None:
        raise ServiceError(f"Unknown backend kind {backend.kind!r}.", param="kind")
    if not backend.name.strip() or len(backend.name) > 100:
        raise ServiceError("A backend needs a name of at most 100 characters.", param="name")
    if spec.needs_base_url and not backend.base_url:
        raise ServiceError(
            "This kind needs the server's base URL (ending in /v1).", param="base_url"
        )
    if spec.needs_api_key and not api_key_present:
        raise ServiceError("This kind needs an API key.", param="api_key")
    if spec.needs_azure and not (backend.azure_endpoint and backend.api_version):
        raise ServiceError("Azure needs the endpoint and the API version.", param="azure_endpoint")
    if not 1 <= backend.timeout_seconds <= 600:
        raise ServiceError("timeout_seconds must be between 1 and 600.", param="timeout_seconds")
    if not 0 <= backend.max_retries <= 10:
        raise ServiceError("max_retries must be between 0 and 10.", param="max_retries")
    duplicate = Backend.objects.filter(team=backend.team, name=backend.name).exclude(pk=backend.pk)
    if duplicate.exists():
        raise Conflict(f"There is already a backend called {backend.name!r}.", param="name")


def _apply(backend: Backend, fields: dict) -> None:
    for name in BACKEND_FIELDS:
        if name in fields and fields[name] is not None:
            setattr(backend, name, fields[name])
    backend.name = (backend.name or "").strip()
    backend.base_url = _check_url(backend.base_url, "base_url")
    backend.azure_endpoint = _check_url(backend.azure_endpoint, "azure_endpoint")


def _set_api_key(backend: Backend, api_key: str | None) -> None:
    if api_key is None:
        return
    api_key = api_key.strip()
    backend.api_key_encrypted = encrypt(api_key) if api_key else ""
    backend.api_key_last4 = last4(api_key) if api_key else ""


def _require_backend_admin(actor, team: Team | None) -> None:
    """Team admins manage their team's backends; staff (the platform operators, in the
    Django admin) manage every backend, including the global ones."""
    if getattr(actor, "is_staff", False) and actor.is_active:
        return
    if team is None:
        raise PermissionDenied("Only staff can manage global backends.")
    require(actor, team, Action.MANAGE_BACKENDS)


def backend_check(*, instance: Backend | None, api_key: str | None, **fields) -> None:
    """Validate without saving; lets a form show the service's errors next to its fields."""
    backend = Backend(
        pk=instance.pk if instance else None,
        team=fields.pop("team", instance.team if instance else None),
        kind=fields.pop("kind", None) or (instance.kind if instance else ""),
    )
    if instance is not None:
        for name in BACKEND_FIELDS:
            setattr(backend, name, getattr(instance, name))
        backend.api_key_encrypted = instance.api_key_encrypted
    _apply(backend, fields)
    present = bool(api_key) or bool(backend.api_key_encrypted)
    _validate_backend(backend, api_key_present=present)


def _backend_event(backend: Backend, type_: str, actor, **extra) -> None:
    """Team backends only: a global backend belongs to no team's stream."""
    if backend.team_id is None:
        return
    data = {"backend_id": backend.pk, "name": backend.name, "kind": backend.kind, **extra}
    emit(backend.team, type_, subject=f"backend/{backend.pk}", data=data, actor=actor)


@transaction.atomic
def backend_create(
    *, team: Team | None, actor, kind: str, name: str, api_key: str = "", models=None, **fields
) -> Backend:
    _require_backend_admin(actor, team)
    routing_versions.invalidate(team_id=team.pk if team else None)
    backend = Backend(team=team, kind=kind, created_by=user_of(actor))
    _apply(backend, {"name": name, **fields})
    _set_api_key(backend, api_key)
    backend.model_ids = _clean_models(models)
    if kind == BackendKind.LOCAL and not backend.model_ids:
        from apps.inference.backends.local import LOCAL_MODELS

        backend.model_ids = list(LOCAL_MODELS)
    _validate_backend(backend, api_key_present=bool(backend.api_key_encrypted))
    backend.save()
    _backend_event(backend, "backend.created", actor, models=backend.model_ids)
    if KINDS[kind].lists_models and kind != BackendKind.LOCAL and not backend.model_ids:
        transaction.on_commit(lambda: _enqueue_models_refresh(backend.pk))
    return backend


@transaction.atomic
def backend_update(
    *, backend: Backend, actor, api_key: str | None = None, models=None, **fields
) -> Backend:
    _require_backend_admin(actor, backend.team)
    routing_versions.invalidate(team_id=backend.team_id)
    backend = Backend.objects.select_for_update().get(pk=backend.pk)
    if "kind" in fields and fields["kind"] not in (None, backend.kind):
        raise ServiceError("The kind of a backend can't change; create a new one.", param="kind")
    fields.pop("kind", None)
    _apply(backend, fields)
    _set_api_key(backend, api_key)
    if models is not None:
        backend.model_ids = _clean_models(models)
    _validate_backend(backend, api_key_present=bool(backend.api_key_encrypted))
    backend.save()
    changed = sorted(name for name, value in fields.items() if value is not None)
    changed += ["api_key"] if api_key is not None else []
    changed += ["models"] if models is not None else []
    _backend_event(
        backend, "backend.changed", actor, enabled=backend.enabled, changed=sorted(changed)
    )
    return backend


@transaction.atomic
def backend_delete(*, backend: Backend, actor) -> str:
    """Delete a backend without history; one that served runs is disabled instead."""
    _require_backend_admin(actor, backend.team)
    routing_versions.invalidate(team_id=backend.team_id)
    if backend.runs.exists() or ChatRun.objects.filter(served_backend=backend).exists():
        Backend.objects.filter(pk=backend.pk).update(enabled=False, updated_at=timezone.now())
        return "disabled"
    backend.delete()
    return "deleted"


def _enqueue_models_refresh(backend_id: int) -> None:
    from apps.inference.tasks import refresh_backend_models

    refresh_backend_models.delay(backend_id)


def backend_models_refresh_request(*, backend: Backend, actor) -> None:
    """Ask a worker to fetch the model list (backends are only called from workers)."""
    _require_backend_admin(actor, backend.team)
    if not KINDS[backend.kind].lists_models:
        raise ServiceError("This kind doesn't list its models; enter them by hand.", param="models")
    transaction.on_commit(lambda: _enqueue_models_refresh(backend.pk))


def backend_models_refresh_by_id(backend_id: int) -> list[str] | None:
    """Worker side of the refresh; a failure is stored on the backend's cache entry."""
    backend = Backend.objects.filter(pk=backend_id).first()
    if backend is None:
        return None
    try:
        models = client_for(backend).list_models()
    except BackendError as error:
        cache.set(models_error_key(backend_id), error.message, 3600)
        return None
    cache.delete(models_error_key(backend_id))
    Backend.objects.filter(pk=backend_id).update(
        model_ids=_clean_models(models), models_fetched_at=timezone.now()
    )
    routing_versions.invalidate(team_id=backend.team_id)
    return models


def models_error_key(backend_id: int) -> str:
    return f"backend-models-error:{backend_id}"


# --- Runs ----------------------------------------------------------------------


def _enabled_backend(team: Team, backend_id, param: str) -> Backend:
    backend = backend_available_to(team, backend_id, param=param)
    if not backend.enabled:
        raise ServiceError(
            f"Backend {backend.name} is disabled.", param=param, code="backend_disabled"
        )
    return backend


def run_create(
    *,
    team: Team,
    actor,
    backend_id: int | None = None,
    backend: Backend | None = None,
    model: str,
    messages,
    parameters=None,
    fallbacks=None,
    assistant=None,
    prompt_version=None,
    end_user: str = "",
    reply=None,
) -> ChatRun:
    """Record the request and hand it to a worker once it is committed.
    ``reply``: a :class:`~apps.inference.feed.Reply` when the caller waits for the
    answer on its process's reply channel (the gateway).

    The only write is the run's row with its ``run.queued`` event, both or neither
    (:func:`~apps.events.outbox.insert_with_event`: one statement on PostgreSQL), so
    no transaction is opened here: every gateway call pays this write. Called inside
    a caller's transaction, the task is sent when that one commits.

    ``backend`` instead of ``backend_id``: one the caller just read from
    ``backends_for_team`` (the gateway's raw-model path), so it isn't read again."""
    require(actor, team, Action.USE)
    require_use_of(actor, assistant=assistant, model=None if assistant else model)
    if backend is None or backend.team_id not in (None, team.pk) or not backend.enabled:
        backend = _enabled_backend(team, backend.pk if backend else backend_id, "backend")
    cleaned_fallbacks = validation.clean_fallbacks(fallbacks)
    fallback_backends = [
        _enabled_backend(team, fallback["backend"], f"fallbacks[{i}].backend")
        for i, fallback in enumerate(cleaned_fallbacks)
    ]
    model = validation.clean_model(model)
    messages = validation.clean_messages(messages)
    parameters = validation.clean_parameters(parameters)
    end_user = validation.clean_end_user(end_user)
    validation.require_served(backend, model)
    for i, (fallback, fallback_backend) in enumerate(
        zip(cleaned_fallbacks, fallback_backends, strict=True)
    ):
        validation.require_served(
            fallback_backend, fallback["model"] or model, param=f"fallbacks[{i}].model"
        )
    # The worst case is reserved (or a 429 raised) before anything is written.
    reservation = quotas.reserve_for_run(
        team=team,
        actor=actor,
        backend_id=backend.pk,
        model=model,
        messages=messages,
        parameters=parameters,
        fallbacks=cleaned_fallbacks,
    )
    parameters = quotas.capped_parameters(parameters, reservation, backend.kind)
    with quotas.released_on_error(reservation):
        run = ChatRun(
            team=team,
            created_by=user_of(actor),
            api_key=api_key_of(actor),
            end_user=end_user,
            assistant=assistant,
            prompt_version=prompt_version,
            backend=backend,
            model=model,
            messages=messages,
            parameters=parameters,
            fallbacks=cleaned_fallbacks,
            enqueued_at=timezone.now(),
            quota_reservation=reservation,
        )
        insert_with_event(
            run,
            team,
            "run.queued",
            subject_prefix="run/",
            id_field="run_id",
            data={
                "model": run.model,
                "assistant_id": run.assistant_id,
                "key_id": run.api_key_id,
                "backend_id": run.backend_id,
                "messages": run.messages,
            },
            actor=actor,
            assistant_id=run.assistant_id,
            key_id=run.api_key_id,
        )
    transaction.on_commit(lambda: dispatch.enqueue_run(run.pk, reply))
    return run


@transaction.atomic
def run_cancel(*, run: ChatRun, actor) -> ChatRun:
    require(actor, run.team, Action.USE)
    run = ChatRun.objects.select_for_update().get(pk=run.pk)
    if run.is_finished:
        raise Conflict(f"The run already {run.status}.", code="run_finished")
    run.cancel_requested_at = timezone.now()
    if run.status == RunStatus.QUEUED:
        executor.end_without_call(
            run, RunStatus.CANCELLED, executor.CANCELLED_BY_CALLER, "cancelled"
        )
        return run
    run.save(update_fields=["cancel_requested_at"])
    # The worker polls this key between chunks; the row is the fallback after a restart.
    transaction.on_commit(lambda: cache.set(executor.cancel_key(run.pk), 1, 3600))
    return run


def _resend_lost_queued() -> int:
    """Hand queued runs to the queue again when their message seems lost (the broker
    restarted, or a worker gave up on the database); claiming is idempotent, so a
    duplicate message is harmless."""
    before = timezone.now() - timedelta(seconds=settings.INFERENCE_QUEUED_RESEND_SECONDS)
    lost = list(
        ChatRun.objects.filter(status=RunStatus.QUEUED, enqueued_at__lt=before).values_list(
            "pk", flat=True
        )[:500]
    )
    ChatRun.objects.filter(pk__in=lost).update(enqueued_at=timezone.now())
    for run_id in lost:
        dispatch.enqueue_run(run_id)
    return len(lost)


def runs_sweep() -> dict:
    """Re-queue runs whose worker stopped sending heartbeats, or fail them after
    ``INFERENCE_MAX_DELIVERIES``; a cancelled one is closed as cancelled. Queued runs
    waiting far too long are sent to the queue again."""
    stale_before = timezone.now() - timedelta(seconds=settings.INFERENCE_STALE_SECONDS)
    counts = {"requeued": 0, "failed": 0, "cancelled": 0, "resent": _resend_lost_queued()}
    stale_ids = list(
        ChatRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale_before).values_list(
            "pk", flat=True
        )[:500]
    )
    for run_id in stale_ids:
        with transaction.atomic():
            run = (
                ChatRun.objects.select_for_update(skip_locked=True)
                .filter(pk=run_id, status=RunStatus.RUNNING, heartbeat_at__lt=stale_before)
                .first()
            )
            if run is None:
                continue
            if run.cancel_requested_at:
                executor.end_without_call(
                    run, RunStatus.CANCELLED, executor.CANCELLED_BY_CALLER, "cancelled"
                )
                counts["cancelled"] += 1
            elif run.deliveries >= settings.INFERENCE_MAX_DELIVERIES:
                executor.end_without_call(
                    run,
                    RunStatus.FAILED,
                    f"The worker stopped responding {run.deliveries} times; giving up.",
                    "worker_lost",
                )
                counts["failed"] += 1
            else:
                run.status = RunStatus.QUEUED
                run.claim_token = None
                run.heartbeat_at = None
                run.enqueued_at = timezone.now()
                run.save(update_fields=["status", "claim_token", "heartbeat_at", "enqueued_at"])
                transaction.on_commit(lambda run_id=run.pk: dispatch.enqueue_run(run_id))
                counts["requeued"] += 1
    return counts
