from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from apps.core.crypto import decrypt
from apps.core.errors import Conflict, NotFound, ServiceError
from apps.inference import services
from apps.inference.models import Backend, BackendKind, ChatRun, RunStatus
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db
HELLO = [{"role": "user", "content": "hi"}]


def compatible(team, actor, **extra):
    fields = {
        "kind": BackendKind.OPENAI_COMPATIBLE,
        "name": "vLLM",
        "base_url": "http://gpu.internal:8000/v1",
        "models": ["llama-3.1-8b"],
    }
    fields.update(extra)
    return services.backend_create(team=team, actor=actor, **fields)


def test_api_key_is_encrypted_at_rest_and_only_last4_kept():
    team, admin = team_with_admin()
    backend = services.backend_create(
        team=team,
        actor=admin,
        kind=BackendKind.OPENAI,
        name="OpenAI",
        api_key="sk-test-abcd9876",
        models=["gpt-4o-mini"],
    )
    stored = Backend.objects.get(pk=backend.pk)
    assert "sk-test-abcd9876" not in stored.api_key_encrypted
    assert decrypt(stored.api_key_encrypted) == "sk-test-abcd9876"
    assert stored.api_key_last4 == "9876"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"kind": BackendKind.OPENAI, "name": "o"}, "api_key"),
        ({"kind": BackendKind.OPENAI_COMPATIBLE, "name": "c"}, "base_url"),
        ({"kind": BackendKind.OPENAI_COMPATIBLE, "name": "c", "base_url": "ftp://x"}, "base_url"),
        ({"kind": BackendKind.AZURE_OPENAI, "name": "a", "api_key": "k" * 10}, "azure_endpoint"),
        ({"kind": "mystery", "name": "m"}, "kind"),
        ({"kind": BackendKind.LOCAL, "name": ""}, "name"),
        ({"kind": BackendKind.LOCAL, "name": "l", "timeout_seconds": 0}, "timeout_seconds"),
    ],
)
def test_backend_validation_names_the_field(fields, param):
    team, admin = team_with_admin()
    with pytest.raises(ServiceError) as error:
        services.backend_create(team=team, actor=admin, **fields)
    assert error.value.param == param
    assert not Backend.objects.exists()


def test_duplicate_backend_name_in_a_team_is_a_conflict():
    team, admin = team_with_admin()
    local_backend(team, admin, name="Same")
    with pytest.raises(Conflict):
        local_backend(team, admin, name="Same")
    other_team, other_admin = team_with_admin()
    local_backend(other_team, other_admin, name="Same")


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MEMBER])
def test_only_admins_manage_backends(role):
    team = TeamFactory()
    with pytest.raises(PermissionDenied):
        local_backend(team, member_of(team, role))


def test_global_backends_are_for_staff():
    _team, admin = team_with_admin()
    with pytest.raises(PermissionDenied):
        services.backend_create(team=None, actor=admin, kind=BackendKind.LOCAL, name="Global")
    staff = member_of(TeamFactory(), Role.MEMBER, is_staff=True)
    backend = services.backend_create(team=None, actor=staff, kind=BackendKind.LOCAL, name="Global")
    assert backend.is_global
    with pytest.raises(PermissionDenied):
        services.backend_update(backend=backend, actor=admin, name="Mine now")


def test_update_keeps_clears_and_replaces_the_key():
    team, admin = team_with_admin()
    backend = compatible(team, admin, api_key="first-key-1111")
    services.backend_update(backend=backend, actor=admin, name="Renamed")
    backend.refresh_from_db()
    assert (backend.name, decrypt(backend.api_key_encrypted)) == ("Renamed", "first-key-1111")
    services.backend_update(backend=backend, actor=admin, api_key="second-key-2222")
    backend.refresh_from_db()
    assert backend.api_key_last4 == "2222"
    services.backend_update(backend=backend, actor=admin, api_key="")
    backend.refresh_from_db()
    assert not backend.has_api_key and backend.api_key_last4 == ""


def test_kind_cannot_change():
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    with pytest.raises(ServiceError, match="kind"):
        services.backend_update(backend=backend, actor=admin, kind=BackendKind.OPENAI)


def test_delete_without_runs_deletes_with_runs_disables():
    team, admin = team_with_admin()
    unused, used = (
        local_backend(team, admin, name="Unused"),
        local_backend(team, admin, name="Used"),
    )
    ChatRun.objects.create(team=team, backend=used, model="local-echo", messages=HELLO)
    assert services.backend_delete(backend=unused, actor=admin) == "deleted"
    assert services.backend_delete(backend=used, actor=admin) == "disabled"
    assert not Backend.objects.filter(pk=unused.pk).exists()
    assert Backend.objects.get(pk=used.pk).enabled is False


def test_local_backend_gets_its_model_list():
    team, admin = team_with_admin()
    assert local_backend(team, admin).model_ids == ["local-echo"]


# --- runs -----------------------------------------------------------------------


