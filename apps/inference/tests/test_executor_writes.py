"""The worker's writes on the hot path: the one-statement claim of a queued run, the
rows it takes from the process (team, backend, prompt version), the final write,
and the non-streamed backend call a caller that does not stream gets."""

import uuid

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core import rows
from apps.events.models import OutboxEvent
from apps.inference import executor, feed, services, worker_rows
from apps.inference.backends import BackendError, client_for
from apps.inference.models import ChatRun, RunAttempt, RunStatus
from apps.inference.tests.factories import simulator_backend, team_with_admin
from apps.usage.models import UsageRecord

pytestmark = pytest.mark.django_db
HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(autouse=True)
def fresh_rows():
    worker_rows.forget()
    yield
    worker_rows.forget()


def queued(team, admin, backend, **fields) -> ChatRun:
    """A queued run nobody handed to a worker yet."""
    return ChatRun.objects.create(
        team=team, created_by=admin, backend=backend, model="sim-small", messages=HELLO, **fields
    )


def test_a_queued_run_is_claimed_in_one_statement_and_its_rows_come_from_the_process(
    simulator,
):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    executor.claim(queued(team, admin, backend).pk)  # the process now holds team and backend
    run_id = queued(team, admin, backend).pk

    with CaptureQueriesContext(connection) as queries:
        run, token = executor.claim(run_id)
        assert (run.team.pk, run.backend.pk) == (team.pk, backend.pk)  # no query for these
    statements = [q["sql"] for q in queries]  # no savepoint: it needs no transaction
    assert len(statements) == 1, [sql[:80] for sql in statements]
    assert statements[0].startswith("WITH claimed AS (UPDATE ")
    assert "event AS (INSERT INTO events_outboxevent " in statements[0]

    stored = ChatRun.objects.get(pk=run_id)
    assert (stored.status, stored.deliveries, stored.claim_token) == (
        RunStatus.RUNNING,
        1,
        token,
    )
    assert stored.started_at is not None and stored.heartbeat_at is not None
    started = OutboxEvent.objects.get(type="run.started", subject=f"run/{run_id}")
    assert started.data == {
        "run_id": run_id,
        "model": "sim-small",
        "assistant_id": None,
        "key_id": None,
        "delivery": 1,
    }
    assert executor.claim(run_id) is None  # taken: a second delivery does nothing


def test_a_claim_and_its_event_are_one_statement_both_or_neither(simulator, monkeypatch):
    """A failure in the event's half of the claim leaves the run queued for the next
    delivery: no half-claimed run without its run.started."""
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    run_id = queued(team, admin, backend).pk
    broken = executor._claim_queued_sql().replace(
        "FROM claimed RETURNING", "FROM claimed WHERE 1 / 0 = 1 RETURNING"
    )
    monkeypatch.setattr(executor, "_claim_queued_sql", lambda: broken)
    with pytest.raises(DatabaseError, match="division by zero"), transaction.atomic():
        executor.claim(run_id)  # (the savepoint stands for the test's own transaction)
    monkeypatch.undo()
    stored = ChatRun.objects.get(pk=run_id)
    assert (stored.status, stored.deliveries, stored.claim_token) == (RunStatus.QUEUED, 0, None)
    assert not OutboxEvent.objects.filter(type="run.started").exists()
    assert executor.claim(run_id) is not None  # the next delivery takes it


def test_the_claimed_run_is_the_row_the_orm_would_load(simulator):
    """The claim reads its RETURNING row itself (rows.from_row): every field, JSON and
    dates included, is what a query gives."""
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    run_id = queued(
        team,
        admin,
        backend,
        parameters={"temperature": 0.5, "stop": ["x"]},
        fallbacks=[{"backend": backend.pk, "model": "other"}],
        end_user="someone",
    ).pk
    run, _token = executor.claim(run_id)
    loaded = ChatRun.objects.get(pk=run_id)
    for field in ChatRun._meta.concrete_fields:
        assert getattr(run, field.attname) == getattr(loaded, field.attname), field.name
    assert run.messages == HELLO and run.parameters["stop"] == ["x"]
    assert not run._state.adding and run._state.db == "default"


