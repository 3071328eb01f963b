"""Rollups folded from the ledger: every row exactly once, and reads exact to the
ledger whether it has been folded or not.

The concurrency tests commit for real (two folders, writers, a transaction that
commits after a later one) on PostgreSQL; the embedded SQLite path is in
``test_embedded_exactness``.
"""

import threading
import time
from datetime import timedelta
from decimal import Decimal
from itertools import cycle

import pytest
from django.db import close_old_connections, connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from apps.inference.tests.factories import compatible_backend, team_with_admin
from apps.keys.tests.factories import make_key
from apps.usage import export, folding, selectors
from apps.usage.models import CurrentTransactionId, DailyRollup, HourlyRollup, UsageRecord
from apps.usage.query import Filters, window_for
from apps.usage.tests.factories import attempt, finish_run, price

DIMS = ("model", "assistant_id", "prompt_version_id", "api_key_id")


def ledger_groups(team) -> dict:
    rows = (
        UsageRecord.objects.filter(team=team)
        .values(*DIMS)
        .annotate(n=Count("pk"), t=Sum("total_tokens"), c=Sum("cost"), lat=Sum("latency_ms"))
    )
    return {
        (r["model"], *(r[d] or 0 for d in DIMS[1:])): (r["n"], r["t"], r["c"], r["lat"] or 0)
        for r in rows
    }


def rollup_groups(model, team) -> dict:
    rows = (
        model.objects.filter(team=team)
        .values(*DIMS)
        .annotate(
            n=Sum("requests"), t=Sum("total_tokens"), c=Sum("cost"), lat=Sum("latency_sum_ms")
        )
    )
    return {tuple(r[d] for d in DIMS): (r["n"], r["t"], r["c"], r["lat"]) for r in rows}


def assert_folded_once(team) -> None:
    """What exactly-once means: the rollups hold each ledger row's numbers once."""
    expected = ledger_groups(team)
    assert rollup_groups(HourlyRollup, team) == expected
    assert rollup_groups(DailyRollup, team) == expected


def raw_record(team, *, model="sim-small", tokens=3, key=None, at=None) -> UsageRecord:
    """A ledger row as the worker writes it, without a run (folding reads only these
    columns); cost differs per model so top lists never tie."""
    return UsageRecord(
        team=team,
        api_key=key,
        model=model,
        status="succeeded" if tokens % 5 else "failed",
        prompt_tokens=tokens,
        completion_tokens=tokens,
        total_tokens=2 * tokens,
        cost=Decimal(tokens) / (7 if model == "sim-small" else 3),
        latency_ms=40 * tokens,
        occurred_at=at or timezone.now(),
        txid=CurrentTransactionId(),
    )


def exported(team, window, granularity) -> dict:
    fetch = export.aggregates_fetch(team, window, Filters(), granularity)
    lines, after = fetch(None)
    while after is not None:
        more, after = fetch(after)
        lines += more
    buckets = [line[0] for line in lines]
    assert buckets == sorted(buckets), "whole buckets, in order"
    by_key = {tuple(line[:5]): line[5:] for line in lines}
    assert len(by_key) == len(lines), "each combination once"
    return by_key


