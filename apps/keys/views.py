"""API key pages: the list, create, revoke, rotate and the team's key policy.

A new raw key is rendered once, in the response to the POST that made it; it
is never put in the session, a flash message or a URL.
"""

import json
import shlex
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.core.errors import ServiceError
from apps.keys import services
from apps.keys.actor import KeyActor
from apps.keys.forms import KeyForm, PolicyForm, RotateForm
from apps.keys.models import ApiKey
from apps.teams.decorators import team_view
from apps.teams.permissions import Action, can


def _key_in_team(team, key_id: int) -> ApiKey:
    key = ApiKey.objects.filter(team=team, pk=key_id).select_related("team").first()
    if key is None:
        raise Http404("No such key in this team.")
    return key


def _list_context(request, team, *, form=None, policy_form=None) -> dict:
    policy = services.policy_for(team)
    return {
        "keys": team.api_keys.select_related("assistant", "created_by").order_by("-created_at"),
        "can_manage": can(request.user, team, Action.MANAGE_KEYS),
        "form": form or KeyForm(team=team),
        "rotate_form": RotateForm(),
        "policy": policy,
        "base_url": gateway_base_url(request),
        "policy_form": policy_form
        or PolicyForm(initial={"max_lifetime_days": policy.max_lifetime_days if policy else None}),
    }


@team_view(Action.VIEW)
def key_list(request, team):
    return render(request, "keys/list.html", _list_context(request, team))


def gateway_base_url(request) -> str:
    """Where programs reach the OpenAI-compatible gateway: the configured site, else this host."""
    site = (settings.SITE_URL or request.build_absolute_uri("/")).rstrip("/")
    return f"{site}/v1"


def _snippet_model(key: ApiKey) -> str | None:
    """The first name this key may call, as ``/v1/models`` lists it (assistants first)."""
    from apps.gateway.errors import GatewayError
    from apps.gateway.services import models_for

    try:
        entries = models_for(KeyActor(key))
    except GatewayError:  # neither the chat nor the read scope
        return None
    return entries[0]["id"] if entries else None


HELLO = [{"role": "user", "content": "Hello!"}]


def snippets(*, base_url: str, raw: str, model: str) -> dict[str, str]:
    """Ready-to-paste calls. Values go through ``json.dumps`` (a valid Python string
    literal too) and ``shlex.quote``, so any model name pastes as it is."""
    python = "\n".join(
        [
            "from openai import OpenAI",
            "",
            f"client = OpenAI(base_url={json.dumps(base_url)}, api_key={json.dumps(raw)})",
            "",
            "stream = client.chat.completions.create(",
            f"    model={json.dumps(model)},",
            f"    messages={json.dumps(HELLO)},",
            "    stream=True,",
            ")",
            "for chunk in stream:",
            "    if chunk.choices and chunk.choices[0].delta.content:",
            '        print(chunk.choices[0].delta.content, end="", flush=True)',
            "print()",
        ]
    )
    body = json.dumps({"model": model, "messages": HELLO, "stream": True})
    curl = " ".join(
        [
            "curl -N",
            shlex.quote(f"{base_url}/chat/completions"),
            "-H",
            shlex.quote(f"Authorization: Bearer {raw}"),
            "-H 'Content-Type: application/json'",
            "-d",
            shlex.quote(body),
        ]
    )
    return {"python": python, "curl": curl}


def _show_once(request, team, key: ApiKey, raw: str, what: str):
    model = _snippet_model(key)
    base_url = gateway_base_url(request)
    context = {
        "key": key,
        "raw_key": raw,
        "what": what,
        "base_url": base_url,
        "model": model,
        "can_chat": "chat" in key.scopes,
        "snippet": snippets(base_url=base_url, raw=raw, model=model or "ASSISTANT-OR-MODEL"),
    }
    response = render(request, "keys/new_key.html", context)
    # The secret must not outlive this response: not in a cache, not in the back button.
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@team_view(Action.MANAGE_KEYS)
def key_create(request, team):
    form = KeyForm(request.POST, team=team)
    if form.is_valid():
        data = form.cleaned_data
        days = data["expires_in_days"]
        try:
            key, raw = services.key_create(
                team=team,
                actor=request.user,
                name=data["name"],
                scopes=data["scopes"],
                expires_at=timezone.now() + timedelta(days=days) if days else None,
                assistant=data["assistant"],
                allowed_models=data["allowed_models"],
                requests_per_minute=data["requests_per_minute"],
                tokens_per_minute=data["tokens_per_minute"],
            )
        except ServiceError as error:
            field = {"expires_at": "expires_in_days"}.get(error.param, error.param)
            form.add_error(field if field in form.fields else None, error.message)
        else:
            return _show_once(request, team, key, raw, "created")
    context = _list_context(request, team, form=form)
    return render(request, "keys/list.html", context, status=400)


@require_POST
@team_view(Action.MANAGE_KEYS)
def key_revoke(request, team, key_id: int):
    key = _key_in_team(team, key_id)
    try:
        services.key_revoke(key=key, actor=request.user)
    except ServiceError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Key {key.name} revoked.")
    return redirect("keys:list", team_slug=team.slug)


@require_POST
@team_view(Action.MANAGE_KEYS)
def key_rotate(request, team, key_id: int):
    key = _key_in_team(team, key_id)
    form = RotateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick one of the listed grace periods.")
        return redirect("keys:list", team_slug=team.slug)
    try:
        key, raw = services.key_rotate(
            key=key, actor=request.user, grace_seconds=form.cleaned_data["grace_seconds"]
        )
    except ServiceError as error:
        messages.error(request, error.message)
        return redirect("keys:list", team_slug=team.slug)
    return _show_once(request, team, key, raw, "rotated")


@require_POST
@team_view(Action.MANAGE_KEYS)
def policy_set(request, team):
    form = PolicyForm(request.POST)
    if form.is_valid():
        try:
            services.policy_set(
                team=team,
                actor=request.user,
                max_lifetime_days=form.cleaned_data["max_lifetime_days"],
            )
        except ServiceError as error:
            form.add_error("max_lifetime_days", error.message)
        else:
            messages.success(request, "Key policy saved.")
            return redirect("keys:list", team_slug=team.slug)
    context = _list_context(request, team, policy_form=form)
    return render(request, "keys/list.html", context, status=400)
