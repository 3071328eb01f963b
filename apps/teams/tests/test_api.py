from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.teams.models import Role, Team
from apps.teams.tests.factories import InvitationFactory, MembershipFactory, TeamFactory, member_of

pytestmark = pytest.mark.django_db


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"type", "message", "param", "code"}
    assert error["code"] == code
    return error


def test_unauthenticated_gets_401_in_the_error_schema(client):
    assert_error(client.get("/api/v1/teams"), 401, "unauthenticated")


def test_list_and_get_my_teams(client):
    team = TeamFactory(name="Alpha", slug="alpha")
    user = member_of(team, Role.ADMIN)
    member_of(TeamFactory(name="Other"), Role.OWNER)
    client.force_login(user)
    assert [(t["slug"], t["role"]) for t in client.get("/api/v1/teams").json()["items"]] == [
        ("alpha", "admin")
    ]
    assert client.get("/api/v1/teams/alpha").json()["name"] == "Alpha"


def test_another_teams_resources_are_404(client):
    other = TeamFactory(slug="secret")
    member_of(other, Role.OWNER)
    client.force_login(member_of(TeamFactory(), Role.OWNER))
    assert_error(client.get("/api/v1/teams/secret"), 404, "not_found")
    assert_error(client.get("/api/v1/teams/secret/members"), 404, "not_found")
    assert_error(client.get("/api/v1/teams/secret/assistants"), 404, "not_found")


def test_members_list(client):
    team = TeamFactory()
    owner = member_of(team, Role.OWNER, email="a@example.com")
    member_of(team, Role.VIEWER, email="b@example.com")
    client.force_login(owner)
    body = client.get(f"/api/v1/teams/{team.slug}/members").json()["items"]
    assert [(m["email"], m["role"]) for m in body] == [
        ("a@example.com", "owner"),
        ("b@example.com", "viewer"),
    ]


def test_create_team_validates(client):
    user = UserFactory()
    client.force_login(user)
    created = client.post("/api/v1/teams", {"name": "Made by API"}, content_type="application/json")
    assert created.status_code == 201
    assert created.json()["role"] == "owner"
    error = assert_error(
        client.post("/api/v1/teams", {"name": 42}, content_type="application/json"),
        422,
        "validation_error",
    )
    assert error["param"] == "name"
    assert_error(
        client.post("/api/v1/teams", {}, content_type="application/json"), 422, "validation_error"
    )
    assert Team.objects.count() == 1


def test_malformed_json_is_a_clear_4xx(client):
    client.force_login(UserFactory())
    response = client.post("/api/v1/teams", "{not json", content_type="application/json")
    assert response.status_code in {400, 422}
    assert "error" in response.json()
    assert not Team.objects.exists()


def test_huge_body_is_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    client.force_login(UserFactory())
    response = client.post("/api/v1/teams", {"name": "x" * 5000}, content_type="application/json")
    assert_error(response, 413, "too_large")
    assert not Team.objects.exists()


def test_openapi_document_and_docs_page(client):
    schema = client.get("/api/v1/openapi.json").json()
    assert schema["info"]["title"]
    operation_ids = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {
        "teams_list",
        "teams_create",
        "teams_get",
        "team_members_list",
        "assistants_list",
    } <= operation_ids
    assert client.get("/api/v1/docs").status_code == 200


def test_session_writes_need_the_csrf_token():
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory())
    response = client.post("/api/v1/teams", {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    assert not Team.objects.exists()


def test_teams_list_pages_with_the_role_in_each(client, django_assert_max_num_queries):
    user = UserFactory()
    for name, role in [("Delta", Role.VIEWER), ("Alpha", Role.OWNER), ("Charlie", Role.MEMBER)]:
        MembershipFactory(team=TeamFactory(name=name), user=user, role=role)
    MembershipFactory(team=TeamFactory(name="Bravo"))  # someone else's
    client.force_login(user)
    first = client.get("/api/v1/teams?limit=2").json()
    assert [(t["name"], t["role"]) for t in first["items"]] == [
        ("Alpha", "owner"),
        ("Charlie", "member"),
    ]
    assert (first["count"], first["next_offset"]) == (3, 2)
    with django_assert_max_num_queries(6):
        rest = client.get("/api/v1/teams?limit=2&offset=2").json()
    assert [(t["name"], t["role"]) for t in rest["items"]] == [("Delta", "viewer")]
    assert rest["next_offset"] is None


def test_invitations_list_pages(client):
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    for _ in range(3):
        InvitationFactory(team=team, invited_by=owner)
    InvitationFactory(team=team, invited_by=owner, expires_at=timezone.now() - timedelta(days=1))
    client.force_login(owner)
    url = f"/api/v1/teams/{team.slug}/invitations"
    everything = client.get(url).json()
    assert everything["count"] == 3  # the expired one isn't pending
    page = client.get(f"{url}?limit=2&offset=2").json()
    assert page["items"] == everything["items"][2:]
    assert (page["count"], page["next_offset"]) == (3, None)
    assert client.get(f"{url}?limit=500").status_code == 422
