"""Prices from the per-process cache: no query when warm, and a change seen by the
next record here at once and in every other process within ``CHECK_SECONDS``.

Real commits (``transaction=True``): invalidation happens on commit. Another
process is simulated by what it leaves behind: a price row this process's signals
never saw (``bulk_create``) and a bumped version in the shared cache. Time is a
fake clock moved forward, never slept on.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.inference.models import ChatRun, RunAttempt, RunStatus
from apps.inference.tests.factories import compatible_backend, local_backend, team_with_admin
from apps.usage import ledger, pricing, services
from apps.usage.models import Price
from apps.usage.tests.factories import HELLO, finish_run, price

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """A clock only the test moves; the cache starts cold and compares versions on
    its first lookup."""
    now = [1000.0]
    monkeypatch.setattr(pricing, "_clock", lambda: now[0])
    pricing._cache.flush()
    pricing._cache.expire_check()
    return now


@pytest.fixture
def priced():
    team, admin = team_with_admin()
    backend = compatible_backend(team, admin)
    old = price("sim-small", inp="1", out="2")
    return team, admin, backend, old


def lookup(team, backend, model="sim-small"):
    return pricing.price_for(team=team, backend=backend, model=model)


def elsewhere(model="sim-small", inp="7", *, at=None, team=None, backend=None) -> Price:
    """A price saved by another process: in the database, unseen by this one's signals."""
    (row,) = Price.objects.bulk_create(
        [
            Price(
                team=team,
                backend=backend,
                model=model,
                input_per_million=Decimal(inp),
                output_per_million=Decimal(inp),
                effective_from=at or timezone.now() - timedelta(minutes=1),
            )
        ]
    )
    return row


def test_a_warm_price_costs_no_query(priced, clock, django_assert_num_queries):
    team, _admin, backend, old = priced
    with django_assert_num_queries(1):
        assert lookup(team, backend) == old
    with django_assert_num_queries(0):
        for _ in range(50):
            assert lookup(team, backend) == old
        cost, priced_ = pricing.cost_of(  # the quota estimate's path
            team=team, backend=backend, model="sim-small", prompt_tokens=10**6, completion_tokens=0
        )
        assert (cost, priced_) == (Decimal(1), True)
        clock[0] += pricing.CHECK_SECONDS  # the version check is a cache GET, not SQL
        assert lookup(team, backend) == old


def unbilled_run(team, admin, backend, count=2):
    """A run with saved attempts, as the worker has them when it writes the end."""
    run = ChatRun.objects.create(
        team=team, created_by=admin, backend=backend, model="sim-small", messages=HELLO,
        status=RunStatus.SUCCEEDED, started_at=timezone.now(), finished_at=timezone.now(),
    )  # fmt: skip
    now = timezone.now()
    attempts = RunAttempt.objects.bulk_create(
        RunAttempt(
            run=run, number=n, backend=backend, model="sim-small", succeeded=n == count,
            prompt_tokens=1000, completion_tokens=500, total_tokens=1500, latency_ms=100,
            started_at=now, finished_at=now,
        )
        for n in range(1, count + 1)
    )  # fmt: skip
    return run, attempts


def test_the_ledger_part_of_the_final_write_is_one_insert(priced):
    """Before: a price query per attempt, the insert, an hourly and a daily upsert
    (5 statements for two attempts). Now: the insert."""
    team, admin, backend, _old = priced
    finish_run(team, admin, backend)  # a worker that has billed this model before
    run, attempts = unbilled_run(team, admin, backend)
    with CaptureQueriesContext(connection) as queries, transaction.atomic():  # write_final's
        records = ledger.record(run, attempts)
    statements = [q["sql"] for q in queries.captured_queries[1:-1]]  # inside BEGIN, COMMIT
    assert len(statements) == 1 and statements[0].startswith('INSERT INTO "usage_usagerecord"')
    assert [r.cost for r in records] == [Decimal("0.002")] * 2 and all(r.pk for r in records)


def test_a_price_saved_through_the_service_applies_to_the_next_record(priced):
    team, admin, backend, old = priced
    assert finish_run(team, admin, backend).usage_records.get().price == old
    version = cache.get(pricing.VERSION_KEY)
    override = services.price_override_create(
        team=team, actor=admin, backend=backend, model="sim-small",
        input_per_million="5", output_per_million="5",
    )  # fmt: skip
    assert cache.get(pricing.VERSION_KEY) != version, "bumped on commit for other processes"
    assert finish_run(team, admin, backend).usage_records.get().price == override


