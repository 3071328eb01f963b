"""Runs end to end: a real Celery worker on Redis calls the simulator over HTTP
with the official openai SDK; results are read back from PostgreSQL."""

import time

import pytest

from apps.inference import services, textgen
from apps.inference.models import Backend, ChatRun, RunAttempt, RunStatus
from apps.inference.streaming import delta_message, follow
from apps.inference.tasks import execute_run
from apps.inference.tests.factories import simulator_backend, team_with_admin
from conftest import run_async

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
HELLO = [{"role": "user", "content": "Hello there"}]


def wait_finished(run_id: int, timeout: float = 30) -> ChatRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = ChatRun.objects.get(pk=run_id)
        if run.is_finished:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} still {ChatRun.objects.get(pk=run_id).status}")


def create(team, actor, backend, model="sim-small", **kwargs) -> ChatRun:
    return services.run_create(
        team=team,
        actor=actor,
        backend_id=backend.pk,
        model=model,
        messages=kwargs.pop("messages", HELLO),
        **kwargs,
    )


def test_plain_completion(celery_worker, simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    run = wait_finished(create(team, admin, backend).pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.output == "".join(textgen.reply_pieces(HELLO))
    assert run.finish_reason == "stop"
    assert run.completion_tokens == len(textgen.reply_pieces(HELLO))
    assert run.total_tokens == run.prompt_tokens + run.completion_tokens
    assert not run.usage_estimated
    assert run.latency_ms is not None and run.ttft_ms is not None
    (attempt,) = run.attempts.all()
    assert attempt.succeeded and attempt.total_tokens == run.total_tokens


def test_stream_is_relayed_to_the_runs_watchers(celery_worker, simulator):
    simulator.config.tokens_per_second = 60
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    run = ChatRun.objects.create(  # not handed to the worker yet: watch first
        team=team,
        backend=backend,
        model="sim-small",
        messages=HELLO,
        parameters={"max_tokens": 10},
    )

    async def collect():
        events = await follow(run.pk)
        execute_run.delay(run.pk)
        deltas = []
        async for event in events:
            if event.kind == "text":
                deltas.append(delta_message(run.pk, event))
            elif event.kind == "done":
                return deltas, event.final

    deltas, final = run_async(collect())
    assert len(deltas) > 1, "tokens arrive in several messages, not one at the end"
    assert [d["offset"] for d in deltas] == [
        sum(len(d["delta"]) for d in deltas[:i]) for i in range(len(deltas))
    ]
    assert "".join(d["delta"] for d in deltas) == final["output"] == wait_finished(run.pk).output
    assert final["status"] == "succeeded"
    assert final["finish_reason"] == "length"
    assert final["usage"]["completion_tokens"] == 10
    assert final["usage"]["estimated"] is False


def test_429_is_retried_after_retry_after_then_succeeds(celery_worker, simulator):
    simulator.inject("429:0.3", model="sim-small")
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    run = wait_finished(create(team, admin, backend).pk)
    assert run.status == RunStatus.SUCCEEDED
    first, second = run.attempts.order_by("number")
    assert (first.succeeded, first.http_status) == (False, 429)
    assert second.succeeded
    assert (second.started_at - first.finished_at).total_seconds() >= 0.3
    assert simulator.stats()["total"] == 2


def test_5xx_retries_exhausted_then_fallback_serves(celery_worker, simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator, max_retries=2)
    simulator.inject("500", "503", "500", model="sim-small")
    run = wait_finished(
        create(team, admin, backend, fallbacks=[{"backend": backend.pk, "model": "sim-large"}]).pk
    )
    assert run.status == RunStatus.SUCCEEDED
    assert (run.served_backend_id, run.served_model) == (backend.pk, "sim-large")
    attempts = list(
        run.attempts.order_by("number").values_list("model", "succeeded", "http_status")
    )
    assert attempts == [
        ("sim-small", False, 500),
        ("sim-small", False, 503),
        ("sim-small", False, 500),
        ("sim-large", True, None),
    ]


def test_fallbacks_exhausted_means_failed_with_the_last_error(celery_worker, simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator, max_retries=1)
    simulator.inject("500", "500", model="sim-small")
    simulator.inject("503", "503", model="sim-large")
    run = wait_finished(
        create(team, admin, backend, fallbacks=[{"backend": backend.pk, "model": "sim-large"}]).pk
    )
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("All backends failed")
    assert "503" in run.error
    assert run.attempts.count() == 4
    assert simulator.stats()["total"] == 4


def test_client_errors_are_not_retried(celery_worker, simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator, max_retries=3)
    # a list not fetched yet takes any name; the backend's own 404 is final
    Backend.objects.filter(pk=backend.pk).update(model_ids=[])
    backend.refresh_from_db()
    run = wait_finished(create(team, admin, backend, model="no-such-model").pk)
    assert run.status == RunStatus.FAILED
    assert run.error_code == "model_not_found"
    assert "404" in run.error
    assert run.attempts.count() == 1


def test_duplicate_delivery_produces_one_output_and_one_usage_record(celery_worker, simulator):
    simulator.config.tokens_per_second = 40
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    run = create(team, admin, backend)
    execute_run.delay(run.pk)  # a second delivery while the first is running
    run = wait_finished(run.pk)
    execute_run.delay(run.pk)  # and one after it finished
    time.sleep(1)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.deliveries == 1
    assert RunAttempt.objects.filter(run=run).count() == 1
    assert simulator.stats()["total"] == 1


def test_stream_without_usage_is_estimated(celery_worker, simulator):
    simulator.inject("no_usage")
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    run = wait_finished(create(team, admin, backend).pk)
    assert run.status == RunStatus.SUCCEEDED
    assert run.usage_estimated
    assert run.prompt_tokens > 0 and run.completion_tokens > 0
    assert run.attempts.get().usage_estimated


def test_cut_stream_keeps_partial_output_and_its_cost(celery_worker, simulator):
    simulator.config.tokens_per_second = 100
    simulator.inject("cut")
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator, max_retries=3)
    run = wait_finished(create(team, admin, backend).pk)
    full = "".join(textgen.reply_pieces(HELLO))
    assert run.status == RunStatus.FAILED
    assert run.error_code == "stream_interrupted"
    assert run.output and full.startswith(run.output) and run.output != full
    assert run.usage_estimated and run.completion_tokens > 0 and run.prompt_tokens > 0
    assert simulator.stats()["total"] == 1, "no retry once tokens reached the caller"


def test_timeout_is_retried(celery_worker, simulator):
    simulator.inject("timeout:3")
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator, timeout=1)
    run = wait_finished(create(team, admin, backend).pk)
    assert run.status == RunStatus.SUCCEEDED
    first = run.attempts.order_by("number").first()
    assert not first.succeeded and "in time" in first.error


