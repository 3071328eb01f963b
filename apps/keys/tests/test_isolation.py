"""Every REST route, called with a key of another team: 404 or 403, never data,
never a change. Routes are read from the OpenAPI document, so a new endpoint is
walked without editing this test; a write without a sample body here fails it
(a 422 would prove nothing about isolation)."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.assistants.tests.factories import AssistantFactory
from apps.conversations import services as conversations
from apps.inference import services as inference
from apps.inference.models import ChatRun
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.keys.tests.factories import make_key
from apps.prompts import services as prompts
from apps.quotas import services as quotas
from apps.teams import services as teams
from apps.teams.models import Role
from apps.teams.tests.factories import member_of
from portal.api import api

pytestmark = pytest.mark.django_db

BODIES = {
    "teams_create": None,  # not team-scoped: a key may not create teams at all
    "assistants_create": {"name": "X", "backend": "{backend}", "model": "m", "instructions": "x"},
    "assistants_update": {"name": "Renamed"},
    "assistants_duplicate": {"name": "Copy"},
    "conversations_create": {"assistant": "{assistant}"},
    "messages_send": {"content": "hi"},
    "backends_create": {"kind": "local", "name": "Mine"},
    "backends_update": {"name": "Renamed"},
    "backends_models_refresh": {},
    "runs_create": {
        "backend": "{backend}",
        "model": "local-echo",
        "messages": [{"role": "user", "content": "hi"}],
    },
    "runs_cancel": {},
    "keys_create": {"name": "Stolen", "scopes": ["chat"], "assistant": "{assistant}"},
    "keys_rotate": {"grace_seconds": 0},
    "keys_revoke": {},
    "key_policy_set": {"max_lifetime_days": 1},
    "prompts_create": {"name": "Mine", "system": "x"},
    "prompts_update": {"name": "Renamed"},
    "prompt_versions_create": {"system": "changed", "commit_message": "x"},
    "prompt_labels_move": {"version": 1},
    "prompts_render": {"variables": {}},
    "team_members_set_role": {"role": "viewer"},
    "team_invitations_create": {"role": "member"},
    "quotas_create": {"api_key": "{key_id}", "token_budget": 1},
    "quotas_update": {"token_budget": 1},
    "quota_increases_create": {"extra_tokens": 1, "ends_at": "2999-01-01T00:00:00Z"},
    "quota_time_zone_set": {"time_zone": "Asia/Tokyo"},
    "prices_create": {
        "backend": "{backend}",
        "model": "m",
        "input_per_million": "1",
        "output_per_million": "1",
    },
}


@pytest.fixture
def victim():
    """Team A with one of everything."""
    team, admin = team_with_admin()
    member = member_of(team, Role.MEMBER)
    backend = local_backend(team, admin)
    prompt = prompts.prompt_create(team=team, actor=admin, name="Greeter", system="Hi {{name}}")
    prompts.label_move(
        prompt=prompt, actor=admin, label="production", version=prompt.versions.get()
    )
    bot = AssistantFactory(team=team, backend=backend, model="local-echo")
    conversation = conversations.conversation_start(assistant=bot, actor=admin)
    run = inference.run_create(
        team=team,
        actor=admin,
        backend_id=backend.pk,
        model="local-echo",
        messages=[{"role": "user", "content": "hi"}],
    )
    key, _raw = make_key(team, admin, scopes=["chat"])
    invitation = teams.invitation_create(team=team, actor=admin, role="member")
    quota = quotas.quota_create(team=team, actor=admin, token_budget=10**6)
    increase = quotas.increase_create(
        quota=quota, actor=admin, extra_tokens=1, ends_at=timezone.now() + timedelta(days=1)
    )
    return {
        "team_slug": team.slug,
        "slug": bot.slug,
        "assistant": bot.slug,
        "backend": backend.pk,
        "backend_id": backend.pk,
        "prompt_slug": prompt.slug,
        "number": 1,
        "label": "production",
        "conversation_id": conversation.pk,
        "run_id": run.pk,
        "key_id": key.public_id,
        "member_id": team.memberships.get(user=member).pk,
        "invitation_id": invitation.pk,
        "quota_id": quota.pk,
        "increase_id": increase.pk,
    }


def _fill(template, values: dict):
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    if isinstance(template, str) and re.fullmatch(r"\{\w+\}", template):
        return values[template[1:-1]]
    return template


def _operations():
    schema = api.get_openapi_schema()
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def _snapshot() -> dict:
    from apps.assistants.models import Assistant
    from apps.conversations.models import Conversation, Message
    from apps.inference.models import Backend
    from apps.keys.models import ApiKey
    from apps.prompts.models import Prompt, PromptLabel, PromptVersion
    from apps.quotas.models import Quota
    from apps.teams.models import Invitation, Membership

    models = [
        Assistant, Conversation, Message, Backend, ApiKey, Prompt, PromptLabel,
        PromptVersion, Invitation, Membership, ChatRun, Quota,
    ]  # fmt: skip
    return {
        m.__name__: sorted(
            map(str, m.objects.values_list("pk", "team_id" if hasattr(m, "team_id") else "pk"))
        )
        for m in models
    } | {"runs": sorted(ChatRun.objects.values_list("pk", "status", "cancel_requested_at"))}


def test_every_route_refuses_another_teams_key(victim):
    intruder_team, intruder_admin = team_with_admin()
    _key, raw = make_key(intruder_team, intruder_admin, scopes=["chat", "read", "write", "admin"])
    intruder = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    before = _snapshot()
    walked = []
    for path, method, operation in _operations():
        operation_id = operation["operationId"]
        if "{team_slug}" not in path:
            continue
        body = BODIES.get(operation_id, {}) if method in {"post", "put", "patch"} else None
        # A's team slug, and the intruder's own slug with A's object ids: both must fail.
        for team_slug in (victim["team_slug"], intruder_team.slug):
            values = {**victim, "team_slug": team_slug}
            url = path.format(**{k: values[k] for k in re.findall(r"\{(\w+)\}", path)})
            params = re.findall(r"\{(\w+)\}", path)
            names_victim_objects = params != ["team_slug"] or re.search(r"\{\w+\}", str(body))
            if team_slug == intruder_team.slug and not names_victim_objects:
                continue  # the intruder's own collections are its business
            if operation_id == "prompt_versions_diff":
                url += "?from=1&to=1"
            response = getattr(intruder, method)(
                url, _fill(body, victim) if body is not None else None,
                content_type="application/json",
            )  # fmt: skip
            assert response.status_code in {403, 404}, (
                f"{method.upper()} {url} ({operation_id}) answered {response.status_code}: "
                f"{response.content[:300]!r}"
            )
            assert response.json()["error"]["type"] in {"not_found_error", "permission_error"}
            walked.append(operation_id)
    assert _snapshot() == before
    team_scoped = {op["operationId"] for p, _m, op in _operations() if "{team_slug}" in p}
    assert set(walked) == team_scoped
    assert len(team_scoped) > 40