@pytest.mark.django_db
def test_reads_are_exact_before_during_and_after_folding_a_burst(monkeypatch):
    monkeypatch.setattr(export, "BATCH_SIZE", 3)  # several batches even for a short export
    team, admin = team_with_admin()
    backend = compatible_backend(team, admin)
    key, _raw = make_key(team, admin, scopes=["chat"])
    price("sim-small", inp="1.5", out="2")
    price("sim-large", inp="3", out="11")
    now = timezone.now()
    models = cycle(["sim-small", "sim-large", "no-price"])
    for i in range(24):
        finish_run(
            team,
            admin,
            backend,
            model=next(models),
            api_key=key if i % 4 == 0 else None,
            attempts=[
                attempt(10 + i, 3 * i, succeeded=bool(i % 7), latency_ms=35 * i,
                        at=now - timedelta(hours=5 * i)),
            ],
        )  # fmt: skip
    week, today = window_for(team.zone, "7d"), window_for(team.zone, "today")
    span_filters = Filters(api_key_id=key.pk)

    def everything():
        return (
            selectors.usage_summary(team, week, Filters()),
            selectors.usage_summary(team, today, Filters()),
            selectors.records_span(team, week, span_filters),
            selectors.unpriced_models_recently(team),
            exported(team, week, "day"),
            exported(team, today, "hour"),
        )

    unfolded = everything()
    summary = unfolded[0]
    ledger = UsageRecord.objects.filter(team=team, occurred_at__gte=week.start_at)
    assert summary.totals.requests == ledger.count() == 24  # five days of it
    assert summary.totals.total_tokens == ledger.aggregate(t=Sum("total_tokens"))["t"]
    assert summary.totals.cost == ledger.aggregate(c=Sum("cost"))["c"].normalize()
    assert summary.totals.errors == ledger.filter(status="failed").count()
    assert sum(p.totals.requests for p in summary.series) == summary.totals.requests
    assert summary.unpriced_models == ["no-price"]
    assert unfolded[2][0] == ledger.filter(api_key=key).count()

    assert not HourlyRollup.objects.filter(team=team).exists(), "nothing folded yet"
    folding.fold(batch_size=5, max_batches=2)  # part of the ledger folded, the rest a tail
    assert HourlyRollup.objects.filter(team=team).count() > 0
    assert everything() == unfolded
    folding.fold()
    assert_folded_once(team)
    assert everything() == unfolded


@pytest.mark.django_db
def test_a_fold_landing_between_a_reads_queries_counts_nothing_twice(monkeypatch):
    """The read takes the tail, then a fold commits, then the read takes the rollups
    (which now hold the same rows): the watermark's fold count changed, so it reads
    again instead of answering twice the usage."""
    team, admin = team_with_admin()
    backend = compatible_backend(team, admin)
    for i in range(5):
        finish_run(team, admin, backend, attempts=[attempt(10, i)])
    real_tail, folds = folding.tail, []

    def tail_then_fold(*args, **kwargs):
        rows = real_tail(*args, **kwargs)
        if not folds:
            folds.append(folding.fold())
        return rows

    monkeypatch.setattr(folding, "tail", tail_then_fold)
    totals = selectors.usage_summary(team, window_for(team.zone, "today"), Filters()).totals
    assert folds == [5]
    assert (totals.requests, totals.total_tokens) == (5, 50 + sum(range(5)))


@pytest.mark.django_db(transaction=True)
def test_a_row_committed_after_a_later_one_is_folded_once():
    """A worker's transaction inserts first (lower id and txid) and commits last. A
    watermark on ids would fold the later row, move past the open one's row while it
    was invisible and never fold it; the transaction horizon waits for it (rows
    above it wait in the tail, which reads count)."""
    team, _admin = team_with_admin()
    inserted, release = threading.Event(), threading.Event()
    slow = []

    def slow_writer():
        try:
            with transaction.atomic():
                (row,) = UsageRecord.objects.bulk_create([raw_record(team, tokens=11)])
                slow.append(UsageRecord.objects.get(pk=row.pk))  # with its txid
                inserted.set()
                release.wait(30)
        finally:
            close_old_connections()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        assert inserted.wait(30)
        later = UsageRecord.objects.bulk_create([raw_record(team, tokens=4)])[0]
        later.refresh_from_db()
        assert slow[0].id < later.id and slow[0].txid < later.txid
        assert folding.fold() == 0  # the open transaction holds the horizon
        assert folding.read_mark().position <= slow[0].txid
        totals = selectors.usage_summary(team, window_for(team.zone, "today"), Filters()).totals
        assert totals.requests == 1 and totals.total_tokens == 8
    finally:
        release.set()
        writer.join()
    totals = selectors.usage_summary(team, window_for(team.zone, "today"), Filters()).totals
    assert totals.requests == 2 and totals.total_tokens == 30, "the late row is in the tail"
    assert folding.fold() == 2
    assert folding.fold() == 0
    assert_folded_once(team)


