import re
import time
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.assistants.tests.factories import AssistantFactory
from apps.core.errors import Conflict, NotFound, ServiceError
from apps.keys import services, tokens
from apps.keys.auth import authenticate, forget, scope_allows
from apps.keys.models import ApiKey, KeyStatus
from apps.keys.tests.factories import make_key
from apps.teams.models import Role
from apps.teams.permissions import Action
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db

SCANNER_RE = r"aip_[a-z2-7]{12}_[A-Za-z0-9]{40}"


def test_raw_key_matches_the_scanner_format_and_is_returned_once():
    key, raw = make_key()
    assert re.fullmatch(SCANNER_RE, raw)
    assert raw.startswith(f"aip_{key.public_id}_")
    assert tokens.parse(raw) == (key.public_id, raw.rsplit("_", 1)[1])
    fresh = ApiKey.objects.get(pk=key.pk)
    assert not hasattr(fresh, "raw") and not hasattr(fresh, "secret")


def test_only_the_hmac_is_stored():
    key, raw = make_key()
    secret = raw.rsplit("_", 1)[1]
    row = model_to_dict(ApiKey.objects.get(pk=key.pk))
    assert all(secret not in str(value) for value in row.values())
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM keys_apikey WHERE id = %s", [key.pk])
        assert secret not in repr(cursor.fetchone())
    assert key.secret_hash == tokens.hash_secret(secret)
    assert len(key.secret_hash) == 64


def test_hash_uses_the_configured_secret(settings):
    before = tokens.hash_secret("abc")
    settings.API_KEY_HMAC_SECRET = "another-server-secret"
    assert tokens.hash_secret("abc") != before


def test_authenticate_accepts_the_right_key():
    key, raw = make_key()
    assert authenticate(raw).pk == key.pk


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "aip_",
        "sk-not-ours",
        "aip_abcdefghijkl_short",
        "aip_ABCDEFGHIJKL_" + "a" * 40,
        "aip_abcdefghijkl_" + "a" * 39 + "_",
        "xaip_abcdefghijkl_" + "a" * 40,
        None,
    ],
)
def test_authenticate_rejects_malformed_strings(raw):
    assert authenticate(raw) is None


def test_authenticate_rejects_a_wrong_secret_and_unknown_ids():
    key, raw = make_key()
    assert authenticate(tokens.format_key(key.public_id, tokens.generate_secret())) is None
    assert authenticate(tokens.generate()[2]) is None
    assert authenticate(raw).pk == key.pk


def test_revoked_key_is_refused_at_once_in_this_process():
    key, raw = make_key()
    assert authenticate(raw) is not None
    services.key_revoke(key=key, actor=key.created_by)
    assert authenticate(raw) is None
    key.refresh_from_db()
    assert key.status == KeyStatus.REVOKED and key.revoked_by == key.created_by


def test_revocation_elsewhere_wins_within_a_second():
    key, raw = make_key()
    assert authenticate(raw) is not None  # now cached
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    time.sleep(1.1)
    assert authenticate(raw) is None


def test_expired_key_is_refused():
    key, raw = make_key()
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    forget(key.public_id)  # the row changed behind the services' back
    assert authenticate(raw) is None
    key.refresh_from_db()
    assert key.status == KeyStatus.EXPIRED


def test_revoking_twice_is_a_conflict():
    key, _ = make_key()
    services.key_revoke(key=key, actor=key.created_by)
    with pytest.raises(Conflict):
        services.key_revoke(key=key, actor=key.created_by)


def test_rotation_grace_then_stop():
    key, old_raw = make_key()
    key, new_raw = services.key_rotate(key=key, actor=key.created_by, grace_seconds=3600)
    assert new_raw != old_raw and new_raw.startswith(key.prefix)
    assert authenticate(new_raw).pk == key.pk
    assert authenticate(old_raw).pk == key.pk
    ApiKey.objects.filter(pk=key.pk).update(
        previous_valid_until=timezone.now() - timedelta(seconds=1)
    )
    forget(key.public_id)  # the row changed behind the services' back
    assert authenticate(old_raw) is None
    assert authenticate(new_raw).pk == key.pk


def test_rotation_without_grace_stops_the_old_secret_at_once():
    key, old_raw = make_key()
    assert authenticate(old_raw) is not None
    key, new_raw = services.key_rotate(key=key, actor=key.created_by, grace_seconds=0)
    assert authenticate(old_raw) is None
    assert authenticate(new_raw) is not None


@pytest.mark.parametrize("grace", [-1, 7 * 24 * 3600 + 1])
def test_rotation_grace_is_bounded(grace):
    key, _ = make_key()
    with pytest.raises(ServiceError):
        services.key_rotate(key=key, actor=key.created_by, grace_seconds=grace)


