"""Billing through the real hook in ``write_final``: cost, flags, and the rollups the
ledger folds into."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from apps.inference.models import RunAttempt, RunStatus
from apps.inference.tests.factories import compatible_backend, local_backend, team_with_admin
from apps.usage import folding, ledger, pricing
from apps.usage.models import LATENCY_FIELDS, DailyRollup, HourlyRollup, UsageRecord
from apps.usage.tests.factories import attempt, finish_run, price

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    team, admin = team_with_admin()
    return team, admin, compatible_backend(team, admin)


def test_a_priced_attempt_is_billed_exactly(setup):
    team, admin, backend = setup
    price("sim-small", inp="1.5", out="6.000001")
    run = finish_run(team, admin, backend, attempts=[attempt(1000, 333)])
    record = UsageRecord.objects.get(run=run)
    assert record.cost == Decimal("0.0015") + Decimal("333") * Decimal("6.000001") / 10**6
    assert not record.unpriced and not record.usage_estimated
    assert (record.prompt_tokens, record.completion_tokens, record.total_tokens) == (
        1000,
        333,
        1333,
    )
    assert record.cached_tokens is None
    assert record.status == "succeeded"
    assert (record.user_id, record.api_key_id, record.backend_id) == (admin.pk, None, backend.pk)


def test_an_unpriced_model_costs_zero_and_says_so(setup):
    team, admin, backend = setup
    run = finish_run(team, admin, backend, model="no-price-model")
    record = UsageRecord.objects.get(run=run)
    assert record.cost == 0 and record.unpriced and record.price is None
    folding.fold()
    assert HourlyRollup.objects.get(team=team).unpriced == 1


def test_every_attempt_is_a_record_and_only_failures_count_as_errors(setup):
    team, admin, backend = setup
    price("sim-small", inp="1", out="1")
    run = finish_run(
        team,
        admin,
        backend,
        attempts=[
            attempt(0, 0, succeeded=False, http_status=500),
            attempt(10, 5, succeeded=False, http_status=503),
            attempt(10, 20),
        ],
    )
    assert list(run.usage_records.order_by("pk").values_list("status", flat=True)) == [
        "failed",
        "failed",
        "succeeded",
    ]
    folding.fold()
    rollup = DailyRollup.objects.get(team=team)
    assert (rollup.requests, rollup.errors, rollup.total_tokens) == (3, 2, 45)
    assert rollup.cost == Decimal(45) / 10**6


def test_a_cancelled_run_bills_what_was_produced(setup):
    team, admin, backend = setup
    run = finish_run(
        team,
        admin,
        backend,
        status=RunStatus.CANCELLED,
        attempts=[attempt(10, 3, succeeded=False, estimated=True)],
    )
    record = run.usage_records.get()
    assert record.status == "cancelled" and record.usage_estimated
    folding.fold()
    assert DailyRollup.objects.get(team=team).errors == 0


def test_a_run_cancelled_while_queued_bills_nothing(setup):
    team, admin, backend = setup
    finish_run(team, admin, backend, status=RunStatus.CANCELLED, attempts=[])
    folding.fold()
    assert not UsageRecord.objects.exists()
    assert not HourlyRollup.objects.exists()


def test_an_attempt_is_billed_once_even_if_recorded_twice(setup):
    team, admin, backend = setup
    run = finish_run(team, admin, backend)
    attempts = list(RunAttempt.objects.filter(run=run))
    with pytest.raises(IntegrityError), transaction.atomic():
        ledger.record(run, attempts)
    assert UsageRecord.objects.count() == 1
    folding.fold()
    assert DailyRollup.objects.get().requests == 1


def test_a_price_change_leaves_past_cost_unchanged(setup):
    team, admin, backend = setup
    old = price("sim-small", inp="1", out="1")
    first = finish_run(team, admin, backend, attempts=[attempt(100, 100)])
    price("sim-small", inp="10", out="10", at=timezone.now())
    second = finish_run(team, admin, backend, attempts=[attempt(100, 100)])

    assert first.usage_records.get().cost == Decimal("0.0002")
    assert first.usage_records.get().price == old
    assert second.usage_records.get().cost == Decimal("0.002")
    folding.fold()
    assert DailyRollup.objects.get(team=team).cost == Decimal("0.0022")
    assert (
        pricing.price_for(team=team, backend=backend, model="sim-small", at=first.finished_at)
        == old
    )


def test_team_override_beats_the_global_price_and_only_for_its_backend(setup):
    team, admin, backend = setup
    other = compatible_backend(team, admin, name="Other")
    price("sim-small", inp="1", out="1")
    price("sim-small", inp="3", out="3", team=team, backend=backend)
    cost, priced = pricing.cost_of(
        team=team, backend=backend, model="sim-small", prompt_tokens=10**6, completion_tokens=0
    )
    assert (cost, priced) == (Decimal(3), True)
    cost, _ = pricing.cost_of(
        team=team, backend=other, model="sim-small", prompt_tokens=10**6, completion_tokens=0
    )
    assert cost == Decimal(1)
    stranger, _ = team_with_admin()
    cost, _ = pricing.cost_of(
        team=stranger, backend=backend, model="sim-small", prompt_tokens=10**6, completion_tokens=0
    )
    assert cost == Decimal(1), "another team never gets this team's override"


def test_an_old_override_still_beats_a_newer_global_price(setup):
    team, _admin, backend = setup
    price("m", inp="3", out="3", team=team, backend=backend, at=timezone.now() - timedelta(days=9))
    price("m", inp="1", out="1", at=timezone.now() - timedelta(days=1))
    assert pricing.price_for(team=team, backend=backend, model="m").input_per_million == 3


def test_cached_tokens_use_the_cached_price_where_there_is_one(setup):
    team, _admin, backend = setup
    price("gpt-x", inp="2", out="8", cached="0.5")
    cost, priced = pricing.cost_of(
        team=team,
        backend=backend,
        model="gpt-x",
        prompt_tokens=1_000_000,
        completion_tokens=1_000_000,
        cached_tokens=400_000,
    )
    assert priced and cost == Decimal("1.2") + Decimal("0.2") + Decimal(8)


def test_no_price_yet_at_that_time_is_unpriced(setup):
    team, _admin, backend = setup
    price("later", at=timezone.now() + timedelta(days=1))
    assert pricing.cost_of(
        team=team, backend=backend, model="later", prompt_tokens=5, completion_tokens=5
    ) == (Decimal(0), False)


def test_seeded_openai_prices_exist():
    assert pricing.price_for(team=None, backend=None, model="gpt-4o-mini").output_per_million == (
        Decimal("0.6")
    )


def test_rollups_equal_the_sums_of_records_per_bucket(setup):
    team, admin, backend = setup
    price("sim-small", inp="0.3", out="0.7")
    base = datetime(2026, 3, 10, 22, 30, tzinfo=UTC)
    for i in range(12):
        finish_run(
            team,
            admin,
            backend,
            model="sim-small" if i % 3 else "sim-large",
            attempts=[
                attempt(10 + i, 5 * i, latency_ms=40 * i, at=base + timedelta(minutes=29 * i))
            ],
        )
    assert folding.fold() == 12
    for model in (HourlyRollup, DailyRollup):
        for row in model.objects.all():
            assert row.requests == sum(getattr(row, f) for f in LATENCY_FIELDS)
        totals = model.objects.aggregate(
            r=Sum("requests"), t=Sum("total_tokens"), c=Sum("cost"), lat=Sum("latency_sum_ms")
        )
        records = UsageRecord.objects.aggregate(
            t=Sum("total_tokens"), c=Sum("cost"), lat=Sum("latency_ms")
        )
        assert totals == {"r": 12, **records}
    hours = {
        (r.model, r.occurred_at.replace(minute=0, second=0, microsecond=0))
        for r in UsageRecord.objects.all()
    }
    assert HourlyRollup.objects.count() == len(hours) == 10
    assert set(DailyRollup.objects.values_list("bucket", flat=True)) == {
        datetime(2026, 3, 10).date(),
        datetime(2026, 3, 11).date(),
    }


def test_days_and_hours_follow_the_team_time_zone(setup):
    team, admin, backend = setup
    team.time_zone = "Asia/Kolkata"  # UTC+5:30
    team.save()
    at = datetime(2026, 3, 10, 18, 45, tzinfo=UTC)  # 00:15 on the 11th in Kolkata
    finish_run(team, admin, backend, attempts=[attempt(at=at)])
    folding.fold()
    assert DailyRollup.objects.get().bucket == datetime(2026, 3, 11).date()
    assert HourlyRollup.objects.get().bucket == datetime(2026, 3, 10, 18, 30, tzinfo=UTC)


def test_the_local_backend_never_takes_a_commercial_models_price(setup):
    """A global price is what a provider charges for a model; the local development
    backend only borrows names, so it is billed only at a price set for itself."""
    team, admin, _backend = setup
    local = local_backend(team, admin, name="Local")
    price("local-echo", inp="2.5", out="10")  # as if a provider sold a model by that name
    run = finish_run(team, admin, local, model="local-echo", attempts=[attempt(1000, 500)])
    record = UsageRecord.objects.get(run=run)
    assert record.cost == 0 and record.unpriced and record.price is None
    own = price("local-echo", inp="1", out="1", team=team, backend=local)
    run = finish_run(team, admin, local, model="local-echo", attempts=[attempt(1000, 500)])
    record = UsageRecord.objects.get(run=run)
    assert (record.price, record.cost) == (own, Decimal("0.0015"))
