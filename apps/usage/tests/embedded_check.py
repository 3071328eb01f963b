"""Checks ``test_embedded_exactness`` runs inside ``manage.py shell`` on the embedded
default (SQLite, tasks in-process, no beat): reads exact before, during and after
folding, two folders and a writer at once, and warm prices without a query.

Not a test module itself (pytest collects ``test_*.py``): the test process runs on
PostgreSQL, this has to run in a process whose settings chose SQLite.
"""

import json
import threading
from datetime import timedelta
from itertools import cycle

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Count, Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.inference.tests.factories import compatible_backend
from apps.teams.models import Team
from apps.usage import folding, pricing, selectors
from apps.usage.models import DailyRollup, HourlyRollup, UsageRecord
from apps.usage.query import Filters, window_for
from apps.usage.tests.factories import attempt, finish_run, price

DIMS = ("model", "assistant_id", "prompt_version_id", "api_key_id")


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def _ledger(team) -> dict:
    rows = UsageRecord.objects.filter(team=team).values(*DIMS)
    rows = rows.annotate(n=Count("pk"), t=Sum("total_tokens"), c=Sum("cost"))
    return {(r["model"], *(r[d] or 0 for d in DIMS[1:])): (r["n"], r["t"], r["c"]) for r in rows}


def _rollups(model, team) -> dict:
    rows = model.objects.filter(team=team).values(*DIMS)
    rows = rows.annotate(n=Sum("requests"), t=Sum("total_tokens"), c=Sum("cost"))
    return {tuple(r[d] for d in DIMS): (r["n"], r["t"], r["c"]) for r in rows}


def main() -> None:
    _check(connection.vendor == "sqlite", "runs on the embedded default")
    _check(settings.CELERY_TASK_ALWAYS_EAGER, "tasks in-process: no beat folds")
    team = Team.objects.get(memberships__user__email=settings.DEMO_EMAIL)
    admin = team.memberships.get(user__email=settings.DEMO_EMAIL).user
    backend = compatible_backend(team, admin, name="Exactness")
    price("sim-small", inp="1.5", out="2")
    folding.fold()  # whatever the seed and earlier calls left
    models, now = cycle(["sim-small", "sim-large"]), timezone.now()
    for i in range(12):
        at = now - timedelta(hours=7 * i)
        finish_run(team, admin, backend, model=next(models), attempts=[attempt(10 + i, i, at=at)])
    week = window_for(team.zone, "7d")

    def reads():
        return (
            selectors.usage_summary(team, week, Filters()),
            selectors.records_span(team, week, Filters()),
        )

    before = reads()
    ledger = UsageRecord.objects.filter(team=team, occurred_at__gte=week.start_at)
    _check(before[0].totals.requests == ledger.count(), "requests before folding")
    _check(before[0].totals.cost == ledger.aggregate(c=Sum("cost"))["c"].normalize(), "cost")
    _check(before[1][0] == ledger.count(), "the records' count before folding")
    folding.fold(batch_size=5, max_batches=1)
    _check(reads() == before, "reads while half folded")
    folding.fold()
    _check(reads() == before, "reads after folding")
    _check(_rollups(HourlyRollup, team) == _ledger(team) == _rollups(DailyRollup, team), "once")

    # two folders and a writer at once: SQLite's one writer orders them
    errors, folded = [], []

    def writer():
        try:
            for i in range(20):
                finish_run(team, admin, backend, attempts=[attempt(3, i), attempt(1, 1)])
        except Exception as error:
            errors.append(repr(error))
        finally:
            close_old_connections()

    def folder():
        try:
            for _ in range(30):
                folded.append(folding.fold(batch_size=3, max_batches=1))
        except Exception as error:
            errors.append(repr(error))
        finally:
            close_old_connections()

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=folder) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _check(not errors, f"no errors: {errors}")
    folded.append(folding.fold())
    _check(sum(folded) == 40, f"40 new rows folded once, not {sum(folded)}")
    _check(_rollups(HourlyRollup, team) == _ledger(team) == _rollups(DailyRollup, team), "once")

    pricing._cache.flush()
    pricing.price_for(team=team, backend=backend, model="sim-small")
    with CaptureQueriesContext(connection) as queries:
        pricing.price_for(team=team, backend=backend, model="sim-small")
    _check(not queries.captured_queries, "a warm price costs no query")
    print(json.dumps({"ok": True, "requests": before[0].totals.requests}))
