"""Backend pages (list, add, edit, fetch models, test connection) and the live run page."""

from django.contrib import messages
from django.core.cache import cache
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.core.errors import ServiceError
from apps.inference import selectors, services
from apps.inference.backends import KINDS
from apps.inference.forms import BackendEditForm, BackendForm, TestConnectionForm
from apps.teams.decorators import team_view
from apps.teams.permissions import Action, can
from apps.usage import ledger as usage_ledger

TEST_MAX_TOKENS = 64


def _form_fields(data: dict) -> dict:
    fields = dict(data)
    fields["models"] = fields.get("models") or None
    return fields


@team_view(Action.VIEW)
@require_http_methods(["GET", "POST"])
def backend_list(request, team):
    form = BackendForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not can(request.user, team, Action.MANAGE_BACKENDS):
            return render(
                request, "403.html", {"exception": "Only admins add backends."}, status=403
            )
        if form.is_valid():
            try:
                backend = services.backend_create(
                    team=team, actor=request.user, **_form_fields(form.cleaned_data)
                )
            except ServiceError as error:
                form.add_error(error.param if error.param in form.fields else None, error.message)
            else:
                messages.success(request, f"Backend {backend.name} added.")
                return redirect("inference:backend", team_slug=team.slug, backend_id=backend.pk)
        status = 400
    context = {"backends": selectors.backends_for_team(team), "form": form, "kinds": KINDS}
    return render(request, "inference/backend_list.html", context, status=status)


@team_view(Action.VIEW)
@require_http_methods(["GET", "POST"])
def backend_detail(request, team, backend_id: int):
    backend = selectors.backend_for_team(team, backend_id)
    may_manage = can(request.user, team, Action.MANAGE_BACKENDS) and not backend.is_global
    initial = {
        "name": backend.name,
        "base_url": backend.base_url,
        "azure_endpoint": backend.azure_endpoint,
        "azure_deployment": backend.azure_deployment,
        "api_version": backend.api_version,
        "models": "\n".join(backend.model_ids),
        "timeout_seconds": backend.timeout_seconds,
        "max_retries": backend.max_retries,
        "enabled": backend.enabled,
    }
    form = BackendEditForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if not may_manage:
            return render(
                request, "403.html", {"exception": "Only admins edit backends."}, status=403
            )
        if form.is_valid():
            data = _form_fields(form.cleaned_data)
            data["api_key"] = data.get("api_key") or None
            try:
                services.backend_update(backend=backend, actor=request.user, **data)
            except ServiceError as error:
                form.add_error(error.param if error.param in form.fields else None, error.message)
            else:
                messages.success(request, "Backend saved.")
                return redirect("inference:backend", team_slug=team.slug, backend_id=backend.pk)
        status = 400
    context = {
        "backend": backend,
        "spec": KINDS[backend.kind],
        "form": form,
        "may_manage": may_manage,
        "test_form": TestConnectionForm(initial={"model": (backend.model_ids or [""])[0]}),
        "models_error": cache.get(services.models_error_key(backend.pk)),
        "runs": selectors.runs_for_team(team).filter(backend=backend)[:10],
    }
    return render(request, "inference/backend_detail.html", context, status=status)


def _back(request, team, backend, call, success: str):
    try:
        result = call()
    except ServiceError as error:
        messages.error(request, error.message)
        return redirect("inference:backend", team_slug=team.slug, backend_id=backend.pk)
    messages.success(request, success.format(result=result))
    if result == "deleted":
        return redirect("inference:backends", team_slug=team.slug)
    return redirect("inference:backend", team_slug=team.slug, backend_id=backend.pk)


@require_POST
@team_view(Action.MANAGE_BACKENDS)
def backend_refresh_models(request, team, backend_id: int):
    backend = selectors.backend_for_team(team, backend_id)
    return _back(
        request,
        team,
        backend,
        lambda: services.backend_models_refresh_request(backend=backend, actor=request.user),
        "A worker is fetching the model list; reload in a moment.",
    )


@require_POST
@team_view(Action.MANAGE_BACKENDS)
def backend_delete(request, team, backend_id: int):
    backend = selectors.backend_for_team(team, backend_id)
    return _back(
        request,
        team,
        backend,
        lambda: services.backend_delete(backend=backend, actor=request.user),
        "Backend {result}.",
    )


@require_POST
@team_view(Action.USE)
def backend_test(request, team, backend_id: int):
    """Run a small completion through the worker and watch it on the run page."""
    backend = selectors.backend_for_team(team, backend_id)
    form = TestConnectionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a model and write a short prompt.")
        return redirect("inference:backend", team_slug=team.slug, backend_id=backend.pk)
    try:
        run = services.run_create(
            team=team,
            actor=request.user,
            backend_id=backend.pk,
            model=form.cleaned_data["model"],
            messages=[{"role": "user", "content": form.cleaned_data["prompt"]}],
            parameters={"max_tokens": TEST_MAX_TOKENS},
        )
    except ServiceError as error:
        messages.error(request, error.message)
        return redirect("inference:backend", team_slug=team.slug, backend_id=backend.pk)
    return redirect("inference:run", team_slug=team.slug, run_id=run.pk)


@team_view(Action.VIEW)
def run_detail(request, team, run_id: int):
    run = selectors.run_for_team(team, run_id)
    return render(
        request,
        "inference/run_detail.html",
        {
            "run": run,
            "attempts": selectors.attempts_for_run(run),
            # what the usage page counts for this run: its attempts' ledger rows
            "cost": usage_ledger.billed_cost(list(run.usage_records.all()))
            if run.is_finished
            else None,
        },
    )


@require_POST
@team_view(Action.USE)
def run_cancel(request, team, run_id: int):
    run = selectors.run_for_team(team, run_id)
    try:
        services.run_cancel(run=run, actor=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Cancellation requested.")
    return redirect("inference:run", team_slug=team.slug, run_id=run.pk)
