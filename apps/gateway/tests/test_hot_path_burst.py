"""Issue 13: after a burst through ``/v1``, everything the portal records agrees.

Fifty requests at once from five OS processes (the ``openai`` SDK, ten threads
each) against a live server and a real Celery worker calling the simulator,
with a priced model and a quota counting tokens, cost and requests, and the
outbox relay publishing to Kafka (Tansu). Afterwards every request is one
succeeded run with one attempt, one ledger row and one of each of its events, on
the topic once each; the usage page's figures equal the ledger before and after
the rollups are folded from it; the quota's counters equal the ledger and hold
no reservation. This is the bookkeeping the hot path batches and defers
(events handed over in batches, settlement after the reply, rollups folded
later), checked where it must end up exact.
"""

import json
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.db.models import Count, Sum
from kafka import KafkaConsumer

from apps.events.models import OutboxEvent
from apps.events.tests.helpers import start_relay, use_fresh_topic
from apps.inference.models import ChatRun, RunAttempt, RunStatus
from apps.inference.tests.factories import simulator_backend, team_with_admin
from apps.keys.tests.factories import make_key
from apps.quotas import periods, reconcile, store
from apps.quotas.tests.factories import make_quota
from apps.quotas.tests.test_concurrency import PROCESSES, THREADS, burst, wait_finished
from apps.usage import folding
from apps.usage.models import DailyRollup, HourlyRollup, Price, UsageRecord
from apps.usage.query import Filters, window_for
from apps.usage.selectors import usage_summary

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
REQUESTS = PROCESSES * THREADS


def _rollup_sums(rows) -> dict:
    return rows.aggregate(requests=Sum("requests"), tokens=Sum("total_tokens"), cost=Sum("cost"))


def _published(team) -> None:
    """Wait until the relay has put every event of the team on the topic."""
    deadline = time.monotonic() + 30
    rows = OutboxEvent.objects.filter(team_id=team.pk)
    while rows.filter(published_at=None).exists() or rows.count() < 3 * REQUESTS:
        assert time.monotonic() < deadline, "events left unpublished"
        time.sleep(0.1)


def _on_topic(topic: str, bootstrap: str) -> list[dict]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    try:
        return [json.loads(message.value) for message in consumer]
    finally:
        consumer.close()


def test_a_burst_leaves_runs_ledger_rollups_events_and_quota_equal(
    simulator, asgi_live_server, celery_workers, settings, kafka_bootstrap
):
    topic = use_fresh_topic(settings, kafka_bootstrap)
    celery_workers(concurrency=24)
    relay = start_relay()
    simulator.config.latency_ms = 200  # the burst overlaps in the worker
    team, admin = team_with_admin()
    simulator_backend(team, admin, simulator)
    Price.objects.create(model="sim-small", input_per_million=3, output_per_million=7)
    make_quota(
        team,
        admin,
        token_budget=10**9,
        cost_budget=Decimal(1000),
        requests_per_minute=10_000,
    )
    _key, raw = make_key(team, admin, scopes=["chat"])

    results = burst(asgi_live_server, raw)
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]]

    runs = wait_finished(team)
    assert len(runs) == REQUESTS
    assert {run.status for run in runs} == {RunStatus.SUCCEEDED}
    per_run = RunAttempt.objects.filter(run__team=team).values("run").annotate(n=Count("id"))
    assert sorted(row["n"] for row in per_run) == [1] * REQUESTS
    ledger = UsageRecord.objects.filter(team=team)
    assert sorted(ledger.values_list("run_id", flat=True)) == sorted(run.pk for run in runs)
    totals = ledger.aggregate(tokens=Sum("total_tokens"), cost=Sum("cost"))
    assert totals["tokens"] == sum(run.total_tokens for run in runs) > 0
    assert totals["cost"] > 0

    # the run's own events: one of each per run, each on the topic once
    _published(team)
    relay.halt()
    assert relay.error is None
    subjects = {f"run/{run.pk}" for run in runs}
    stored = OutboxEvent.objects.filter(team_id=team.pk, subject__in=subjects)
    seen = Counter(stored.values_list("type", "subject"))
    for type_ in ("run.queued", "run.started", "run.succeeded"):
        assert {subject for kind, subject in seen if kind == type_} == subjects, type_
    assert set(seen.values()) == {1}
    on_topic = [e for e in _on_topic(topic, kafka_bootstrap) if e.get("subject") in subjects]
    assert sorted(e["id"] for e in on_topic) == sorted(
        str(i) for i in stored.values_list("event_id", flat=True)
    )

    # the usage page reads the ledger, then the rollups folded from it: the same figures
    month = window_for(team.zone, "30d")
    before = usage_summary(team, month, Filters()).totals
    assert (before.requests, before.total_tokens) == (REQUESTS, totals["tokens"])
    assert before.cost == totals["cost"].normalize()
    folding.fold()
    for rollup in (HourlyRollup, DailyRollup):
        sums = _rollup_sums(rollup.objects.filter(team=team))
        assert sums == {"requests": REQUESTS, **totals}, rollup.__name__
    after = usage_summary(team, month, Filters()).totals
    assert (after.requests, after.total_tokens, after.cost) == (
        before.requests,
        before.total_tokens,
        before.cost,
    )

    # the quota counted exactly what the ledger billed and holds nothing back
    scope = f"t{team.pk}"
    window = periods.window("month", team.zone)
    counted = store.budget(scope, window.id)
    expected = (totals["tokens"], store.to_micros(totals["cost"]), 0, 0)
    assert (counted.tokens, counted.cost, counted.reserved_tokens, counted.reserved_cost) == (
        expected
    )
    assert store.minute(scope, int(time.time() * 1000))[0] == REQUESTS
    assert store.live_reservations(int(time.time() * 1000) + 1) == []
    reconcile.reconcile_all()  # PostgreSQL's account of the period agrees
    assert store.budget(scope, window.id) == counted
    assert ChatRun.objects.filter(team=team).count() == REQUESTS
