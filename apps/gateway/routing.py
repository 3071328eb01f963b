"""The team's routing for the gateway (name -> assistant or backend), cached per process.

Why a cache: resolving the ``model`` of a request cost two or three queries on
every call (the assistant with its backend, the prompt label it follows, or
the team's backends for a raw model id), about 12 % of the web process's CPU,
for an answer that changes only when someone edits an assistant, a prompt's
labels or versions, or a backend.

Why it is never stale: each entry is stamped with two routing versions kept in
the Django cache (Redis in the full stack, so shared by every process): the
team's and a global one, because a global backend serves every team. A request
reads both in one ``MGET`` and uses its entry only when the stamp still
matches. Every write that changes routing calls
:func:`apps.core.routing_versions.invalidate`, which sets
a fresh version once its transaction commits (not before: a process reloading
in between would read the old rows and keep them under the new version). So a
request that arrives after the commit's version write reloads, in every process.
A version that is missing (evicted, Redis restarted) is replaced by a fresh
one, which also invalidates, since nobody can tell what changed meanwhile.

Why there is also a one-second age limit: the version write can be lost (the
process dies between commit and ``on_commit``, Redis refuses the write), and
some writes bypass the services (the Django admin's assistant form, a shell);
:data:`MAX_AGE_SECONDS` bounds how long any of those can go unseen. That costs
one reload per name per second per process, not one per request. When the
versions can't be read at all, routing is read from the database and not kept.

Entries are shared by every thread of the process: nothing may change them.
What a request gets to work with are copies (:meth:`AssistantRoute.for_request`,
:meth:`ModelRoute.for_request`); the JSON values inside (model lists, tools,
fallbacks, prompt messages) are still shared and only ever read.
"""

import logging
import threading
import time
from dataclasses import dataclass

from apps.assistants import resolution
from apps.assistants.models import Assistant
from apps.assistants.selectors import assistants_for_team
from apps.core import routing_versions
from apps.core.errors import NotFound
from apps.core.rows import clone
from apps.inference.models import Backend
from apps.inference.selectors import backend_serving
from apps.prompts.models import PromptVersion

logger = logging.getLogger(__name__)

MAX_AGE_SECONDS = 1.0
MAX_ENTRIES = 10_000  # names are the caller's: a flood of made-up ones must not grow memory

_entries: dict[tuple[int, str], tuple[tuple[str, str], float, object]] = {}
_entries_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class AssistantRoute:
    """An assistant as the gateway runs it: the instance (with its backend) and the
    prompt version it would use now, or the NotFound to raise when that is gone."""

    assistant: Assistant
    prompt_version: PromptVersion | None
    missing_prompt: tuple[str, str | None] | None = None  # NotFound's (message, param)

    def for_request(self) -> tuple[Assistant, Backend | None, PromptVersion | None]:
        """Copies one request may hold (the assistant with its copied backend attached)."""
        assistant = clone(self.assistant)
        backend = None
        if self.assistant.backend_id is not None:
            backend = clone(self.assistant.backend)
            assistant.backend = backend
        version = clone(self.prompt_version) if self.prompt_version is not None else None
        return assistant, backend, version

    def missing_prompt_error(self) -> NotFound | None:
        """A new exception each time: one raised object must not travel across threads."""
        if self.missing_prompt is None:
            return None
        message, param = self.missing_prompt
        return NotFound(message, param=param)


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """A raw model id and the team's first enabled backend that lists it."""

    backend: Backend

    def for_request(self) -> Backend:
        return clone(self.backend)


Route = AssistantRoute | ModelRoute | None


def route(team, name: str) -> Route:
    """What ``name`` means for the team right now; no SQL when this process has it.

    The stamp is read before the rows, so rows loaded while a change commits are
    kept under the old version and reloaded on the next request."""
    stamp = routing_versions.stamp(team.pk)
    key = (team.pk, name)
    now = time.monotonic()
    entry = _entries.get(key)
    if entry is not None and stamp is not None:
        entry_stamp, loaded_at, found = entry
        if entry_stamp == stamp and now - loaded_at < MAX_AGE_SECONDS:
            return found
    found = _load(team, name)
    if stamp is not None:
        with _entries_lock:
            if len(_entries) >= MAX_ENTRIES:
                _entries.clear()
            _entries[key] = (stamp, now, found)
    return found


def forget() -> None:
    """Drop this process's entries (tests; the versions make it unnecessary otherwise)."""
    with _entries_lock:
        _entries.clear()


def _load(team, name: str) -> Route:
    assistant = assistants_for_team(team).select_related("prompt_version").filter(slug=name).first()
    if assistant is None:
        backend = backend_serving(team, name)
        return ModelRoute(backend) if backend is not None else None
    if assistant.backend_id is None:  # refused before its prompt matters
        return AssistantRoute(assistant, None)
    try:
        version = resolution.prompt_version_for(assistant)
    except NotFound as error:
        return AssistantRoute(assistant, None, (error.message, error.param))
    return AssistantRoute(assistant, version)
