"""New runs are popped by the worker's own step (apps/inference/intake.py), not by
kombu's consumer; a worker with another pool still runs them through Celery. Real
Redis, PostgreSQL, Celery workers and the simulator."""

import pytest
from django.db import OperationalError

from apps.inference import executor, intake, task_messages
from apps.inference.models import ChatRun, RunStatus
from apps.inference.tasks import execute_run
from apps.inference.tests.factories import simulator_backend, team_with_admin
from apps.inference.tests.test_worker_runs import HELLO, create, wait_finished
from portal.celery import app

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
KOMBU_RECEIVED = "Task apps.inference.tasks.execute_run["


def test_the_intake_reads_the_arguments_celery_would_pass():
    for args in ([7], [7, "portal:feed:reply:abc", False]):
        assert intake.message_args(task_messages._envelope(app, args)) == args


def test_a_thread_pool_worker_takes_new_runs_itself(celery_workers, simulator):
    worker = celery_workers()
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    runs = [wait_finished(create(team, admin, backend).pk) for _ in range(3)]
    assert [run.status for run in runs] == [RunStatus.SUCCEEDED] * 3
    log = worker.log_path.read_text()
    assert log.count("run executed") >= 3
    assert KOMBU_RECEIVED not in log, "kombu's consumer took a new run"


def test_a_worker_with_another_pool_runs_them_through_celery(celery_workers, simulator):
    worker = celery_workers(concurrency=1, pool="solo")
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    run = wait_finished(create(team, admin, backend).pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert KOMBU_RECEIVED in worker.log_path.read_text()


def _message(run_id: int) -> bytes:
    return task_messages._envelope(app, [run_id, "portal:feed:reply:x", False])


def test_a_database_error_hands_the_run_to_celerys_retries(monkeypatch):
    def refused(run_id, reply):
        raise OperationalError("the database is starting up")

    sent = []
    monkeypatch.setattr(executor, "execute", refused)
    monkeypatch.setattr(execute_run, "apply_async", lambda **kw: sent.append(kw))
    assert intake.run_message(_message(5)) is None
    assert sent == [{"args": [5, "portal:feed:reply:x", False], "countdown": 1}]


def test_any_other_error_fails_the_run_instead_of_leaving_it_queued(monkeypatch, simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    run = ChatRun.objects.create(
        team=team, created_by=admin, backend=backend, model="sim-small", messages=HELLO
    )

    def broken(run_id, reply):
        raise RuntimeError("a bug")

    monkeypatch.setattr(executor, "execute", broken)
    assert intake.run_message(_message(run.pk)) is None
    run.refresh_from_db()
    assert (run.status, run.error_code) == (RunStatus.FAILED, "internal")


def test_a_message_that_is_not_a_run_is_dropped():
    assert intake.run_message(b'{"body": "not base64 json"}') is None