def test_a_price_saved_in_the_admin_applies_to_the_next_record(priced, client):
    team, admin, backend, old = priced
    assert lookup(team, backend) == old
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    yesterday = timezone.now() - timedelta(days=1)
    added = client.post(
        reverse("admin:usage_price_add"),
        {"model": "sim-small", "input_per_million": "9", "output_per_million": "9",
         "effective_from_0": yesterday.date().isoformat(), "effective_from_1": "00:00:00"},
    )  # fmt: skip
    assert added.status_code == 302
    new = Price.objects.get(model="sim-small", input_per_million=9)
    assert lookup(team, backend) == new
    assert finish_run(team, admin, backend).usage_records.get().price == new
    client.post(reverse("admin:usage_price_delete", args=[new.pk]), {"post": "yes"})
    assert lookup(team, backend) == old, "a deleted price is gone from the cache too"


def test_another_processs_change_arrives_through_the_version(priced, clock):
    team, _admin, backend, old = priced
    assert lookup(team, backend) == old
    new = elsewhere()
    assert lookup(team, backend) == old, "this process kept what it read"
    cache.set(pricing.VERSION_KEY, "bumped by the other process's commit")
    assert lookup(team, backend) == old, "compared at most every CHECK_SECONDS"
    clock[0] += pricing.CHECK_SECONDS
    assert lookup(team, backend) == new


def test_without_a_bump_only_clearing_the_local_cache_shows_a_change(priced, clock):
    """The version is what carries a change between processes: a row written where no
    bump followed stays unseen (until MAX_AGE_SECONDS) however often the version is
    compared; clearing this process's cache alone shows it."""
    team, _admin, backend, old = priced
    assert lookup(team, backend) == old
    new = elsewhere()
    for _ in range(3):
        clock[0] += pricing.CHECK_SECONDS
        assert lookup(team, backend) == old
    pricing._cache.flush()
    assert lookup(team, backend) == new
    newer = elsewhere(inp="8", at=timezone.now())
    clock[0] += pricing.MAX_AGE_SECONDS + 1
    assert lookup(team, backend) == newer, "a lost bump can't keep a price forever"


def test_an_uncommitted_price_is_used_in_its_transaction_and_never_kept(
    priced, django_assert_num_queries
):
    team, _admin, backend, old = priced
    assert lookup(team, backend) == old
    version = cache.get(pricing.VERSION_KEY)

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        new = price("sim-small", inp="4", out="4", at=timezone.now() - timedelta(minutes=1))
        assert lookup(team, backend) == new
        assert cache.get(pricing.VERSION_KEY) == version, "other processes hear on commit"
        raise Undo
    with django_assert_num_queries(1):
        assert lookup(team, backend) == old
    with django_assert_num_queries(0):
        assert lookup(team, backend) == old
    assert cache.get(pricing.VERSION_KEY) == version


def test_one_cached_list_serves_past_attempts_and_a_price_scheduled_for_later(
    priced, django_assert_num_queries
):
    team, _admin, backend, old = priced
    later = price("sim-small", inp="3", out="3", at=timezone.now() + timedelta(hours=1))
    assert lookup(team, backend) == old
    with django_assert_num_queries(0):
        at = timezone.now() + timedelta(hours=2)
        assert pricing.price_for(team=team, backend=backend, model="sim-small", at=at) == later
        long_ago = timezone.now() - timedelta(days=3651)
        assert pricing.price_for(team=team, backend=backend, model="sim-small", at=long_ago) is None


def test_cached_prices_keep_the_rules(priced, django_assert_num_queries):
    """Team over global, only for the team's own backend; the local backend never
    takes a global price; cached input at its own price."""
    team, admin, backend, old = priced
    local = local_backend(team, admin)
    price("local-echo", inp="2.5", out="10")
    own = price("sim-small", inp="3", out="3", team=team, backend=backend)
    other, _ = team_with_admin()
    price("gpt-x", inp="2", out="8", cached="0.5")
    keys = [(team, backend, "sim-small"), (other, backend, "sim-small"),
            (team, local, "local-echo"), (team, backend, "gpt-x")]  # fmt: skip
    for key in keys:
        lookup(*key)
    with django_assert_num_queries(0):
        assert lookup(team, backend) == own
        assert lookup(other, backend) == old
        assert lookup(team, local, "local-echo") is None
        cost, _ = pricing.cost_of(
            team=team, backend=backend, model="gpt-x", prompt_tokens=1_000_000,
            completion_tokens=0, cached_tokens=400_000,
        )  # fmt: skip
        assert cost == Decimal("1.2") + Decimal("0.2")


def test_an_unreachable_cache_falls_back_to_the_database(priced, clock, monkeypatch):
    team, _admin, backend, old = priced
    assert lookup(team, backend) == old

    class Down:
        def get(self, key):
            raise ConnectionError("redis is restarting")

        def set(self, *args, **kwargs):
            raise ConnectionError("redis is restarting")

    monkeypatch.setattr(pricing, "cache", Down())
    new = elsewhere()
    clock[0] += pricing.CHECK_SECONDS
    assert lookup(team, backend) == new, "nothing kept is trusted while the version is unknown"
    newest = price("sim-small", inp="6", out="6", at=timezone.now())  # its bump fails: logged
    assert lookup(team, backend) == newest
