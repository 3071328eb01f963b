"""The team home: assistants link to their playground, and a newcomer sees the next
step (prompt -> assistant -> key -> a call), ticked from what the team has."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.assistants.tests.factories import AssistantFactory
from apps.inference.tests.factories import local_backend
from apps.keys.models import ApiKey
from apps.keys.tests.factories import make_key
from apps.prompts.tests.factories import make_prompt
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db


def _home(client, team) -> str:
    response = client.get(reverse("dashboard:team_home", args=[team.slug]))
    assert response.status_code == 200
    return response.content.decode()


def _step(body: str, slug: str) -> tuple[str, str]:
    """(data-done, the step's inner HTML)."""
    match = re.search(
        rf'<li data-testid="step-{slug}" data-done="(\w+)"[^>]*>(.*?)</li>', body, re.S
    )
    assert match, f"step {slug} is listed"
    return match.group(1), match.group(2)


def test_an_empty_team_shows_every_step_with_its_page(client):
    team = TeamFactory()
    client.force_login(member_of(team, Role.OWNER))
    body = _home(client, team)
    assert 'data-testid="getting-started"' in body
    links = {
        "prompt": reverse("prompts:list", args=[team.slug]) + "#new-prompt",
        "assistant": reverse("assistants:list", args=[team.slug]),
        "key": reverse("keys:list", args=[team.slug]) + "#create-key",
        "call": reverse("keys:list", args=[team.slug]) + "#call",
    }
    for slug, url in links.items():
        done, html = _step(body, slug)
        assert done == "false" and f'href="{url}"' in html
    assert re.search(r'data-testid="next-step">Create a prompt<', body)


def test_steps_tick_as_the_team_takes_them(client):
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    client.force_login(owner)
    make_prompt(team, owner)
    body = _home(client, team)
    assert _step(body, "prompt")[0] == "true" and _step(body, "assistant")[0] == "false"
    assert re.search(r'data-testid="next-step">Create an assistant<', body)

    AssistantFactory(team=team, backend=local_backend(team, owner), model="local-echo")
    key, _raw = make_key(team, owner)
    body = _home(client, team)
    assert [_step(body, s)[0] for s in ("prompt", "assistant", "key", "call")] == [
        "true",
        "true",
        "true",
        "false",
    ]
    assert re.search(r'data-testid="next-step">Call it with the openai SDK<', body)

    # a revoked key is no key
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    assert _step(_home(client, team), "key")[0] == "false"


def test_a_set_up_team_sees_its_assistants_linked_to_their_playground(client):
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    client.force_login(owner)
    make_prompt(team, owner)
    backend = local_backend(team, owner)
    bot = AssistantFactory(team=team, backend=backend, model="local-echo", name="Helpdesk")
    key, _raw = make_key(team, owner)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    body = _home(client, team)
    assert 'data-testid="getting-started"' not in body
    playground = reverse("assistants:playground", args=[team.slug, bot.slug])
    assert f'<a href="{playground}">Helpdesk</a>' in body


def test_a_member_is_not_sent_to_make_keys(client):
    team = TeamFactory()
    client.force_login(member_of(team, Role.MEMBER))
    body = _home(client, team)
    done, html = _step(body, "key")
    assert done == "false" and "href=" not in html
    assert "admins and owners create API keys" in html
    assert "href=" in _step(body, "prompt")[1] and "href=" in _step(body, "call")[1]


def test_a_viewer_is_told_nothing_to_create(client):
    team = TeamFactory()
    client.force_login(member_of(team, Role.VIEWER))
    body = _home(client, team)
    assert 'data-testid="getting-started"' not in body
    assert 'data-testid="viewer-empty"' in body
    for text in (
        "Create a prompt",
        "Create an assistant",
        "Create an API key",
        "No assistants yet.</p>",
    ):
        assert text not in body
    assert reverse("prompts:list", args=[team.slug]) + "#new-prompt" not in body


def test_the_checklist_costs_two_queries(client, django_assert_max_num_queries):
    team = TeamFactory()
    client.force_login(member_of(team, Role.OWNER))
    _home(client, team)  # warm the session and the role cache
    with django_assert_max_num_queries(40) as counted:
        _home(client, team)
    without = len(counted)
    client.force_login(member_of(team, Role.VIEWER))
    _home(client, team)
    with django_assert_max_num_queries(40) as viewer:
        _home(client, team)
    assert without - len(viewer) == 2  # the prompt and key checks, only for those who act
