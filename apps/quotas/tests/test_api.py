"""The quotas REST API, the 429 bodies of the API and the gateway, bad input."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.inference.tests.factories import local_backend, team_with_admin
from apps.keys.tests.factories import make_key
from apps.quotas.models import Quota
from apps.quotas.tests.factories import make_quota
from apps.teams.models import Role
from apps.teams.tests.factories import member_of

pytestmark = pytest.mark.django_db
HELLO = [{"role": "user", "content": "hi"}]
NEXT_WEEK = (timezone.now() + timedelta(days=7)).isoformat()


def bearer(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def send(client, method, url, body=None):
    return getattr(client, method)(url, body, content_type="application/json")


@pytest.fixture
def admin_api():
    team, admin = team_with_admin()
    _key, raw = make_key(team, admin, scopes=["read", "write", "admin", "chat"])
    return team, admin, bearer(raw), f"/api/v1/teams/{team.slug}"


def test_set_read_change_and_remove_quotas(admin_api):
    team, admin, client, base = admin_api
    key, _raw = make_key(team, admin, scopes=["chat"])
    created = send(
        client,
        "post",
        f"{base}/quotas",
        {"token_budget": 1000, "cost_budget": "12.5", "period": "day", "max_concurrent_runs": 3},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["scope"] == "team" and body["period"] == "day"
    assert body["cost_budget"] == "12.500000" and body["thresholds"] == [80, 100]
    assert body["current_period"]["id"] and body["time_zone"] == "UTC"
    names = {u["name"]: u for u in body["usage"]}
    assert set(names) == {"token_budget", "cost_budget", "concurrent_runs"}
    assert float(names["token_budget"]["consumed"]) == 0
    assert float(names["token_budget"]["limit"]) == 1000
    assert names["token_budget"]["resets_at"] == body["current_period"]["end"]
    assert names["concurrent_runs"]["resets_at"] is None

    assert send(client, "post", f"{base}/quotas", {"token_budget": 5}).status_code == 409
    for_key = send(
        client, "post", f"{base}/quotas", {"api_key": key.public_id, "requests_per_minute": 5}
    )
    assert for_key.status_code == 201 and for_key.json()["api_key"] == key.public_id

    listed = client.get(f"{base}/quotas").json()
    assert listed["count"] == 2 and [q["scope"] for q in listed["items"]] == ["team", "key"]

    quota_id = body["id"]
    changed = send(client, "patch", f"{base}/quotas/{quota_id}", {"cost_budget": None})
    assert changed.status_code == 200
    assert changed.json()["cost_budget"] is None and changed.json()["token_budget"] == 1000

    increase = send(
        client,
        "post",
        f"{base}/quotas/{quota_id}/increases",
        {"extra_tokens": 500, "ends_at": NEXT_WEEK, "reason": "launch"},
    )
    assert increase.status_code == 201 and increase.json()["active"]
    limit = {u["name"]: u for u in client.get(f"{base}/quotas/{quota_id}").json()["usage"]}
    assert float(limit["token_budget"]["limit"]) == 1500
    ended = client.delete(f"{base}/quotas/{quota_id}/increases/{increase.json()['id']}")
    assert ended.status_code == 204

    zone = send(client, "put", f"{base}/quota-time-zone", {"time_zone": "Europe/Paris"})
    assert zone.status_code == 200 and zone.json() == {"time_zone": "Europe/Paris"}
    assert client.get(f"{base}/quota-time-zone").json() == {"time_zone": "Europe/Paris"}

    assert client.delete(f"{base}/quotas/{quota_id}").status_code == 204
    assert not Quota.objects.filter(pk=quota_id).exists()


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"token_budget": -1}, 422, "token_budget"),
        ({"token_budget": 10**15}, 422, "token_budget"),
        ({"token_budget": "lots"}, 422, "token_budget"),
        ({"cost_budget": "-0.01"}, 422, "cost_budget"),
        ({"cost_budget": "1.0000001"}, 422, "cost_budget"),
        ({"cost_budget": "1e40"}, 422, "cost_budget"),
        ({"cost_budget": "NaN"}, 422, "cost_budget"),
        ({"requests_per_minute": 10**9}, 422, "requests_per_minute"),
        ({"max_concurrent_runs": -3}, 422, "max_concurrent_runs"),
        ({"period": "week"}, 422, "period"),
        ({"thresholds": [0]}, 400, "thresholds"),
        ({"thresholds": [80, 150]}, 400, "thresholds"),
        ({"api_key": "nope"}, 404, None),
    ],
)
def test_bad_quota_values_are_clear_4xx(admin_api, body, status, param):
    _team, _admin, client, base = admin_api
    response = send(client, "post", f"{base}/quotas", body)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["param"] == param and error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"extra_tokens": 5, "ends_at": "2000-01-01T00:00:00Z"}, "ends_at"),
        ({"extra_tokens": 5, "ends_at": "2999-01-01T00:00:00Z"}, "ends_at"),  # > a year
        ({"extra_cost": "1", "ends_at": NEXT_WEEK}, "extra_cost"),  # no cost budget to raise
        ({"ends_at": NEXT_WEEK}, "extra_tokens"),  # raises nothing
    ],
)
def test_bad_increases_are_400(admin_api, body, param):
    team, admin, client, base = admin_api
    quota = make_quota(team, admin, token_budget=100)
    response = send(client, "post", f"{base}/quotas/{quota.pk}/increases", body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../../etc/passwd", "utc+25"])
def test_a_time_zone_that_does_not_exist_is_400(admin_api, zone):
    _team, _admin, client, base = admin_api
    response = send(client, "put", f"{base}/quota-time-zone", {"time_zone": zone})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "time_zone"


def test_who_may_read_and_change():
    team, admin = team_with_admin()
    quota = make_quota(team, admin, token_budget=100)
    base = f"/api/v1/teams/{team.slug}/quotas"
    member = Client()
    member.force_login(member_of(team, Role.MEMBER))
    assert member.get(base).status_code == 200
    assert send(member, "patch", f"{base}/{quota.pk}", {"token_budget": 5}).status_code == 403
    _key, read_only = make_key(team, admin, scopes=["read"])
    reader = bearer(read_only)
    assert reader.get(f"{base}/{quota.pk}").status_code == 200
    assert send(reader, "post", base, {"token_budget": 5}).status_code == 403
    assert reader.delete(f"{base}/{quota.pk}").status_code == 403


def test_another_teams_key_gets_404():
    team, admin = team_with_admin()
    quota = make_quota(team, admin, token_budget=100)
    other, other_admin = team_with_admin()
    _key, raw = make_key(other, other_admin, scopes=["read", "write", "admin"])
    intruder = bearer(raw)
    for method, url, body in [
        ("get", f"/api/v1/teams/{team.slug}/quotas", None),
        ("get", f"/api/v1/teams/{team.slug}/quotas/{quota.pk}", None),
        ("patch", f"/api/v1/teams/{team.slug}/quotas/{quota.pk}", {"token_budget": 1}),
        ("delete", f"/api/v1/teams/{team.slug}/quotas/{quota.pk}", None),
        ("get", f"/api/v1/teams/{other.slug}/quotas/{quota.pk}", None),
        ("delete", f"/api/v1/teams/{other.slug}/quotas/{quota.pk}", None),
        ("put", f"/api/v1/teams/{team.slug}/quota-time-zone", {"time_zone": "UTC"}),
    ]:
        assert send(intruder, method, url, body).status_code == 404, (method, url)
    assert Quota.objects.get(pk=quota.pk).token_budget == 100


def test_the_api_answers_429_with_retry_after_and_the_limit(admin_api):
    team, admin, client, base = admin_api
    backend = local_backend(team, admin)
    make_quota(team, admin, token_budget=0)
    response = send(
        client,
        "post",
        f"{base}/runs",
        {"backend": backend.pk, "model": "local-echo", "messages": HELLO},
    )
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "insufficient_quota"
    assert error["limit"]["name"] == "token_budget" and error["limit"]["limit"] == 0
    assert error["limit"]["current"] == 0 and error["limit"]["resets_at"]
    assert "resets at" in error["message"]


@pytest.mark.django_db(transaction=True)  # the async view reads the database from a thread
@pytest.mark.django_db(transaction=True)
def test_the_gateway_answers_429_in_openais_shape(admin_api):
    """The gateway's views are async: the test client drives them with async_to_sync,
    which refuses to run in a thread where Playwright's loop already runs (after any
    browser test), so the call goes through its own thread; the data is committed so
    that thread's connection sees it."""
    team, admin, _client, _base = admin_api
    local_backend(team, admin)
    make_quota(team, admin, token_budget=0)
    _key, raw = make_key(team, admin, scopes=["chat"])
    with ThreadPoolExecutor(max_workers=1) as pool:
        response = pool.submit(
            bearer(raw).post,
            "/v1/chat/completions",
            {"model": "local-echo", "messages": HELLO},
            content_type="application/json",
        ).result()
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "insufficient_quota" and error["type"] == "insufficient_quota"
    assert error["limit"]["name"] == "token_budget" and error["limit"]["scope"] == "team"