def test_a_run_cancelled_before_its_claim_is_closed_not_claimed(simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    run = queued(team, admin, backend, cancel_requested_at=timezone.now())
    assert executor.claim(run.pk) is None
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.claim_token is None


def test_a_backend_change_reaches_the_next_claim(simulator, django_capture_on_commit_callbacks):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    first, _ = executor.claim(queued(team, admin, backend).pk)
    assert first.backend.timeout_seconds == 10.0
    with django_capture_on_commit_callbacks(execute=True):  # the version moves on commit
        services.backend_update(backend=backend, actor=admin, timeout_seconds=3)
    second, _ = executor.claim(queued(team, admin, backend).pk)
    assert second.backend.timeout_seconds == 3


def test_a_claim_gets_its_own_copies_of_the_process_rows(simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    first, _ = executor.claim(queued(team, admin, backend).pk)
    first.backend.name = "changed by one run"
    second, _ = executor.claim(queued(team, admin, backend).pk)
    assert second.backend.name == backend.name


def test_the_final_write_stores_the_run_its_attempt_and_its_ledger_row(simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    run = queued(team, admin, backend)
    assert executor.execute(run.pk, feed.Reply("test-reply", deltas=False)) == "succeeded"

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and run.output and run.heartbeat_at is None
    (attempt,) = RunAttempt.objects.filter(run=run)
    assert attempt.succeeded and attempt.total_tokens == run.total_tokens
    assert attempt.claim_token == run.claim_token
    (record,) = UsageRecord.objects.filter(run=run)
    assert (record.attempt_id, record.team_id, record.backend_id) == (
        attempt.pk,
        team.pk,
        backend.pk,
    )
    assert record.total_tokens == run.total_tokens and record.txid is not None
    assert OutboxEvent.objects.filter(type="run.succeeded", subject=f"run/{run.pk}").exists()


def test_a_final_write_under_a_lost_claim_writes_nothing(simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    run, _token = executor.claim(queued(team, admin, backend).pk)
    run.status, run.output = RunStatus.SUCCEEDED, "mine"
    assert rows.update(run, ("status", "output"), claim_token=None, status="running") == 0
    ChatRun.objects.filter(pk=run.pk).update(claim_token=None)  # the sweeper took it back
    outcome = executor.Outcome(RunStatus.SUCCEEDED, executor.CallResult(text="late"), None)
    assert executor.write_final(run, outcome, claim_token=_token) is False
    stored = ChatRun.objects.get(pk=run.pk)
    assert stored.status == RunStatus.RUNNING and stored.output == ""


def test_a_caller_that_does_not_stream_gets_one_json_answer_from_the_backend(simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    result = client_for(backend).complete_chat(
        model="sim-small", messages=HELLO, params={"max_tokens": 5}, should_stop=lambda: False
    )
    assert result.text and result.finish_reason == "length"
    assert result.completion_tokens == 5 and result.prompt_tokens > 0
    assert result.emitted == 0  # nothing reached a caller: a retry is still safe
    assert result.ttft_ms is not None


def test_a_tool_call_comes_back_whole_from_a_call_that_does_not_stream(simulator):
    from apps.inference.tests.test_simulator import FORCE_WEATHER, WEATHER_TOOL

    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    result = client_for(backend).complete_chat(
        model="sim-small",
        messages=HELLO,
        params={"tools": [WEATHER_TOOL], "tool_choice": FORCE_WEATHER},
        should_stop=lambda: False,
    )
    assert result.finish_reason == "tool_calls" and result.text == ""
    (call,) = result.tool_calls
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert "city" in call["function"]["arguments"]


@pytest.mark.parametrize(
    ("fault", "retryable", "code"),
    [("400", False, "bad_request"), ("500", True, "server_error"), ("429", True, "rate_limited")],
)
def test_backend_errors_of_a_call_that_does_not_stream(simulator, fault, retryable, code):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    simulator.inject(fault)
    with pytest.raises(BackendError) as caught:
        client_for(backend).complete_chat(
            model="sim-small", messages=HELLO, params={}, should_stop=lambda: False
        )
    assert (caught.value.retryable, caught.value.code) == (retryable, code)


def _two_attempts(run, token, backend) -> list[RunAttempt]:
    """A failed attempt then a successful one, as a fallback leaves them."""
    now = timezone.now()
    common = {"run": run, "claim_token": token, "backend": backend, "started_at": now}
    return [
        RunAttempt(
            number=1,
            model="sim-small",
            succeeded=False,
            error="Backend answered 500",
            http_status=500,
            finished_at=now,
            **common,
        ),
        RunAttempt(
            number=2,
            model="sim-large",
            succeeded=True,
            prompt_tokens=7,
            completion_tokens=5,
            total_tokens=12,
            latency_ms=40,
            finished_at=now,
            **common,
        ),
    ]


def _ledger_rows(run) -> list[tuple]:
    return [
        (r.attempt.number, r.status, r.model, r.total_tokens, r.cost, r.http_status, r.run_id)
        for r in UsageRecord.objects.filter(run=run).select_related("attempt").order_by("pk")
    ]


def test_a_claimed_runs_end_is_one_statement_and_stores_what_the_locked_path_stores(simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    claimed, token = executor.claim(queued(team, admin, backend).pk)
    attempts = _two_attempts(claimed, token, backend)
    result = executor.CallResult(text="fallback answer", finish_reason="stop")
    target = executor.Target(backend, "sim-large")
    outcome = executor.Outcome(RunStatus.SUCCEEDED, result, target, attempts=attempts)
    with CaptureQueriesContext(connection) as queries:
        assert executor.write_final(claimed, outcome, claim_token=token) is True
    writes = [  # (the price list is read once per process, not per run)
        q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE", "SELECT"))
    ]
    assert len(writes) == 1 and writes[0].startswith("WITH run AS (UPDATE ")

    locked_run = ChatRun.objects.select_for_update().get(pk=queued(team, admin, backend).pk)
    locked_run.started_at = timezone.now()
    same = _two_attempts(locked_run, uuid.uuid4(), backend)
    executor.write_final(
        locked_run, executor.Outcome(RunStatus.SUCCEEDED, result, target, attempts=same)
    )

    one, other = ChatRun.objects.get(pk=claimed.pk), ChatRun.objects.get(pk=locked_run.pk)
    for name in ("status", "output", "total_tokens", "served_model", "finish_reason"):
        assert getattr(one, name) == getattr(other, name), name
    assert [a.pk for a in attempts] == list(
        RunAttempt.objects.filter(run=claimed).order_by("number").values_list("pk", flat=True)
    )
    mine, theirs = _ledger_rows(claimed), _ledger_rows(locked_run)
    assert [row[:-1] for row in mine] == [row[:-1] for row in theirs]
    assert [row[0] for row in mine] == [1, 2] and {row[-1] for row in mine} == {claimed.pk}
    for run in (claimed, locked_run):
        (event,) = OutboxEvent.objects.filter(type="run.succeeded", subject=f"run/{run.pk}")
        assert event.data["attempts"] == 2 and event.data["attempt_tokens"] == 12


@pytest.mark.parametrize("with_attempts", [True, False])
def test_a_lost_claim_leaves_no_attempt_ledger_row_or_event(simulator, with_attempts):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    run, token = executor.claim(queued(team, admin, backend).pk)
    ChatRun.objects.filter(pk=run.pk).update(claim_token=None)  # the sweeper took it back
    attempts = _two_attempts(run, token, backend) if with_attempts else []
    outcome = executor.Outcome(
        RunStatus.FAILED, executor.CallResult(), None, "All backends failed", "x", attempts
    )
    assert executor.write_final(run, outcome, claim_token=token) is False
    assert ChatRun.objects.get(pk=run.pk).status == RunStatus.RUNNING
    assert not RunAttempt.objects.filter(run=run).exists()
    assert not UsageRecord.objects.filter(run=run).exists()
    assert not OutboxEvent.objects.filter(type="run.failed").exists()