def test_run_create_queues_and_enqueues_on_commit(django_capture_on_commit_callbacks):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    with django_capture_on_commit_callbacks() as callbacks:
        run = services.run_create(
            team=team, actor=admin, backend_id=backend.pk, model="local-echo", messages=HELLO
        )
    assert run.status == RunStatus.QUEUED
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": ""}, "model"),
        ({"parameters": {"temperature": 3}}, "temperature"),
        ({"parameters": {"temperature": "hot"}}, "temperature"),
        ({"parameters": {"max_tokens": 0}}, "max_tokens"),
        ({"parameters": {"max_tokens": True}}, "max_tokens"),
        ({"parameters": {"stop": ["a", "b", "c", "d", "e"]}}, "stop"),
        ({"parameters": {"n": 2}}, "n"),
        ({"parameters": {"tools": [{"type": "function"}]}}, "tools"),
        ({"fallbacks": [{"backend": "x", "model": "m"}]}, "fallbacks[0]"),
    ],
)
def test_run_create_rejects_bad_input_naming_the_parameter(kwargs, param):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    arguments = {"backend_id": backend.pk, "model": "local-echo", "messages": HELLO, **kwargs}
    with pytest.raises(ServiceError) as error:
        services.run_create(team=team, actor=admin, **arguments)
    assert error.value.param == param
    assert not ChatRun.objects.exists()


def test_run_on_another_teams_backend_is_not_found():
    team, admin = team_with_admin()
    other_team, other_admin = team_with_admin()
    theirs = local_backend(other_team, other_admin)
    mine = local_backend(team, admin)
    with pytest.raises(NotFound):
        services.run_create(team=team, actor=admin, backend_id=theirs.pk, model="m", messages=HELLO)
    with pytest.raises(NotFound):
        services.run_create(
            team=team,
            actor=admin,
            backend_id=mine.pk,
            model="m",
            messages=HELLO,
            fallbacks=[{"backend": theirs.pk, "model": "m"}],
        )
    assert not ChatRun.objects.exists()


def test_viewers_cannot_start_runs_and_disabled_backends_refuse():
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    with pytest.raises(PermissionDenied):
        services.run_create(
            team=team,
            actor=member_of(team, Role.VIEWER),
            backend_id=backend.pk,
            model="local-echo",
            messages=HELLO,
        )
    services.backend_update(backend=backend, actor=admin, enabled=False)
    with pytest.raises(ServiceError, match="disabled"):
        services.run_create(
            team=team, actor=admin, backend_id=backend.pk, model="local-echo", messages=HELLO
        )


def test_global_backend_is_usable_by_every_team():
    staff = member_of(TeamFactory(), Role.MEMBER, is_staff=True)
    shared = services.backend_create(team=None, actor=staff, kind=BackendKind.LOCAL, name="Shared")
    team, admin = team_with_admin()
    run = services.run_create(
        team=team, actor=admin, backend_id=shared.pk, model="local-echo", messages=HELLO
    )
    assert run.backend == shared


def test_cancel_a_queued_run_and_refuse_cancelling_a_finished_one():
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    run = ChatRun.objects.create(team=team, backend=backend, model="local-echo", messages=HELLO)
    services.run_cancel(run=run, actor=admin)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.finished_at
    with pytest.raises(Conflict):
        services.run_cancel(run=run, actor=admin)


def test_sweeper_requeues_fails_or_cancels_stale_runs(settings):
    settings.INFERENCE_STALE_SECONDS = 10
    settings.INFERENCE_MAX_DELIVERIES = 2
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    stale = timezone.now() - timedelta(seconds=60)
    fresh = timezone.now()

    def running(**fields):
        return ChatRun.objects.create(
            team=team,
            backend=backend,
            model="m",
            messages=HELLO,
            status=RunStatus.RUNNING,
            **fields,
        )

    requeue = running(heartbeat_at=stale, deliveries=1)
    give_up = running(heartbeat_at=stale, deliveries=2)
    cancelled = running(heartbeat_at=stale, deliveries=1, cancel_requested_at=stale)
    alive = running(heartbeat_at=fresh, deliveries=1)
    assert services.runs_sweep() == {"requeued": 1, "failed": 1, "cancelled": 1, "resent": 0}
    statuses = {r.pk: r.status for r in ChatRun.objects.all()}
    assert statuses == {
        requeue.pk: "queued",
        give_up.pk: "failed",
        cancelled.pk: "cancelled",
        alive.pk: "running",
    }
    assert "stopped responding" in ChatRun.objects.get(pk=give_up.pk).error


def test_sweeper_resends_queued_runs_whose_message_seems_lost(settings, monkeypatch):
    from apps.inference import dispatch

    settings.INFERENCE_QUEUED_RESEND_SECONDS = 60
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    old = timezone.now() - timedelta(seconds=120)
    lost = ChatRun.objects.create(
        team=team, backend=backend, model="m", messages=HELLO, enqueued_at=old
    )
    ChatRun.objects.create(
        team=team, backend=backend, model="m", messages=HELLO, enqueued_at=timezone.now()
    )
    sent = []
    monkeypatch.setattr(dispatch, "enqueue_run", sent.append)
    assert services.runs_sweep()["resent"] == 1
    assert sent == [lost.pk]
