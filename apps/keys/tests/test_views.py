import re

import pytest
from django.urls import reverse

from apps.accounts.tests.factories import UserFactory
from apps.assistants.tests.factories import AssistantFactory
from apps.keys.auth import authenticate
from apps.keys.models import ApiKey, KeyPolicy
from apps.keys.tests.factories import make_key
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db

KEY_RE = re.compile(r"aip_[a-z2-7]{12}_[A-Za-z0-9]{40}")


def _new_key(response) -> str:
    match = re.search(r'value="([^"]+)"[^>]*data-testid="new-key"', response.content.decode())
    assert match, "the new key is on the page"
    return match.group(1)


def test_admin_creates_a_key_and_sees_it_once(client):
    team = TeamFactory()
    admin = member_of(team, Role.ADMIN)
    assistant = AssistantFactory(team=team)
    client.force_login(admin)
    response = client.post(
        reverse("keys:create", args=[team.slug]),
        {
            "name": "CI",
            "scopes": ["chat", "read"],
            "expires_in_days": "30",
            "assistant": assistant.pk,
            "allowed_models": "gpt-4o, local-echo",
            "requests_per_minute": "60",
            "tokens_per_minute": "",
        },
    )
    assert response.status_code == 200
    assert "won't be shown again" in response.content.decode()
    raw = _new_key(response)
    assert KEY_RE.fullmatch(raw)
    assert response["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(team=team)
    assert authenticate(raw).pk == key.pk
    assert key.scopes == ["chat", "read"] and key.assistant == assistant
    assert key.allowed_models == ["gpt-4o", "local-echo"] and key.requests_per_minute == 60
    assert key.expires_at is not None and key.created_by == admin

    listing = client.get(reverse("keys:list", args=[team.slug])).content.decode()
    secret = raw.rsplit("_", 1)[1]
    assert secret not in listing
    assert f"aip_{key.public_id}_" in listing
    assert 'data-testid="new-key"' not in listing


def test_create_with_bad_input_is_400(client):
    team = TeamFactory()
    client.force_login(member_of(team, Role.OWNER))
    response = client.post(reverse("keys:create", args=[team.slug]), {"name": "x"})
    assert response.status_code == 400
    assert not ApiKey.objects.exists()


def test_policy_from_the_page_is_enforced(client):
    team = TeamFactory()
    client.force_login(member_of(team, Role.OWNER))
    response = client.post(reverse("keys:policy", args=[team.slug]), {"max_lifetime_days": "7"})
    assert response.status_code == 302
    assert KeyPolicy.objects.get(team=team).max_lifetime_days == 7
    response = client.post(
        reverse("keys:create", args=[team.slug]),
        {"name": "long", "scopes": ["chat"], "expires_in_days": "8"},
    )
    assert response.status_code == 400
    assert "at most 7 days" in response.content.decode()


def test_members_see_the_list_but_may_not_post(client):
    team = TeamFactory()
    key, raw = make_key(team)
    member = member_of(team, Role.MEMBER)
    client.force_login(member)
    listing = client.get(reverse("keys:list", args=[team.slug]))
    assert listing.status_code == 200
    body = listing.content.decode()
    assert key.name in body and raw.rsplit("_", 1)[1] not in body
    assert "Create a key" not in body
    for url, data in [
        (reverse("keys:create", args=[team.slug]), {"name": "x", "scopes": ["chat"]}),
        (reverse("keys:revoke", args=[team.slug, key.pk]), {}),
        (reverse("keys:rotate", args=[team.slug, key.pk]), {"grace_seconds": "0"}),
        (reverse("keys:policy", args=[team.slug]), {"max_lifetime_days": "1"}),
    ]:
        assert client.post(url, data).status_code == 403
    key.refresh_from_db()
    assert key.revoked_at is None and ApiKey.objects.count() == 1


def test_outsiders_get_404(client):
    team = TeamFactory()
    key, _ = make_key(team)
    client.force_login(member_of(TeamFactory(), Role.OWNER))
    assert client.get(reverse("keys:list", args=[team.slug])).status_code == 404
    assert client.post(reverse("keys:revoke", args=[team.slug, key.pk])).status_code == 404
    # an admin of another team can't reach this team's key through their own slug
    other = TeamFactory()
    client.force_login(member_of(other, Role.OWNER))
    assert client.post(reverse("keys:revoke", args=[other.slug, key.pk])).status_code == 404


def test_revoke_from_the_page(client):
    team = TeamFactory()
    key, raw = make_key(team)
    client.force_login(key.created_by)
    response = client.post(reverse("keys:revoke", args=[team.slug, key.pk]))
    assert response.status_code == 302
    assert authenticate(raw) is None
    listing = client.get(reverse("keys:list", args=[team.slug])).content.decode()
    assert "revoked" in listing


def test_rotate_from_the_page(client):
    team = TeamFactory()
    key, old_raw = make_key(team)
    client.force_login(key.created_by)
    response = client.post(
        reverse("keys:rotate", args=[team.slug, key.pk]), {"grace_seconds": "3600"}
    )
    assert response.status_code == 200
    new_raw = _new_key(response)
    assert new_raw != old_raw and new_raw.startswith(f"aip_{key.public_id}_")
    assert authenticate(new_raw).pk == key.pk
    assert authenticate(old_raw).pk == key.pk  # during the grace period


def test_admin_action_revokes_selected_keys(client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    first, first_raw = make_key()
    second, _ = make_key()
    client.force_login(staff)
    response = client.post(
        reverse("admin:keys_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [first.pk, second.pk]},
    )
    assert response.status_code == 302
    assert ApiKey.objects.filter(revoked_at__isnull=False, revoked_by=staff).count() == 2
    assert authenticate(first_raw) is None
    changelist = client.get(reverse("admin:keys_apikey_changelist") + "?status=revoked")
    assert changelist.status_code == 200
    assert first.secret_hash not in changelist.content.decode()
    change = client.get(reverse("admin:keys_apikey_change", args=[first.pk]))
    assert change.status_code == 200 and first.secret_hash not in change.content.decode()
