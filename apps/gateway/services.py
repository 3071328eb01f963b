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
from apps.assistants.models import Assistant
from apps.assistants.selectors import assistants_for_team
from apps.gateway.errors import GatewayError
from apps.gateway.requests import ChatRequest
from apps.inference import services as inference
from apps.inference.models import ChatRun
from apps.inference.selectors import backend_serving, backends_for_team
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


def _assistant_named(team, name: str) -> Assistant | None:
    return assistants_for_team(team).filter(slug=name).first()


def _assistant_run(actor, team, assistant: Assistant, chat: ChatRequest) -> ChatRun:
    require_use_of(actor, assistant=assistant)
    if assistant.backend_id is None:
        raise GatewayError(400, "This assistant has no backend.", param="model")
    resolved = resolution.resolve(assistant, variables=chat.variables)
    return inference.run_create(
        team=team,
        actor=actor,
        backend_id=assistant.backend_id,
        model=assistant.model,
        messages=[*resolved.messages, *chat.messages],
        parameters={**resolved.parameters, **assistant.parameters(), **chat.parameters},
        fallbacks=assistant.fallbacks,
        assistant=assistant,
        prompt_version=resolved.prompt_version,
        end_user=chat.user,
    )


def chat_start(*, actor, chat: ChatRequest) -> Started:
    """Resolve the name and start the run. Only ``run_create`` writes, in its own
    transaction: the lookups before it need none (and a nested one cost a savepoint)."""
    team = actor.api_key.team
    require(actor, team, Action.USE)
    limits.require_request(actor.api_key)
    assistant = _assistant_named(team, chat.model)
    if assistant is not None:
        run = _assistant_run(actor, team, assistant, chat)
    else:
        backend = backend_serving(team, chat.model)
        if backend is None:
            raise model_not_found(chat.model)
        run = inference.run_create(
            team=team,
            actor=actor,
            backend=backend,
            model=chat.model,
            messages=chat.messages,
            parameters=chat.parameters,
            end_user=chat.user,
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