@pytest.mark.parametrize(
    ("fault", "code"),
    [("garbage", "invalid_response"), ("empty", "empty_response"), ("400", "bad_request")],
)
def test_bad_backend_answers_fail_clearly_without_retrying_forever(
    celery_worker, simulator, fault, code
):
    simulator.inject(fault)
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator, max_retries=2)
    run = wait_finished(create(team, admin, backend).pk)
    assert run.status == RunStatus.FAILED
    assert run.error_code == code, run.error
    assert run.error
    assert run.attempts.count() == 1


def test_wrong_credentials_fail_without_retry(celery_worker, simulator):
    simulator.config.api_key = "the-right-key"
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator, api_key="the-wrong-key-1234")
    run = wait_finished(create(team, admin, backend).pk)
    assert run.status == RunStatus.FAILED
    assert run.error_code == "authentication_failed"
    assert "the-wrong-key" not in run.error


def test_unreachable_base_url_fails_after_bounded_retries(celery_worker):
    from apps.inference.models import BackendKind
    from conftest import free_port

    team, admin = team_with_admin()
    backend = services.backend_create(
        team=team,
        actor=admin,
        kind=BackendKind.OPENAI_COMPATIBLE,
        name="Nowhere",
        base_url=f"http://127.0.0.1:{free_port()}/v1",
        models=["m"],
        max_retries=2,
    )
    run = wait_finished(create(team, admin, backend, model="m").pk)
    assert run.status == RunStatus.FAILED
    assert run.error_code == "connection_error"
    assert run.attempts.count() == 3


def test_cancel_stops_the_stream(celery_worker, simulator):
    simulator.config.tokens_per_second = 10
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    run = create(team, admin, backend)
    deadline = time.monotonic() + 20
    while ChatRun.objects.get(pk=run.pk).status != RunStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    services.run_cancel(run=ChatRun.objects.get(pk=run.pk), actor=admin)
    run = wait_finished(run.pk)
    assert run.status == RunStatus.CANCELLED
    full = "".join(textgen.reply_pieces(HELLO))
    assert full.startswith(run.output) and len(run.output) < len(full)
    assert run.attempts.get().completion_tokens < len(textgen.reply_pieces(HELLO))


def test_worker_killed_mid_stream_is_picked_up_again(celery_workers, simulator, settings):
    simulator.config.tokens_per_second = 8
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    first = celery_workers()
    run = create(team, admin, backend)
    deadline = time.monotonic() + 20
    while ChatRun.objects.get(pk=run.pk).status != RunStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1)
    first.kill()
    settings.INFERENCE_STALE_SECONDS = 2
    time.sleep(2.5)  # the dead worker's heartbeat goes stale
    assert services.runs_sweep() == {"requeued": 1, "failed": 0, "cancelled": 0, "resent": 0}
    celery_workers()
    run = wait_finished(run.pk)
    assert run.status == RunStatus.SUCCEEDED
    assert run.deliveries == 2
    assert run.output == "".join(textgen.reply_pieces(HELLO))
    assert RunAttempt.objects.filter(run=run).count() == 1, "the dead worker wrote nothing"


def test_model_list_is_fetched_by_the_worker(celery_worker, simulator):
    from apps.inference.models import Backend, BackendKind

    team, admin = team_with_admin()
    backend = services.backend_create(
        team=team,
        actor=admin,
        kind=BackendKind.OPENAI_COMPATIBLE,
        name="Fetch me",
        base_url=simulator.base_url,
    )
    deadline = time.monotonic() + 20
    while not Backend.objects.get(pk=backend.pk).model_ids:
        assert time.monotonic() < deadline, "the worker never stored the model list"
        time.sleep(0.1)
    backend.refresh_from_db()
    assert backend.model_ids == ["sim-large", "sim-small"]
    assert backend.models_fetched_at is not None


def test_failed_model_fetch_is_reported_not_raised(celery_worker, simulator):
    from django.core.cache import cache

    simulator.config.api_key = "needed"
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator, api_key="wrong-key-0000")
    services.backend_models_refresh_request(backend=backend, actor=admin)
    key = services.models_error_key(backend.pk)
    deadline = time.monotonic() + 20
    while cache.get(key) is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "401" in cache.get(key)
    backend.refresh_from_db()
    assert backend.model_ids == ["sim-large", "sim-small"], "the old list is kept"
