"""Reserving in run_create and settling in write_final, against PostgreSQL and Redis."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.core.errors import RateLimited
from apps.events import envelope
from apps.events.models import OutboxEvent
from apps.inference import executor, services
from apps.inference.models import ChatRun, RunStatus
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.keys import limits
from apps.keys.actor import KeyActor
from apps.keys.tests.factories import make_key
from apps.quotas import enforcement, periods, reconcile, store
from apps.quotas import services as quotas
from apps.quotas.models import QuotaAlert
from apps.quotas.tests.factories import make_quota

pytestmark = pytest.mark.django_db
HELLO = [{"role": "user", "content": "hi"}]
PARAMS = {"max_tokens": 5}


@pytest.fixture
def fast_local(settings):
    settings.LOCAL_BACKEND_TOKENS_PER_SECOND = 0


def worst(backend) -> int:
    tokens, _cost = enforcement.worst_case(
        team=backend.team,
        backend_id=backend.pk,
        model="local-echo",
        messages=HELLO,
        parameters=PARAMS,
        fallbacks=[],
    )
    return tokens


def start(team, actor, backend, parameters=PARAMS, messages=HELLO, **extra):
    return services.run_create(
        team=team,
        actor=actor,
        backend_id=backend.pk,
        model="local-echo",
        messages=messages,
        parameters=parameters,
        **extra,
    )


def budget_of(team):
    window = periods.window("month", team.zone)
    return store.budget(f"t{team.pk}", window.id)


def test_a_refused_run_writes_nothing_and_names_the_limit():
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    make_quota(team, token_budget=2 * worst(backend))
    start(team, admin, backend)
    start(team, admin, backend)
    with pytest.raises(RateLimited) as refused:
        start(team, admin, backend)
    assert ChatRun.objects.count() == 2
    error = refused.value
    assert error.code == "insufficient_quota"
    assert error.limit["name"] == "token_budget" and error.limit["scope"] == "team"
    assert error.limit["limit"] == error.limit["current"] == 2 * worst(backend)
    window = periods.window("month", team.zone)
    assert error.limit["resets_at"] == window.end.isoformat()
    assert 0 < error.retry_after <= 31 * 86400
    assert "resets at" in error.message


def test_settle_counts_actual_usage_and_releases_the_rest(
    fast_local, django_capture_on_commit_callbacks
):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    make_quota(team, token_budget=10_000)
    with django_capture_on_commit_callbacks(execute=True):
        run = start(team, admin, backend)
    assert run.quota_reservation["tokens"] == worst(backend)
    assert budget_of(team).reserved_tokens == worst(backend)
    with django_capture_on_commit_callbacks(execute=True):
        assert executor.execute(run.pk) == RunStatus.SUCCEEDED
    run.refresh_from_db()
    assert budget_of(team) == store.Budget(tokens=run.total_tokens, reserved_tokens=0)
    assert 0 < run.total_tokens <= worst(backend)
    # settling again (a duplicate finalization, reconciliation) changes nothing
    enforcement._settle(run.quota_reservation, tokens=999, cost=0, finished_ms=0)
    assert budget_of(team).tokens == run.total_tokens


def test_a_cancelled_queued_run_releases_everything(django_capture_on_commit_callbacks):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    make_quota(team, token_budget=10_000, max_concurrent_runs=1)
    run = start(team, admin, backend)
    with pytest.raises(RateLimited) as refused:
        start(team, admin, backend)
    assert refused.value.limit["name"] == "concurrent_runs"
    assert refused.value.retry_after == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.run_cancel(run=run, actor=admin)
    assert budget_of(team) == store.Budget()
    start(team, admin, backend)  # the slot is free again


def test_a_failed_insert_releases_the_reservation(monkeypatch):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    make_quota(team, token_budget=10_000)

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("apps.inference.services.insert_with_event", broken)
    with pytest.raises(RuntimeError):
        start(team, admin, backend)
    assert budget_of(team) == store.Budget()


def test_key_limits_combine_the_key_fields_and_its_quota():
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    key, _raw = make_key(
        team, admin, scopes=["chat"], requests_per_minute=5, tokens_per_minute=10_000
    )
    make_quota(team, api_key=key, requests_per_minute=2, max_concurrent_runs=10)
    limits.require_request(key)
    limits.require_request(key)
    with pytest.raises(RateLimited) as refused:
        limits.require_request(key)
    assert refused.value.limit["name"] == "requests_per_minute"
    assert refused.value.limit["scope"] == "key" and refused.value.limit["limit"] == 2
    assert 1 <= refused.value.retry_after <= 60

    key.tokens_per_minute = worst(backend)
    actor = KeyActor(key)
    start(team, actor, backend)
    with pytest.raises(RateLimited) as refused:
        start(team, actor, backend)
    assert refused.value.limit["name"] == "tokens_per_minute"
    assert refused.value.code == "rate_limit_exceeded"


def test_team_requests_per_minute_count_runs_of_everyone():
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    make_quota(team, requests_per_minute=3)
    _key, _raw = make_key(team, admin)
    for _ in range(3):
        start(team, admin, backend)
    with pytest.raises(RateLimited) as refused:
        start(team, admin, backend)
    assert refused.value.limit["name"] == "requests_per_minute"
    assert "in the last minute" in refused.value.message


def test_a_temporary_increase_applies_until_it_ends():
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    quota = make_quota(team, token_budget=worst(backend))
    start(team, admin, backend)
    with pytest.raises(RateLimited):
        start(team, admin, backend)
    increase = quotas.increase_create(
        quota=quota,
        actor=admin,
        extra_tokens=worst(backend),
        ends_at=timezone.now() + timedelta(hours=1),
        reason="launch day",
    )
    start(team, admin, backend)
    with pytest.raises(RateLimited):
        start(team, admin, backend)
    quotas.increase_end(increase=increase, actor=admin)
    with pytest.raises(RateLimited) as refused:
        start(team, admin, backend)
    assert refused.value.limit["limit"] == worst(backend)


def _next_local_midnight(zone):
    local = timezone.now().astimezone(zone)
    following = (local + timedelta(days=1)).date()
    return datetime(following.year, following.month, following.day, tzinfo=zone)


def test_daily_budgets_roll_over_at_the_teams_midnight(monkeypatch):
    team, admin = team_with_admin()
    quotas.time_zone_set(team=team, actor=admin, time_zone="Pacific/Kiritimati")  # UTC+14
    team.refresh_from_db()
    backend = local_backend(team, admin)
    make_quota(team, period="day", token_budget=worst(backend))
    midnight = _next_local_midnight(team.zone)

    monkeypatch.setattr(timezone, "now", lambda: midnight - timedelta(seconds=1))
    before = start(team, admin, backend)
    with pytest.raises(RateLimited) as refused:
        start(team, admin, backend)
    assert refused.value.limit["resets_at"] == midnight.isoformat()
    assert 1 <= refused.value.retry_after <= 2

    monkeypatch.setattr(timezone, "now", lambda: midnight + timedelta(seconds=1))
    after = start(team, admin, backend)  # a new day: fresh counters, no job ran
    assert before.quota_reservation["s"][0]["p"] != after.quota_reservation["s"][0]["p"]
    assert after.quota_reservation["s"][0]["p"] == midnight.date().isoformat()
    # the same instant is still "yesterday" for a team in UTC
    assert periods.window("day", timezone.UTC, midnight).id != midnight.date().isoformat()


def test_thresholds_alert_once_per_period(
    fast_local, django_capture_on_commit_callbacks, mailoutbox
):
    from apps.quotas.tasks import send_quota_alert_email
    from apps.teams.models import Role
    from apps.teams.tests.factories import member_of

    team, admin = team_with_admin()
    owner = member_of(team, Role.OWNER)
    member_of(team, Role.MEMBER)
    backend = local_backend(team, admin)
    used_by_one = 0
    quota = make_quota(team, admin, token_budget=1_000, thresholds=[1, 100])
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            run = start(team, admin, backend)
        with django_capture_on_commit_callbacks(execute=True):
            executor.execute(run.pk)
        run.refresh_from_db()
        used_by_one = run.total_tokens
    reconcile.reconcile_quota(quota)
    alerts = list(QuotaAlert.objects.filter(quota=quota))
    assert [(a.metric, a.threshold) for a in alerts] == [("tokens", 1)]
    assert alerts[0].consumed >= used_by_one and alerts[0].limit == 1_000
    assert alerts[0].event_payload()["type"] == "quota.threshold_crossed"
    events = list(OutboxEvent.objects.filter(team_id=team.pk, type="quota.threshold_reached"))
    assert len(events) == 1
    event = envelope.build(events[0])
    envelope.validate(event)
    assert Decimal(event["data"].pop("used")) == alerts[0].consumed
    assert event["data"] == {
        "quota_id": quota.pk,
        "key_id": None,
        "metric": "tokens",
        "period": alerts[0].period,
        "limit": "1000",
        "threshold": 1,
    }

    send_quota_alert_email(alerts[0].pk)
    send_quota_alert_email(alerts[0].pk)  # a retry after it was sent
    assert len(mailoutbox) == 1
    assert sorted(mailoutbox[0].to) == sorted([admin.email, owner.email])
    assert "1%" in mailoutbox[0].subject


def test_reconcile_fixes_drift_and_releases_orphans(
    settings, fast_local, django_capture_on_commit_callbacks
):
    settings.QUOTA_RECONCILE_GRACE_SECONDS = 0
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    quota = make_quota(team, token_budget=100_000, max_concurrent_runs=5)
    with django_capture_on_commit_callbacks(execute=True):
        done = start(team, admin, backend)
    with django_capture_on_commit_callbacks(execute=True):
        executor.execute(done.pk)
    done.refresh_from_db()
    queued = start(team, admin, backend)
    waiting = start(team, admin, backend)  # queued, its reservation intact: kept
    unsettled = start(team, admin, backend)  # ended, but its worker died before settling
    ChatRun.objects.filter(pk=unsettled.pk).update(
        status=RunStatus.FAILED, finished_at=timezone.now() - timedelta(seconds=1)
    )
    # an orphan: reserved, then its transaction rolled back (no run row)
    orphan = enforcement.reserve_for_run(
        team=team,
        actor=admin,
        backend_id=backend.pk,
        model="local-echo",
        messages=HELLO,
        parameters=PARAMS,
        fallbacks=[],
    )
    window = periods.window("month", team.zone)
    store.client().hset(store.key(f"t{team.pk}", f"b:{window.id}"), "tokens", 123_456)
    store.client().delete(f"{store.prefix()}:res:{queued.quota_reservation['id']}")  # Redis lost it

    result = reconcile.reconcile_all()
    assert result["released"] == 2 and result["quotas"] == 1
    assert store.record(orphan["id"]) is None
    assert store.record(unsettled.quota_reservation["id"]) is None
    assert store.record(waiting.quota_reservation["id"]) is not None
    assert budget_of(team) == store.Budget(
        tokens=done.total_tokens, reserved_tokens=2 * queued.quota_reservation["tokens"]
    )
    assert store.running(f"t{team.pk}", enforcement._ms(timezone.now())) == 2
    assert quota.max_concurrent_runs == 5


def test_cost_budgets_price_the_worst_case_at_the_dearest_target():
    from apps.usage.models import Price

    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    cheap = local_backend(team, admin, name="Other")
    Price.objects.create(model="local-echo", input_per_million=1, output_per_million=2)
    Price.objects.create(
        team=team, backend=cheap, model="local-echo", input_per_million=10, output_per_million=20
    )
    tokens, cost = enforcement.worst_case(
        team=team,
        backend_id=backend.pk,
        model="local-echo",
        messages=HELLO,
        parameters=PARAMS,
        fallbacks=[{"backend": cheap.pk, "model": "local-echo"}],
    )
    prompt = tokens - PARAMS["max_tokens"]
    assert cost == (Decimal(prompt) * 10 + Decimal(PARAMS["max_tokens"]) * 20) / 1_000_000
    make_quota(team, cost_budget=cost * 3)
    for _ in range(3):
        start(team, admin, backend, fallbacks=[{"backend": cheap.pk, "model": "local-echo"}])
    with pytest.raises(RateLimited) as refused:
        start(team, admin, backend, fallbacks=[{"backend": cheap.pk, "model": "local-echo"}])
    assert refused.value.limit["name"] == "cost_budget"
    assert Decimal(refused.value.limit["current"]) >= cost * 3 - Decimal("0.000003")


def test_a_request_without_a_cap_is_sent_with_the_reserved_one(
    settings, fast_local, django_capture_on_commit_callbacks
):
    """The local backend echoes the message, six tokens here, unless capped: with a
    default cap of 3 the reply stops there, so it can't pass what was reserved for it."""
    settings.QUOTA_DEFAULT_MAX_TOKENS = 3
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    make_quota(team, token_budget=10_000)
    with django_capture_on_commit_callbacks(execute=True):
        run = start(
            team,
            admin,
            backend,
            parameters={"temperature": 0.5},
            messages=[{"role": "user", "content": "one two three four"}],
        )
    assert run.parameters == {"temperature": 0.5, "max_tokens": 3}
    assert run.quota_reservation["cap"] == 3
    with django_capture_on_commit_callbacks(execute=True):
        assert executor.execute(run.pk) == RunStatus.SUCCEEDED
    run.refresh_from_db()
    assert run.completion_tokens == 3 and run.finish_reason == "length"
    assert run.total_tokens <= run.quota_reservation["tokens"]
    assert budget_of(team) == store.Budget(tokens=run.total_tokens, reserved_tokens=0)

    # an explicit cap is the caller's and stays as given
    with django_capture_on_commit_callbacks(execute=True):
        explicit = start(team, admin, backend)
    assert explicit.parameters == PARAMS and explicit.quota_reservation["cap"] is None


