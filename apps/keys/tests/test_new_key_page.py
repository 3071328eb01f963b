"""The page that shows a new key once: what to paste to call it, and that the secret
goes nowhere else."""

import json
import logging
import re
import shlex

import pytest
from django.urls import reverse

from apps.assistants.tests.factories import AssistantFactory
from apps.inference.tests.factories import local_backend
from apps.keys.models import ApiKey
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db


def _create(client, team, **data):
    data.setdefault("name", "ci-bot")
    data.setdefault("scopes", ["chat"])
    return client.post(reverse("keys:create", args=[team.slug]), data)


def _text(response, testid: str) -> str:
    """The text of the element with ``data-testid``, unescaped as the browser shows it."""
    import html

    match = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</', response.content.decode(), re.S)
    assert match, f"{testid} is on the page"
    return html.unescape(match.group(1))


def _raw(response) -> str:
    return re.search(r'value="([^"]+)"[^>]*data-testid="new-key"', response.content.decode())[1]


@pytest.fixture
def owner_client(client):
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    client.force_login(owner)
    client.team, client.owner = team, owner
    return client


def test_the_snippets_carry_the_base_url_the_key_and_a_model_it_may_call(owner_client, settings):
    settings.SITE_URL = "https://portal.example.com"
    team = owner_client.team
    backend = local_backend(team, owner_client.owner)
    AssistantFactory(team=team, backend=backend, model="local-echo", slug="helpdesk")
    response = _create(owner_client, team)
    raw = _raw(response)
    python, curl = _text(response, "snippet-python"), _text(response, "snippet-curl")

    assert _text(response, "base-url") == "https://portal.example.com/v1"
    assert 'base_url="https://portal.example.com/v1"' in python
    assert f'api_key="{raw}"' in python
    assert 'model="helpdesk"' in python and "stream=True" in python
    assert "delta.content" in python
    compile(python, "snippet", "exec")  # pastes as valid Python

    words = shlex.split(curl)
    assert words[:3] == ["curl", "-N", "https://portal.example.com/v1/chat/completions"]
    assert f"Authorization: Bearer {raw}" in words
    body = json.loads(words[words.index("-d") + 1])
    assert body == {
        "model": "helpdesk",
        "messages": [{"role": "user", "content": "Hello!"}],
        "stream": True,
    }
    assert 'data-testid="snippet-no-chat"' not in response.content.decode()


def test_the_base_url_falls_back_to_the_request(owner_client, settings):
    settings.SITE_URL = ""
    response = _create(owner_client, owner_client.team)
    assert _text(response, "base-url") == "http://testserver/v1"


def test_the_snippet_model_is_one_the_key_may_use(owner_client):
    team, owner = owner_client.team, owner_client.owner
    backend = local_backend(team, owner)
    AssistantFactory(team=team, backend=backend, model="local-echo", slug="alpha", name="Alpha")
    bound = AssistantFactory(team=team, backend=backend, model="local-echo", slug="zulu", name="Z")

    # bound to an assistant: that one
    response = _create(owner_client, team, name="bound", assistant=bound.pk)
    assert _text(response, "snippet-model") == "zulu"
    # an allow-list: the first assistant it lets through (alpha's model is listed)
    response = _create(owner_client, team, name="raw", allowed_models="local-echo")
    assert _text(response, "snippet-model") == "alpha"
    response = _create(owner_client, team, name="only-zulu", allowed_models="zulu")
    assert _text(response, "snippet-model") == "zulu"


def test_a_team_without_assistants_gets_a_raw_model_or_a_placeholder(owner_client):
    team = owner_client.team
    response = _create(owner_client, team, name="nothing yet")
    assert 'model="ASSISTANT-OR-MODEL"' in _text(response, "snippet-python")
    assert "create an assistant" in _text(response, "snippet-no-model")

    local_backend(team, owner_client.owner)
    response = _create(owner_client, team, name="raw model")
    assert _text(response, "snippet-model") == "local-echo"


def test_a_key_without_the_chat_scope_is_told_so(owner_client):
    response = _create(owner_client, owner_client.team, scopes=["read"])
    assert "lacks the <code>chat</code> scope" in response.content.decode()


def test_the_secret_is_on_that_one_response_only(owner_client, caplog):
    team = owner_client.team
    with caplog.at_level(logging.DEBUG):
        response = _create(owner_client, team)
    raw = _raw(response)
    secret = raw.rsplit("_", 1)[1]
    assert response["Cache-Control"] == "no-store"
    assert 'hx-history="false"' in response.content.decode()  # htmx keeps no copy of it
    assert secret not in caplog.text
    assert all(secret not in str(value) for value in owner_client.session.values())
    stored = json.dumps(list(ApiKey.objects.filter(team=team).values()), default=str)
    assert secret not in stored
    for url in (
        reverse("keys:list", args=[team.slug]),
        reverse("dashboard:team_home", args=[team.slug]),
        reverse("events:page", args=[team.slug]),
    ):
        assert secret not in owner_client.get(url).content.decode()


def test_a_rotated_key_gets_the_snippets_too(owner_client):
    team = owner_client.team
    _create(owner_client, team)
    key = ApiKey.objects.get(team=team)
    response = owner_client.post(
        reverse("keys:rotate", args=[team.slug, key.pk]), {"grace_seconds": "0"}
    )
    raw = _raw(response)
    assert response["Cache-Control"] == "no-store"
    assert f'api_key="{raw}"' in _text(response, "snippet-python")


def test_the_key_list_says_where_to_call(owner_client, settings):
    settings.SITE_URL = "https://portal.example.com"
    page = owner_client.get(reverse("keys:list", args=[owner_client.team.slug]))
    assert _text(page, "base-url") == "https://portal.example.com/v1"
    assert 'id="create-key"' in page.content.decode() and 'id="call"' in page.content.decode()
