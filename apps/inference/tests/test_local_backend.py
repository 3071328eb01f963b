"""The embedded default's path: eager dispatch and the built-in local backend."""

import uuid

import pytest

from apps.inference import executor, services, textgen
from apps.inference.backends.local import LocalChatClient
from apps.inference.models import RunStatus
from apps.inference.tests.factories import local_backend, team_with_admin

pytestmark = pytest.mark.django_db
HELLO = [{"role": "user", "content": "Hello local"}]


def test_local_client_is_deterministic_streams_and_reports_usage():
    client = LocalChatClient(tokens_per_second=0)
    seen = []
    first = client.stream_chat(
        model="local-echo",
        messages=HELLO,
        params={},
        on_delta=seen.append,
        should_stop=lambda: False,
    )
    second = client.stream_chat(
        model="local-echo",
        messages=HELLO,
        params={},
        on_delta=lambda d: None,
        should_stop=lambda: False,
    )
    assert first.text == second.text == "".join(seen)
    assert len(seen) == first.completion_tokens > 1
    assert first.usage_reported and first.finish_reason == "stop"


def test_local_client_honours_max_tokens():
    result = LocalChatClient(tokens_per_second=0).stream_chat(
        model="local-echo",
        messages=HELLO,
        params={"max_tokens": 3},
        on_delta=lambda d: None,
        should_stop=lambda: False,
    )
    assert result.completion_tokens == 3 and result.finish_reason == "length"


def test_eager_run_with_the_local_backend_succeeds(settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.LOCAL_BACKEND_TOKENS_PER_SECOND = 0
    from portal.celery import app

    app.conf.task_always_eager = True
    try:
        team, admin = team_with_admin()
        backend = local_backend(team, admin)
        with django_capture_on_commit_callbacks(execute=True):
            run = services.run_create(
                team=team, actor=admin, backend_id=backend.pk, model="local-echo", messages=HELLO
            )
        run.refresh_from_db()
    finally:
        app.conf.task_always_eager = False
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "".join(textgen.echo_pieces(HELLO)) == "You said: Hello local"
    assert not run.usage_estimated and run.total_tokens > 0


def queued_run():
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    return services.run_create(
        team=team, actor=admin, backend_id=backend.pk, model="local-echo", messages=HELLO
    )


def test_a_task_that_dies_before_its_claim_fails_the_run(monkeypatch, settings):
    """The database refusing the claim every time (SQLite busy past its timeout, the
    error the embedded default showed) ends the run as failed with a message the page
    can show, instead of leaving it queued for good. The fault is injected at the
    claim, the first write a task makes."""
    from django.db import OperationalError

    from apps.inference import dispatch

    settings.CELERY_TASK_ALWAYS_EAGER = True
    run = queued_run()

    def locked(run_id):
        raise OperationalError("database is locked")

    monkeypatch.setattr(executor, "claim", locked)
    dispatch.enqueue_run(run.pk)  # the embedded default's path: the task in process
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error == executor.INTERNAL_ERROR and run.error_code == "internal"
    assert "Traceback" not in run.error and run.finished_at is not None


def test_failing_a_run_only_touches_one_nobody_else_owns():
    run = queued_run()
    executor.claim(run.pk)  # a live worker holds it now
    assert executor.fail_unfinished(run.pk) is False  # not queued any more
    assert executor.fail_unfinished(run.pk, token=uuid.uuid4()) is False  # not our claim
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    assert executor.fail_unfinished(run.pk, token=run.claim_token) is True
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert executor.fail_unfinished(run.pk, token=run.claim_token) is False  # finished
