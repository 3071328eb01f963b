"""Reads for backends and runs; no side effects."""

from django.db.models import Q, QuerySet
from django.http import Http404

from apps.core.errors import NotFound
from apps.inference.models import Backend, ChatRun, RunAttempt
from apps.teams.models import Team


def backends_for_team(team: Team, *, include_disabled: bool = True) -> QuerySet[Backend]:
    """The team's own backends and the global ones every team may use."""
    queryset = Backend.objects.filter(Q(team=team) | Q(team__isnull=True))
    if not include_disabled:
        queryset = queryset.filter(enabled=True)
    return queryset.order_by("team_id", "name")


def backend_serving(team: Team, model: str) -> Backend | None:
    """The first enabled backend of the team (its own before the global ones) whose
    model list has ``model``. Matched here, not with a JSON containment lookup, which
    SQLite (the embedded default) doesn't have; a team has a handful of backends."""
    for backend in backends_for_team(team, include_disabled=False):
        if model in (backend.model_ids or ()):
            return backend
    return None


def backend_for_team(team: Team, backend_id: int) -> Backend:
    backend = backends_for_team(team).filter(pk=backend_id).first()
    if backend is None:
        raise Http404("No such backend in this team.")
    return backend


def backend_available_to(team: Team, backend_id, *, param: str) -> Backend:
    """A backend the team may use, for ids that come from callers (forms, API bodies):
    anything else, including another team's id, is the same NotFound naming the field."""
    backend = (
        backends_for_team(team).filter(pk=backend_id).first()
        if isinstance(backend_id, int)
        else None
    )
    if backend is None:
        raise NotFound(f"No backend {backend_id!r} in this team.", param=param)
    return backend


def runs_for_team(team: Team) -> QuerySet[ChatRun]:
    return ChatRun.objects.filter(team=team).select_related("backend", "served_backend")


def run_for_team(team: Team, run_id: int) -> ChatRun:
    run = runs_for_team(team).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such run in this team.")
    return run


def attempts_for_run(run: ChatRun) -> QuerySet[RunAttempt]:
    return run.attempts.select_related("backend").order_by("started_at", "number")
