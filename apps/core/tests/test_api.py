"""The conventions every list of the REST API shares: paging, its errors, ordering, rates.

Each list endpoint is walked here once, so a new one that forgets the envelope or
takes bad paging values as a 500 shows up in one place.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.assistants.tests.factories import AssistantFactory
from apps.conversations.models import Conversation, Message
from apps.core.api_pagination import Ordering
from apps.inference.models import ChatRun
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.keys.models import ApiKey
from apps.keys.tests.factories import make_key
from apps.prompts import services as prompts
from apps.prompts.tests.factories import make_prompt
from apps.teams import services as teams
from apps.teams.models import Role
from apps.teams.tests.factories import member_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(client) -> dict[str, str]:
    """A team with one of everything that has a list, its admin signed in; the list URLs."""
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    bot = AssistantFactory(team=team, backend=backend, model="local-echo", slug="bot")
    prompt = make_prompt(team, admin, name="Greeter")
    prompts.label_move(
        prompt=prompt, actor=admin, label="production", version=prompt.versions.get()
    )
    conversation = Conversation.objects.create(team=team, assistant=bot, user=admin, title="Hi")
    Message.objects.create(conversation=conversation, role=Message.Role.USER, content="Hello")
    ChatRun.objects.create(
        team=team, backend=backend, model="m", messages=[{"role": "user", "content": "x"}]
    )
    teams.invitation_create(team=team, actor=admin, role=Role.MEMBER)
    make_key(team, admin, scopes=["read"])
    client.force_login(admin)
    base = f"/api/v1/teams/{team.slug}"
    return {
        "teams": "/api/v1/teams",
        "members": f"{base}/members",
        "invitations": f"{base}/invitations",
        "backends": f"{base}/backends",
        "assistants": f"{base}/assistants",
        "runs": f"{base}/runs",
        "prompts": f"{base}/prompts",
        "versions": f"{base}/prompts/{prompt.slug}/versions",
        "labels": f"{base}/prompts/{prompt.slug}/labels",
        "label_history": f"{base}/prompts/{prompt.slug}/labels/history",
        "conversations": f"{base}/conversations",
        "messages": f"{base}/conversations/{conversation.pk}/messages",
        "keys": f"{base}/keys",
    }


LISTS = [
    "teams",
    "members",
    "invitations",
    "backends",
    "assistants",
    "runs",
    "prompts",
    "versions",
    "labels",
    "label_history",
    "conversations",
    "messages",
    "keys",
]


def assert_error(response, status: int, param: str | None, code: str):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    # a 429 also names the limit that refused it (apps.quotas)
    extra = {"limit"} if status == 429 else set()
    assert set(error) == {"type", "message", "param", "code"} | extra
    assert (error["param"], error["code"]) == (param, code)
    return error


@pytest.mark.parametrize("name", LISTS)
def test_every_list_answers_the_envelope(client, world, name):
    url = world[name]
    body = client.get(url).json()
    assert set(body) == {"items", "count", "next_offset"}
    assert body["count"] == len(body["items"]) >= 1
    assert body["next_offset"] is None
    one = client.get(f"{url}?limit=1&offset={body['count'] - 1}").json()
    assert one["items"] == body["items"][-1:]
    assert (one["count"], one["next_offset"]) == (body["count"], None)


@pytest.mark.parametrize("name", LISTS)
@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("limit=2.5", "limit"),
        ("offset=-1", "offset"),
        ("offset=99999999999999999999", "offset"),
    ],
)
def test_bad_paging_values_are_422_naming_the_param(client, world, name, query, param):
    url = world[name]
    error = assert_error(client.get(f"{url}?{query}"), 422, param, "validation_error")
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(f"{param}: ")


def test_walking_the_pages_sees_every_row_once(client):
    team, admin = team_with_admin()
    for i in range(6):
        member_of(team, Role.MEMBER, email=f"m{i}@example.com")
    client.force_login(admin)
    url = f"/api/v1/teams/{team.slug}/members"
    everyone = client.get(url).json()["items"]
    assert len(everyone) == 7

    seen, offsets, offset = [], [], 0
    while offset is not None:
        page = client.get(f"{url}?limit=3&offset={offset}").json()
        assert page["count"] == 7
        seen += page["items"]
        offsets.append(offset)
        offset = page["next_offset"]
    assert offsets == [0, 3, 6]
    assert seen == everyone
    assert [m["email"] for m in seen] == sorted(m["email"] for m in seen)

    for beyond in (7, 500):
        assert client.get(f"{url}?offset={beyond}").json() == {
            "items": [],
            "count": 7,
            "next_offset": None,
        }


def test_a_page_costs_the_same_queries_however_many_rows(client):
    """Count and slice happen in the database and related rows come with the page."""
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    prompt = make_prompt(team, admin, name="Pinned")
    version = prompt.versions.get()
    client.force_login(admin)

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    def add_rows(n: int):
        for _ in range(n):
            AssistantFactory(
                team=team,
                backend=backend,
                model="m",
                prompt=prompt,
                prompt_version=version,
                instructions_source="pinned",
            )
            run = ChatRun.objects.create(
                team=team, backend=backend, model="m", messages=[{"role": "user", "content": "x"}]
            )
            conversation = Conversation.objects.create(
                team=team, assistant=team.assistants.first(), user=admin
            )
            Message.objects.create(conversation=conversation, role=Message.Role.ASSISTANT, run=run)
            make_key(team, admin, scopes=["read"])
            member_of(team)

    base = f"/api/v1/teams/{team.slug}"
    urls = [
        "/api/v1/teams",
        f"{base}/members",
        f"{base}/assistants",
        f"{base}/runs",
        f"{base}/conversations",
        f"{base}/keys",
    ]
    add_rows(2)
    few = {url: queries(url) for url in urls}
    add_rows(6)
    many = {url: queries(url) for url in urls}
    assert many == few


def test_ordering_validates_its_default_and_breaks_ties_by_id():
    with pytest.raises(ValueError, match="default order"):
        Ordering("nope", name="name")
    order = Ordering("-created_at", created_at="created_at", name="name")
    assert order.values == ("created_at", "-created_at", "name", "-name")
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    runs = [
        ChatRun.objects.create(
            team=team, backend=backend, model="m", messages=[{"role": "user", "content": "x"}]
        )
        for _ in range(3)
    ]
    ChatRun.objects.filter(team=team).update(created_at=timezone.now())
    ids = [r.pk for r in runs]
    queryset = ChatRun.objects.filter(team=team)
    assert list(order.apply(queryset, None).values_list("pk", flat=True)) == ids[::-1]
    assert list(order.apply(queryset, "created_at").values_list("pk", flat=True)) == ids


def test_keys_list_filters_by_status_and_orders(client):
    team, admin = team_with_admin()
    client.force_login(admin)
    make_key(team, admin, name="Bravo", scopes=["read"])
    revoked, _ = make_key(team, admin, name="Alpha", scopes=["read"])
    expired, _ = make_key(team, admin, name="Charlie", scopes=["read"])
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    url = f"/api/v1/teams/{team.slug}/keys"

    def names(query: str) -> list[str]:
        response = client.get(f"{url}?{query}")
        assert response.status_code == 200, response.content
        return [k["name"] for k in response.json()["items"]]

    assert names("") == ["Charlie", "Alpha", "Bravo"]  # newest first
    assert names("order=name") == ["Alpha", "Bravo", "Charlie"]
    assert names("order=-name") == ["Charlie", "Bravo", "Alpha"]
    assert names("status=active") == ["Bravo"]
    assert names("status=revoked") == ["Alpha"]
    assert names("status=expired") == ["Charlie"]
    assert names("status=revoked&order=name&limit=1") == ["Alpha"]
    assert_error(client.get(f"{url}?order=secret"), 422, "order", "validation_error")
    assert_error(client.get(f"{url}?status=lost"), 422, "status", "validation_error")


def test_a_key_over_its_request_rate_gets_429_with_retry_after():
    team, admin = team_with_admin()
    _key, raw = make_key(team, admin, scopes=["read"], requests_per_minute=1)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/teams").status_code == 200
    refused = client.get("/api/v1/teams")
    error = assert_error(refused, 429, None, "rate_limit_exceeded")
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert error["limit"]["name"] == "requests_per_minute" and error["limit"]["limit"] == 1
    assert 1 <= int(refused["Retry-After"]) <= 60
