"""Done when: 50 parallel gateway requests from several OS processes at a limit that
fits 10 give at most 10 answers, the rest 429 with Retry-After naming the limit;
recorded spend never exceeds the budget; every reservation settles back to zero.

Real HTTP to a live server, a real Celery worker calling the simulator, the
official openai SDK in five separate processes of ten threads each. A slow
simulator keeps the first runs going while the others arrive.
"""

import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from apps.inference.models import TERMINAL_STATUSES, ChatRun, RunAttempt
from apps.inference.tests.factories import simulator_backend, team_with_admin
from apps.keys.tests.factories import make_key
from apps.quotas import enforcement, periods, reconcile, store
from apps.quotas.models import QuotaAlert
from apps.quotas.tests.factories import make_quota

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[3]
PROCESSES, THREADS = 5, 10
MESSAGES = [{"role": "user", "content": "Tell me about quotas"}]
MAX_TOKENS = 8


def burst(server, raw_key: str, *, stream: bool = False) -> list[dict]:
    """Fire PROCESSES x THREADS requests at once; every result, in no order."""
    job = {
        "base_url": f"{server.url}/v1",
        "key": raw_key,
        "threads": THREADS,
        "start_at": time.time() + 3,  # all processes have imported openai by then
        "request": {
            "model": "sim-small",
            "messages": MESSAGES,
            "max_tokens": MAX_TOKENS,
            **({"stream": False} if not stream else {}),
        },
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "apps.quotas.tests.burst", json.dumps(job)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        results += [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(results) == PROCESSES * THREADS
    assert all(r["ok"] or r["status"] for r in results), results  # no connection errors
    return results


@pytest.fixture
def setup(simulator, asgi_live_server, celery_workers):
    celery_workers(concurrency=24)
    simulator.config.latency_ms = 1500
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    return asgi_live_server, team, admin, backend


def worst_case(team, backend) -> tuple[int, Decimal]:
    return enforcement.worst_case(
        team=team,
        backend_id=backend.pk,
        model="sim-small",
        messages=MESSAGES,
        parameters={"max_tokens": MAX_TOKENS},
        fallbacks=[],
    )


def wait_finished(team, timeout=30) -> list[ChatRun]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = list(ChatRun.objects.filter(team=team))
        if all(run.status in TERMINAL_STATUSES for run in runs):
            return runs
        time.sleep(0.2)
    raise AssertionError("runs did not finish")


def split(results, *, name: str, code: str):
    ok = [r for r in results if r["ok"]]
    refused = [r for r in results if not r["ok"]]
    for r in refused:
        assert r["status"] == 429, r
        assert r["code"] == code, r
        assert r["limit"]["name"] == name, r
        assert r["limit"]["current"] is not None and r["limit"]["limit"] is not None, r
        assert int(r["retry_after"]) >= 1, r
    return ok, refused


def assert_settled(scope: str, team) -> None:
    """Nothing reserved, nothing running, no reservation left anywhere."""
    now_ms = int(time.time() * 1000)
    assert store.running(scope, now_ms) == 0
    assert store.live_reservations(now_ms + 1) == []
    for kind in ("month", "day"):
        budget = store.budget(scope, periods.window(kind, team.zone).id)
        assert (budget.reserved_tokens, budget.reserved_cost) == (0, 0), kind


def spent(team) -> tuple[int, Decimal]:
    """Recorded spend: every attempt's tokens, priced from the price list at the time it
    ended, independently of the ledger that settlement reads."""
    from apps.usage.pricing import cost_of

    attempts = list(RunAttempt.objects.filter(run__team=team))
    cost = sum(
        (
            cost_of(
                team=team.pk,
                backend=a.backend_id,
                model=a.model,
                prompt_tokens=a.prompt_tokens,
                completion_tokens=a.completion_tokens,
                cached_tokens=a.cached_tokens or 0,
                at=a.finished_at,
            )[0]
            for a in attempts
            if a.total_tokens
        ),
        Decimal(0),
    )
    return sum(a.total_tokens for a in attempts), cost


def events_of(team, type: str, *, settle_s: float = 1.0) -> list[dict]:
    """The team's events of ``type`` once the worker has had time to emit them."""
    from apps.events import envelope
    from apps.events.models import OutboxEvent

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if OutboxEvent.objects.filter(team_id=team.pk, type=type).exists():
            break
        time.sleep(0.1)
    time.sleep(settle_s)  # a duplicate, if there were one, would be written by now
    events = [envelope.build(row) for row in OutboxEvent.objects.filter(team_id=team.pk, type=type)]
    for event in events:
        envelope.validate(event)
    return events


def test_a_token_budget_that_fits_ten(setup, celery_workers):
    server, team, admin, backend = setup
    mail_dir = celery_workers.mail_dir
    tokens, _cost = worst_case(team, backend)
    budget = 10 * tokens + tokens - 1  # ten fit, an eleventh doesn't
    make_quota(team, admin, token_budget=budget, thresholds=[50, 100])
    _key, raw = make_key(team, admin, scopes=["chat"])

    ok, refused = split(burst(server, raw), name="token_budget", code="insufficient_quota")
    assert 1 <= len(ok) <= 10, len(ok)
    assert refused and all(r["limit"]["scope"] == "team" for r in refused)
    window = periods.window("month", team.zone)
    assert {r["limit"]["resets_at"] for r in refused} == {window.end.isoformat()}

    runs = wait_finished(team)
    assert len(runs) == len(ok)  # a refused request wrote nothing
    used, _ = spent(team)
    assert used <= budget
    assert_settled(f"t{team.pk}", team)
    assert store.budget(f"t{team.pk}", window.id).tokens == used
    reconcile.reconcile_all()  # PostgreSQL agrees with what Redis counted
    assert store.budget(f"t{team.pk}", window.id).tokens == used

    # ten settlements raced past 50% in the worker: one alert, one e-mail to the admin
    alerts = list(QuotaAlert.objects.filter(team=team))
    assert [(a.metric, a.threshold, a.period) for a in alerts] == [("tokens", 50, window.id)]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not list(mail_dir.glob("*.log")):
        time.sleep(0.2)
    time.sleep(0.5)  # a duplicate, if there were one, would be written by now
    mails = [path.read_text() for path in mail_dir.glob("*.log")]
    assert len(mails) == 1 and "50%" in mails[0] and admin.email in mails[0]

    # forty refusals, one quota.limit_hit event (emitted by the worker: the refused
    # requests' own transactions rolled back); one threshold event
    (hit,) = events_of(team, "quota.limit_hit")
    assert hit["data"]["metric"] == "token_budget" and hit["data"]["period"] == window.id
    assert hit["data"]["limit"] == str(budget) and hit["data"]["key_id"] is None
    (crossed,) = events_of(team, "quota.threshold_reached", settle_s=0)
    assert crossed["data"]["threshold"] == 50


def test_a_cost_budget_that_fits_ten(setup):
    from apps.usage.models import Price

    server, team, admin, backend = setup
    # whole millionths per token, so ten worst cases are exactly ten times one
    Price.objects.create(model="sim-small", input_per_million=3, output_per_million=7)
    _tokens, cost = worst_case(team, backend)
    assert cost > 0
    make_quota(team, admin, cost_budget=cost * 10, thresholds=[])
    _key, raw = make_key(team, admin, scopes=["chat"])

    ok, refused = split(burst(server, raw), name="cost_budget", code="insufficient_quota")
    assert 1 <= len(ok) <= 10, len(ok)
    assert refused
    wait_finished(team)
    _used, recorded = spent(team)
    assert recorded <= cost * 10
    assert_settled(f"t{team.pk}", team)
    window = periods.window("month", team.zone)
    assert store.budget(f"t{team.pk}", window.id).cost == store.to_micros(recorded)


@pytest.mark.parametrize("where", ["key", "team"])
def test_requests_per_minute_of_ten(setup, where):
    server, team, admin, _backend = setup
    if where == "key":
        _key, raw = make_key(team, admin, scopes=["chat"], requests_per_minute=10)
        scope = f"k{_key.pk}"
    else:
        make_quota(team, admin, requests_per_minute=10)
        _key, raw = make_key(team, admin, scopes=["chat"])
        scope = f"t{team.pk}"

    ok, refused = split(burst(server, raw), name="requests_per_minute", code="rate_limit_exceeded")
    assert len(ok) == 10  # nothing else limits these: exactly the ten that fit
    assert len(refused) == 40
    assert all(1 <= int(r["retry_after"]) <= 60 for r in refused)
    assert all(r["limit"]["scope"] == where and r["limit"]["limit"] == 10 for r in refused)
    wait_finished(team)
    assert_settled(scope, team)
    requests, _tokens = store.minute(scope, int(time.time() * 1000))
    assert requests == 10
    hits = events_of(team, "quota.limit_hit")
    if where == "team":
        assert [h["data"]["metric"] for h in hits] == ["requests_per_minute"]
        assert hits[0]["data"]["period"] == "minute"
    else:  # the key's own field, not a quota: the 429 says it all
        assert hits == []


def test_ten_concurrent_runs(setup, simulator):
    server, team, admin, _backend = setup
    simulator.config.latency_ms = 8000  # the first ten are still running when the rest arrive
    make_quota(team, admin, max_concurrent_runs=10)
    _key, raw = make_key(team, admin, scopes=["chat"])

    ok, refused = split(burst(server, raw), name="concurrent_runs", code="rate_limit_exceeded")
    assert 1 <= len(ok) <= 10, len(ok)
    assert all(r["retry_after"] == "1" for r in refused)
    runs = wait_finished(team)
    # never more than ten runs alive at the same moment
    events = sorted(
        [(run.created_at, 1) for run in runs] + [(run.finished_at, -1) for run in runs],
        key=lambda e: (e[0], e[1]),
    )
    alive = peak = 0
    for _at, change in events:
        alive += change
        peak = max(peak, alive)
    assert peak <= 10
    assert_settled(f"t{team.pk}", team)