def test_only_usage_limits_add_a_cap(settings):
    """Requests per minute or concurrent runs don't depend on reply length."""
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    make_quota(team, requests_per_minute=100, max_concurrent_runs=5)
    run = start(team, admin, backend, parameters={})
    assert run.parameters == {} and run.quota_reservation["cap"] is None
    openai_kind = enforcement.capped_parameters({}, {"cap": 7}, "openai")
    assert openai_kind == {"max_completion_tokens": 7}


def test_reconcile_keeps_what_was_billed_when_a_price_changes(
    settings, fast_local, django_capture_on_commit_callbacks
):
    """The cost budget counts what the ledger billed; a dearer price set later
    applies to later runs only, also after reconciliation."""
    from apps.usage.models import Price, UsageRecord

    settings.QUOTA_RECONCILE_GRACE_SECONDS = 0
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    Price.objects.create(  # set for this backend: the local one has no global price
        model="local-echo",
        backend=backend,
        input_per_million=1000,
        output_per_million=2000,
        effective_from=timezone.now() - timedelta(days=1),
    )
    quota = make_quota(team, cost_budget=Decimal("10"))
    with django_capture_on_commit_callbacks(execute=True):
        run = start(team, admin, backend)
    with django_capture_on_commit_callbacks(execute=True):
        executor.execute(run.pk)
    billed = UsageRecord.objects.get(run=run).cost
    assert billed > 0
    window = periods.window("month", team.zone)
    assert store.from_micros(store.budget(f"t{team.pk}", window.id).cost) == billed

    Price.objects.create(
        model="local-echo", backend=backend, input_per_million=9000, output_per_million=9000
    )
    reconcile.reconcile_quota(quota)
    assert store.from_micros(store.budget(f"t{team.pk}", window.id).cost) == billed


