"""Retention prunes the ledger in batches and keeps the rollups; rows not folded into
them yet stay until they are."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.inference.tests.factories import local_backend, team_with_admin
from apps.usage import folding
from apps.usage.models import DailyRollup, HourlyRollup, UsageRecord
from apps.usage.services import usage_records_purge
from apps.usage.tasks import purge_usage_records
from apps.usage.tests.factories import attempt, finish_run

pytestmark = pytest.mark.django_db


def rollup_totals():
    return [
        model.objects.aggregate(r=Sum("requests"), t=Sum("total_tokens"), c=Sum("cost"))
        for model in (HourlyRollup, DailyRollup)
    ]


def test_old_records_go_in_batches_and_rollups_stay(settings):
    settings.USAGE_RETENTION_DAYS = 30
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    now = timezone.now()
    for days in (400, 200, 45, 31):
        finish_run(team, admin, backend, attempts=[attempt(at=now - timedelta(days=days))] * 2)
    recent = finish_run(team, admin, backend, attempts=[attempt(at=now - timedelta(days=29))])
    assert usage_records_purge(batch_size=3) == 0, "nothing is folded yet"
    folding.fold()
    before = rollup_totals()

    with CaptureQueriesContext(connection) as queries:
        assert usage_records_purge(batch_size=3) == 8
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3, "8 rows in batches of 3"
    assert list(UsageRecord.objects.values_list("run_id", flat=True)) == [recent.pk]
    assert rollup_totals() == before
    assert before[0]["r"] == 9


def test_the_beat_task_uses_the_setting(settings):
    settings.USAGE_RETENTION_DAYS = 400
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    finish_run(team, admin, backend, attempts=[attempt(at=timezone.now() - timedelta(days=401))])
    finish_run(team, admin, backend, attempts=[attempt(at=timezone.now() - timedelta(days=399))])
    folding.fold()
    assert purge_usage_records() == 1
    assert UsageRecord.objects.count() == 1
    assert purge_usage_records() == 0


def test_the_beat_schedule_runs_retention(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "apps.usage.tasks.purge_usage_records" in tasks


def test_the_beat_schedule_folds_the_ledger():
    from portal.celery import app

    tasks = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}
    assert tasks["apps.usage.tasks.fold_usage_rollups"] <= 5
