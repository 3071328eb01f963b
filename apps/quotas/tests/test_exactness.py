"""A budget's used amount is the ledger's billed total for its period, from the
moment it exists: the quota's figure, the 429's and the usage page's agree, on
Redis (here) and in process (the embedded default, tested end to end in
``apps/gateway/tests/test_embedded_default.py``)."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps.core.errors import RateLimited
from apps.inference import executor, services
from apps.inference.tests.factories import local_backend, team_with_admin
from apps.quotas import enforcement, selectors, store
from apps.quotas.tests.factories import make_quota
from apps.usage.query import Filters, window_for
from apps.usage.selectors import usage_summary

pytestmark = pytest.mark.django_db


@pytest.fixture
def spend(settings, django_capture_on_commit_callbacks):
    """Run one local request to its end, committing as a worker would."""
    settings.LOCAL_BACKEND_TOKENS_PER_SECOND = 0

    def spend(team, actor, backend, text: str):
        with django_capture_on_commit_callbacks(execute=True):
            run = services.run_create(
                team=team,
                actor=actor,
                backend_id=backend.pk,
                model="local-echo",
                messages=[{"role": "user", "content": text}],
                parameters={"max_tokens": 5},
            )
        with django_capture_on_commit_callbacks(execute=True):
            executor.execute(run.pk)

    return spend


def usage_page_tokens(team) -> int:
    return usage_summary(team, window_for(team.zone, "today"), Filters()).totals.total_tokens


def quota_tokens(quota) -> tuple[int, int]:
    (use,) = [u for u in selectors.quota_status(quota) if u.name == "token_budget"]
    return use.consumed, use.reserved


def test_a_budget_set_after_spending_counts_it_and_refuses_on_the_ledgers_total(
    spend, django_capture_on_commit_callbacks
):
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    for i in range(3):  # spent before the quota exists, within the reconciliation grace
        spend(team, admin, backend, f"before {i}")
    spent = usage_page_tokens(team)
    assert spent > 0

    with django_capture_on_commit_callbacks(execute=True):
        quota = make_quota(team, token_budget=spent + 40, period="day")
    assert quota_tokens(quota) == (spent, 0)

    with pytest.raises(RateLimited) as refused:
        for i in range(20):
            spend(team, admin, backend, f"after {i}")
            assert quota_tokens(quota) == (usage_page_tokens(team), 0)
    total = usage_page_tokens(team)
    assert refused.value.limit["current"] == total == quota_tokens(quota)[0]


def test_lost_counters_are_set_from_the_ledger_before_the_next_decision(spend):
    """Redis restarted empty (or the embedded default's process did): the budget is
    taken from the ledger on the next request, not from zero."""
    team, admin = team_with_admin()
    backend = local_backend(team, admin)
    quota = make_quota(team, token_budget=30, period="day")
    spend(team, admin, backend, "one")
    spend(team, admin, backend, "two")
    spent = usage_page_tokens(team)
    store.client().flushdb()
    assert quota_tokens(quota) == (spent, 0)  # the page reads the ledger meanwhile
    with pytest.raises(RateLimited) as refused:
        for i in range(10):
            spend(team, admin, backend, f"more {i}")
    assert refused.value.limit["current"] == usage_page_tokens(team) == quota_tokens(quota)[0]


def test_the_429_says_when_on_the_teams_clock():
    team, admin = team_with_admin()
    team.time_zone = "Europe/Paris"
    team.save(update_fields=["time_zone"])
    backend = local_backend(team, admin)
    make_quota(team, token_budget=0, period="day")
    with pytest.raises(RateLimited) as refused:
        services.run_create(
            team=team,
            actor=admin,
            backend_id=backend.pk,
            model="local-echo",
            messages=[{"role": "user", "content": "hi"}],
        )
    message = refused.value.message
    assert "resets at 00:00 Europe/Paris (in " in message
    assert "T00:00" not in message  # not a raw ISO time


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0 s"), (42, "42 s"), (300, "5 min"), (303, "5 min 3 s"), (74778, "20 h 46 min")],
)
def test_durations_read_like_people_write_them(seconds, shown):
    assert enforcement._duration(seconds) == shown


def test_reset_times_show_the_date_only_when_more_than_a_day_away():
    zone = ZoneInfo("Europe/Paris")
    now = timezone.now()
    now_ms = int(now.timestamp() * 1000)
    soon = (now + timedelta(hours=3)).replace(second=0, microsecond=0)
    later = now + timedelta(days=10)
    assert enforcement._clock(soon, zone, now_ms) == soon.astimezone(zone).strftime(
        "%H:%M Europe/Paris"
    )
    assert enforcement._clock(later, zone, now_ms).startswith(f"{later.astimezone(zone).day} ")
