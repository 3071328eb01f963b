"""Runs end to end on a real Celery worker against the simulator, then billed:
streamed, cut and unreported-usage runs, and many runs at once; the rollups are
read after folding the ledger, as beat would."""

import threading
from decimal import Decimal

import pytest
from django.db import close_old_connections
from django.db.models import Count, Sum

from apps.inference.tests.factories import simulator_backend, team_with_admin
from apps.inference.tests.test_worker_runs import create, wait_finished
from apps.usage import folding
from apps.usage.models import DailyRollup, HourlyRollup, UsageRecord
from apps.usage.tests.factories import attempt, finish_run, price

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
IN, OUT = Decimal("2.5"), Decimal("10")


def expected_cost(record) -> Decimal:
    return (record.prompt_tokens * IN + record.completion_tokens * OUT) / 1_000_000


@pytest.fixture
def priced(simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    price("sim-small", inp=str(IN), out=str(OUT))
    return team, admin, backend


def test_a_streamed_run_is_billed_with_reported_tokens(celery_worker, simulator, priced):
    team, admin, backend = priced
    run = wait_finished(create(team, admin, backend, parameters={"max_tokens": 12}).pk)
    assert run.status == "succeeded"
    record = UsageRecord.objects.get(run=run)
    assert not record.usage_estimated and not record.unpriced
    assert (record.prompt_tokens, record.completion_tokens) == (
        run.prompt_tokens,
        run.completion_tokens,
    )
    assert record.completion_tokens == 12
    assert record.cost == expected_cost(record) > 0
    assert record.latency_ms is not None and record.ttft_ms is not None
    folding.fold()
    rollup = DailyRollup.objects.get(team=team)
    assert (rollup.requests, rollup.cost, rollup.estimated) == (1, record.cost, 0)


def test_cached_prompt_tokens_the_backend_reports_are_billed_at_the_cached_price(
    celery_worker, simulator
):
    """OpenAI reports ``usage.prompt_tokens_details.cached_tokens``; those prompt tokens
    cost the cached input price, the rest the input price."""
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    price("sim-small", inp="2.5", out="10", cached="1.25")
    simulator.config.cached_prompt_tokens = 4
    run = wait_finished(create(team, admin, backend, parameters={"max_tokens": 5}).pk)
    assert run.status == "succeeded"
    attempt_row = run.attempts.get()
    assert attempt_row.cached_tokens == 4 and attempt_row.prompt_tokens > 4
    record = UsageRecord.objects.get(run=run)
    assert record.cached_tokens == 4 and not record.usage_estimated
    uncached = record.prompt_tokens - 4
    assert (
        record.cost
        == (uncached * IN + 4 * Decimal("1.25") + record.completion_tokens * OUT) / 1_000_000
    )
    assert record.cost < expected_cost(record)
    folding.fold()
    rollup = DailyRollup.objects.get(team=team)
    assert (rollup.cached_tokens, rollup.cost) == (4, record.cost)

    simulator.config.cached_prompt_tokens = 10_000  # more than the prompt: capped at it
    capped = wait_finished(create(team, admin, backend, parameters={"max_tokens": 5}).pk)
    assert capped.attempts.get().cached_tokens == capped.prompt_tokens


def test_a_cut_stream_is_billed_for_what_was_produced_as_estimated(
    celery_worker, simulator, priced
):
    simulator.config.tokens_per_second = 100
    simulator.inject("cut")
    team, admin, backend = priced
    run = wait_finished(create(team, admin, backend).pk)
    assert run.status == "failed" and run.error_code == "stream_interrupted"
    record = UsageRecord.objects.get(run=run)
    assert record.status == "failed" and record.usage_estimated
    assert record.completion_tokens == run.completion_tokens > 0
    assert record.cost == expected_cost(record) > 0
    folding.fold()
    rollup = HourlyRollup.objects.get(team=team)
    assert (rollup.errors, rollup.estimated, rollup.cost) == (1, 1, record.cost)


def test_a_run_without_reported_usage_is_billed_on_the_estimate(celery_worker, simulator, priced):
    simulator.inject("no_usage")
    team, admin, backend = priced
    run = wait_finished(create(team, admin, backend).pk)
    assert run.status == "succeeded" and run.usage_estimated
    record = UsageRecord.objects.get(run=run)
    assert record.usage_estimated and record.status == "succeeded"
    assert (record.prompt_tokens, record.completion_tokens) == (
        run.prompt_tokens,
        run.completion_tokens,
    )
    assert record.cost == expected_cost(record) > 0


def test_retries_are_each_a_record(celery_worker, simulator, priced):
    simulator.inject("500", model="sim-small")
    team, admin, backend = priced
    run = wait_finished(create(team, admin, backend).pk)
    statuses = list(run.usage_records.order_by("pk").values_list("status", "http_status"))
    assert statuses == [("failed", 500), ("succeeded", None)]
    folding.fold()
    assert DailyRollup.objects.get(team=team).errors == 1


def _assert_rollups_match_records(team):
    records = UsageRecord.objects.filter(team=team).aggregate(
        n=Count("pk"), t=Sum("total_tokens"), c=Sum("cost")
    )
    for model in (HourlyRollup, DailyRollup):
        sums = model.objects.filter(team=team).aggregate(
            n=Sum("requests"), t=Sum("total_tokens"), c=Sum("cost")
        )
        assert sums == records, model.__name__


def test_concurrent_runs_on_the_worker_keep_rollups_equal_to_records(
    celery_worker, simulator, priced
):
    team, admin, backend = priced
    runs = [create(team, admin, backend, parameters={"max_tokens": 5 + i}) for i in range(16)]
    for run in runs:
        assert wait_finished(run.pk, timeout=60).status == "succeeded"
    assert UsageRecord.objects.filter(team=team).count() == 16
    folding.fold()
    _assert_rollups_match_records(team)
    assert DailyRollup.objects.get(team=team).requests == 16


def test_concurrent_writers_and_folders_racing_on_a_new_rollup_row_lose_nothing(simulator):
    """Threads that all bill runs into the same (new) hourly and daily rows at once,
    each folding after every run: folders queue on the watermark and the upsert
    serialises them on the row without losing an increment or deadlocking."""
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    price("sim-small", inp="1", out="1")
    start = threading.Barrier(8)
    errors = []

    def work():
        try:
            start.wait()
            for _ in range(5):
                finish_run(team, admin, backend, attempts=[attempt(3, 4), attempt(1, 1)])
                folding.fold()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    folding.fold()
    assert DailyRollup.objects.get(team=team).requests == 80
    _assert_rollups_match_records(team)