def test_a_new_budget_period_is_announced_once(settings):
    from apps.quotas.models import Quota

    team, admin = team_with_admin()
    quota = make_quota(team, token_budget=5_000)
    reconcile.reconcile_quota(quota)  # set during this period: nothing was reset
    assert not OutboxEvent.objects.filter(type="quota.period_reset").exists()

    window = periods.window("month", team.zone)
    Quota.objects.filter(pk=quota.pk).update(created_at=window.start - timedelta(days=3))
    quota.refresh_from_db()
    reconcile.reconcile_quota(quota)
    reconcile.reconcile_quota(quota)
    (row,) = OutboxEvent.objects.filter(team_id=team.pk, type="quota.period_reset")
    event = envelope.build(row)
    envelope.validate(event)
    assert event["data"]["period"] == window.id and event["data"]["limit"] == "5000"
    assert event["data"]["period_start"] == window.start.isoformat()

    rates_only = make_quota(team, api_key=make_key(team, admin)[0], requests_per_minute=5)
    Quota.objects.filter(pk=rates_only.pk).update(created_at=window.start - timedelta(days=3))
    rates_only.refresh_from_db()
    reconcile.reconcile_quota(rates_only)  # no budget, no period to announce
    assert OutboxEvent.objects.filter(type="quota.period_reset").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_refusal_is_announced_once_in_the_embedded_default(settings):
    """Tasks run inline there, inside the refused request's transaction; the event is
    written from a thread of its own so the rollback doesn't take it along."""
    import time as clock

    settings.CELERY_TASK_ALWAYS_EAGER = True
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    quota = make_quota(team, token_budget=worst(backend))
    start(team, admin, backend)
    for _ in range(3):
        with pytest.raises(RateLimited):
            start(team, admin, backend)
    deadline = clock.monotonic() + 10
    while clock.monotonic() < deadline:
        if OutboxEvent.objects.filter(type="quota.limit_hit").exists():
            break
        clock.sleep(0.05)
    clock.sleep(0.3)
    (row,) = OutboxEvent.objects.filter(team_id=team.pk, type="quota.limit_hit")
    event = envelope.build(row)
    envelope.validate(event)
    assert event["data"]["quota_id"] == quota.pk and event["data"]["metric"] == "token_budget"
    assert ChatRun.objects.count() == 1