def test_revoked_and_expired_keys_cannot_rotate():
    key, _ = make_key()
    services.key_revoke(key=key, actor=key.created_by)
    with pytest.raises(Conflict):
        services.key_rotate(key=key, actor=key.created_by, grace_seconds=0)
    other, _ = make_key()
    ApiKey.objects.filter(pk=other.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Conflict):
        services.key_rotate(key=other, actor=other.created_by, grace_seconds=0)


def test_policy_requires_an_expiry_within_the_limit():
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    services.policy_set(team=team, actor=owner, max_lifetime_days=30)
    with pytest.raises(ServiceError, match="set an expiry"):
        make_key(team, owner)
    with pytest.raises(ServiceError, match="at most 30 days"):
        make_key(team, owner, expires_at=timezone.now() + timedelta(days=31))
    key, _ = make_key(team, owner, expires_at=timezone.now() + timedelta(days=30))
    assert key.expires_at
    services.policy_set(team=team, actor=owner, max_lifetime_days=None)
    make_key(team, owner)


def test_policy_and_keys_need_manage_keys():
    team = TeamFactory()
    member = member_of(team, Role.MEMBER)
    with pytest.raises(PermissionDenied):
        services.policy_set(team=team, actor=member, max_lifetime_days=10)
    with pytest.raises(PermissionDenied):
        make_key(team, member)
    key, _ = make_key(team)
    with pytest.raises(PermissionDenied):
        services.key_revoke(key=key, actor=member)
    with pytest.raises(PermissionDenied):
        services.key_rotate(key=key, actor=member, grace_seconds=0)
    outsider_admin = member_of(TeamFactory(), Role.ADMIN)
    with pytest.raises(PermissionDenied):
        services.key_revoke(key=key, actor=outsider_admin)


def test_expiry_must_be_in_the_future():
    with pytest.raises(ServiceError, match="future"):
        make_key(expires_at=timezone.now() - timedelta(minutes=1))


@pytest.mark.parametrize("scopes", [[], ["chat", "root"], "chat", None])
def test_scopes_are_validated(scopes):
    with pytest.raises(ServiceError) as error:
        make_key(scopes=scopes)
    assert error.value.param == "scopes"


def test_scopes_are_normalised():
    key, _ = make_key(scopes=["write", "chat", "chat"])
    assert key.scopes == ["chat", "write"]


def test_limits_and_models_are_validated():
    with pytest.raises(ServiceError):
        make_key(requests_per_minute=0)
    with pytest.raises(ServiceError):
        make_key(tokens_per_minute=-5)
    key, _ = make_key(
        allowed_models="gpt-4o, llama-3 ,, ", requests_per_minute=60, tokens_per_minute=1000
    )
    assert key.allowed_models == ["gpt-4o", "llama-3"]
    assert (key.requests_per_minute, key.tokens_per_minute) == (60, 1000)


def test_assistant_must_be_in_the_team():
    team = TeamFactory()
    with pytest.raises(NotFound):
        make_key(team, assistant=AssistantFactory())
    assistant = AssistantFactory(team=team)
    key, _ = make_key(team, assistant=assistant)
    assert key.assistant == assistant
    assistant.delete()
    key.refresh_from_db()
    assert key.assistant is None


def test_scope_allows():
    key = ApiKey(scopes=["read", "chat"])
    assert scope_allows(key, Action.VIEW)
    assert scope_allows(key, Action.USE)
    assert not scope_allows(key, Action.EDIT)
    assert not scope_allows(key, Action.MANAGE_KEYS)
    admin = ApiKey(scopes=["admin"])
    for action in [
        Action.MANAGE_MEMBERS,
        Action.MANAGE_KEYS,
        Action.MANAGE_BACKENDS,
        Action.MANAGE_QUOTAS,
    ]:
        assert scope_allows(admin, action)
    assert not scope_allows(admin, Action.VIEW)
    assert not scope_allows(admin, Action.MANAGE_TEAM)
    assert not scope_allows(admin, Action.MANAGE_OWNERS)
    assert scope_allows(ApiKey(scopes=["write"]), Action.EDIT)


def test_last_used_is_written_at_most_once_a_minute():
    key, raw = make_key()
    with CaptureQueriesContext(connection) as queries:
        assert authenticate(raw) is not None
        assert authenticate(raw) is not None
    updates = [q for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 1
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_staff_may_revoke_any_key():
    key, _ = make_key()
    staff = UserFactory(is_staff=True)
    services.key_revoke(key=key, actor=staff)
    key.refresh_from_db()
    assert key.revoked_by == staff
