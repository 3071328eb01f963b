"""The rows every claim needs besides the run (its team, backend and prompt version),
kept per worker process.

Why: the claim read them with a three-way join under the run's row lock on every
run, and building four model instances from it was a fifth of a worker's CPU per
request. They change rarely: a prompt version never does (versions are
immutable), a team or a backend when someone edits it.

How long each is trusted: a backend while the run's team routing version
(``apps.core.routing_versions``, which every backend write bumps on commit) is
unchanged, and for at most :data:`MAX_AGE_SECONDS`, the bounds the gateway's
routing cache gives a change (``apps.gateway.routing``); a team for at most
:data:`MAX_AGE_SECONDS`, dropped at once by its own save in this process (what a
team holds for a run, whether its events carry content, may lag a second behind
an edit made elsewhere, as it could have had the run been claimed a second
earlier); a prompt version for good.

Entries are shared by the worker's threads and never handed out: each claim gets
a shallow copy with its own state (:func:`apps.core.rows.clone`), so a run may
attach or change what it holds without touching the cache.
"""

import threading
import time

from django.db.models.signals import post_delete, post_save

from apps.core import routing_versions
from apps.core.rows import clone
from apps.inference.models import Backend
from apps.prompts.models import PromptVersion
from apps.teams.models import Team

MAX_AGE_SECONDS = 1.0
MAX_ENTRIES = 10_000

_rows: dict[tuple[type, int], tuple[float, object, object]] = {}
_lock = threading.Lock()


def _get(model, pk: int, *, max_age: float | None, stamp=None):
    now = time.monotonic()
    entry = _rows.get((model, pk))
    if entry is not None and entry[2] == stamp and (max_age is None or now - entry[0] < max_age):
        return clone(entry[1])
    row = model.objects.filter(pk=pk).first()
    if row is None:
        return None
    with _lock:
        if len(_rows) >= MAX_ENTRIES:
            _rows.clear()
        _rows[(model, pk)] = (now, row, stamp)
    return clone(row)


def team(pk: int) -> Team | None:
    return _get(Team, pk, max_age=MAX_AGE_SECONDS)


def backend(pk: int, *, team_id: int) -> Backend | None:
    """``team_id``: the run's team, whose routing version (with the global one) a write
    to any backend it may use changes. Without readable versions nothing is kept."""
    stamp = routing_versions.stamp(team_id)
    if stamp is None:
        return Backend.objects.filter(pk=pk).first()
    return _get(Backend, pk, max_age=MAX_AGE_SECONDS, stamp=stamp)


def prompt_version(pk: int) -> PromptVersion | None:
    return _get(PromptVersion, pk, max_age=None)


def _drop(sender, instance, **kwargs) -> None:
    with _lock:
        _rows.pop((sender, instance.pk), None)


post_save.connect(_drop, sender=Team, dispatch_uid="worker_rows.team_saved")
post_delete.connect(_drop, sender=Team, dispatch_uid="worker_rows.team_deleted")


def forget() -> None:
    """Drop this process's rows (tests; edits are seen within a second anyway)."""
    with _lock:
        _rows.clear()