def wait_for_lock_waiter(deadline_seconds: float = 30) -> None:
    """Until another session of this database waits on a row lock (the second
    folder on the watermark); a deadline only so a broken test can't hang."""
    deadline = time.monotonic() + deadline_seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    pytest.fail("the second folder never waited for the first")


@pytest.mark.django_db(transaction=True)
def test_a_second_folder_waits_for_the_first_and_folds_only_what_is_left(monkeypatch):
    team, _admin = team_with_admin()
    UsageRecord.objects.bulk_create([raw_record(team, tokens=t) for t in range(1, 31)])
    first_locked, go_on = threading.Event(), threading.Event()
    real_horizon, results, errors = folding.horizon, {}, []

    def held_horizon():
        if threading.current_thread().name == "first":
            first_locked.set()  # the watermark row is locked by now
            go_on.wait(30)
        return real_horizon()

    monkeypatch.setattr(folding, "horizon", held_horizon)

    def folder():
        try:
            results[threading.current_thread().name] = folding.fold(batch_size=100)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            close_old_connections()

    first = threading.Thread(target=folder, name="first")
    second = threading.Thread(target=folder, name="second")
    first.start()
    assert first_locked.wait(30)
    second.start()
    wait_for_lock_waiter()
    go_on.set()
    first.join()
    second.join()
    assert not errors
    assert results == {"first": 30, "second": 0}
    assert_folded_once(team)


@pytest.mark.django_db(transaction=True)
def test_two_folders_and_writers_at_once_fold_every_row_exactly_once():
    team, admin = team_with_admin()
    other, _ = team_with_admin()
    key, _raw = make_key(team, admin, scopes=["chat"])
    start = threading.Barrier(5)
    writing = threading.Event()
    writing.set()
    errors, folded = [], []

    def writer(seed: int):
        try:
            start.wait()
            for i in range(30):
                rows = [
                    raw_record(
                        team if (seed + i) % 3 else other,
                        model="sim-small" if i % 2 else "sim-large",
                        tokens=1 + (seed * 31 + i + j) % 40,
                        key=key if (i + j) % 4 == 0 and (seed + i) % 3 else None,
                        at=timezone.now() - timedelta(minutes=37 * ((seed + i) % 50)),
                    )
                    for j in range(1 + i % 3)
                ]
                UsageRecord.objects.bulk_create(rows)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            close_old_connections()

    def folder():
        try:
            start.wait()
            while writing.is_set():
                folded.append(folding.fold(batch_size=7, max_batches=1))
            while count := folding.fold(batch_size=7, max_batches=1):
                folded.append(count)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            close_old_connections()

    writers = [threading.Thread(target=writer, args=(seed,)) for seed in range(3)]
    folders = [threading.Thread(target=folder) for _ in range(2)]
    for thread in writers + folders:
        thread.start()
    for thread in writers:
        thread.join()
    writing.clear()
    for thread in folders:
        thread.join()
    assert not errors
    assert sum(folded) == UsageRecord.objects.count() == 3 * sum(1 + i % 3 for i in range(30))
    assert folding.fold() == 0
    assert_folded_once(team)
    assert_folded_once(other)
    totals = selectors.usage_summary(team, window_for(team.zone, "7d"), Filters()).totals
    records = UsageRecord.objects.filter(team=team)
    assert totals.requests == records.count()
    assert totals.cost == records.aggregate(c=Sum("cost"))["c"].normalize()


@pytest.mark.django_db(transaction=True)
def test_a_row_an_older_worker_writes_during_an_upgrade_is_not_folded_again():
    """Workers of the release before folding upsert their rollups themselves and write
    no txid; the fold must leave their rows alone, or an upgrade counts them twice."""
    team, _admin = team_with_admin()
    UsageRecord.objects.bulk_create([raw_record(team, tokens=4)])
    old = raw_record(team, tokens=6)
    old.txid = None  # as the previous release inserts it
    UsageRecord.objects.bulk_create([old])
    folding.fold()
    assert HourlyRollup.objects.filter(team=team).aggregate(t=Sum("total_tokens"))["t"] == 8
    assert not UsageRecord.objects.filter(txid__isnull=True).filter(folding.unfolded(0)).exists()
