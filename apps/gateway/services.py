"""What the gateway does with a request: name -> assistant or model, limits, a run.

``model`` is first looked up as an assistant slug in the key's team (its
instructions, parameters and fallbacks apply, the caller's parameters win);
otherwise it is a raw model id served by one of the team's enabled backends
(the team's own before global ones). Either way the answer comes from an
ordinary run executed by the Celery worker, recorded with the key and the
caller's ``user``.
"""

import time
from dataclasses import dataclass

from apps.assistants import resolution
from apps.assistants.selectors import assistants_for_team
from apps.gateway import routing
from apps.gateway.errors import GatewayError
from apps.gateway.requests import ChatRequest
from apps.inference import services as inference
from apps.inference.models import ChatRun
from apps.inference.selectors import backends_for_team
from apps.keys import limits
from apps.teams.permissions import Action, require, require_use_of


@dataclass(frozen=True)
class Started:
    run: ChatRun
    model: str  # the name the caller asked for, echoed in every answer
    created: int


def model_not_found(model: str) -> GatewayError:
    return GatewayError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
        param="model",
    )


def _assistant_run(actor, team, found: routing.AssistantRoute, chat: ChatRequest, reply) -> ChatRun:
    assistant, backend, version = found.for_request()
    require_use_of(actor, assistant=assistant)
    if backend is None:
        raise GatewayError(400, "This assistant has no backend.", param="model")
    missing = found.missing_prompt_error()
    if missing is not None:
        raise missing
    resolved = resolution.resolve(assistant, variables=chat.variables, version=version)
    return inference.run_create(
        team=team,
        actor=actor,
        backend=backend,  # the cached one: run_create re-reads it only if it is disabled
        model=assistant.model,
        messages=[*resolved.messages, *chat.messages],
        parameters={**resolved.parameters, **assistant.parameters(), **chat.parameters},
        fallbacks=assistant.fallbacks,
        assistant=assistant,
        prompt_version=resolved.prompt_version,
        end_user=chat.user,
        reply=reply,
    )


def chat_start(*, actor, chat: ChatRequest, reply=None) -> Started:
    """Resolve the name and start the run. Only ``run_create`` writes, in its own
    transaction: the lookups before it need none (and a nested one cost a savepoint).

    The name comes from the process's routing cache (:mod:`apps.gateway.routing`), so a
    warm request reaches ``run_create`` without a query; the key's own allow-lists are
    checked per request, since they belong to the key, not to the team's routing."""
    team = actor.api_key.team
    require(actor, team, Action.USE)
    limits.require_request(actor.api_key)
    found = routing.route(team, chat.model)
    if isinstance(found, routing.AssistantRoute):
        run = _assistant_run(actor, team, found, chat, reply)
    elif found is None:
        raise model_not_found(chat.model)
    else:
        run = inference.run_create(
            team=team,
            actor=actor,
            backend=found.for_request(),
            model=chat.model,
            messages=chat.messages,
            parameters=chat.parameters,
            end_user=chat.user,
            reply=reply,
        )
    return Started(run=run, model=chat.model, created=int(time.time()))


def _model_entry(name: str, created, owned_by: str) -> dict:
    return {
        "id": name,
        "object": "model",
        "created": int(created.timestamp()) if created else 0,
        "owned_by": owned_by,
    }


def models_for(actor) -> list[dict]:
    """The assistants and raw models this key may call, assistants first."""
    key = actor.api_key
    team = key.team
    if not (actor.key_allows(team, Action.USE) or actor.key_allows(team, Action.VIEW)):
        raise GatewayError(403, "This API key needs the chat or read scope.", code="scope")
    entries = [
        _model_entry(a.slug, a.created_at, team.slug)
        for a in assistants_for_team(team).exclude(backend=None)
        if not actor.may_use(assistant=a)
    ]
    seen = {e["id"] for e in entries}
    for backend in backends_for_team(team, include_disabled=False):
        for model in backend.model_ids or []:
            if model not in seen and not actor.may_use(model=model):
                seen.add(model)
                entries.append(_model_entry(model, backend.created_at, backend.name))
    return entries
