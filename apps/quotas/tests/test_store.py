"""The Lua scripts against the real Redis: all-or-nothing reservations, idempotent
settlement, sliding minute windows, concurrency and reconciliation arithmetic."""

import json
import threading
import time

import pytest

from apps.quotas import store

PERIOD = "2030-01"


def now_ms() -> int:
    return int(time.time() * 1000)


def scope(name="t1", **limits):
    spec = {
        "n": name,
        "p": PERIOD,
        "bx": int(time.time()) + 3600,
        "reset": now_ms() + 3_600_000,
        "tl": -1,
        "cl": -1,
        "rl": -1,
        "pl": -1,
        "ul": -1,
    }
    spec.update(limits)
    return spec


def reserve(rid, scopes, tokens=100, cost=0, at=None, seeded_ok=True):
    at = at or now_ms()
    record = {
        "id": rid,
        "tokens": tokens,
        "cost": cost,
        "s": [{"n": s["n"], "p": s["p"], "bx": s["bx"]} for s in scopes],
    }
    spec = {
        "pre": store.prefix(),
        "id": rid,
        "now": at,
        "tokens": tokens,
        "cost": cost,
        "rttl": 600,
        "dl": at + 600_000,
        "record": json.dumps(record),
        "s": scopes,
        "seeded_ok": seeded_ok,  # the arithmetic below starts from counters at zero
    }
    return store.reserve(json.dumps(spec)), record


def settle(rid, tokens=0, cost=0, add=True, fin=None):
    spec = {
        "pre": store.prefix(),
        "id": rid,
        "tokens": tokens,
        "cost": cost,
        "fin": fin or now_ms(),
        "now": now_ms(),
        "add": add,
    }
    return store.settle(json.dumps(spec))


def test_reserve_until_the_budget_is_full_then_settle_to_actual():
    granted = [reserve(f"r{i}", [scope(tl=1000)])[0] is None for i in range(12)]
    assert granted == [True] * 10 + [False] * 2
    refusal = reserve("x", [scope(tl=1000)])[0]
    assert (refusal.name, refusal.current, refusal.limit, refusal.requested) == (
        "token_budget",
        1000,
        1000,
        100,
    )
    assert store.budget("t1", PERIOD) == store.Budget(0, 0, 1000, 0)

    assert settle("r0", tokens=40, cost=7) == {"t1": (40, 7)}
    assert settle("r0", tokens=40, cost=7) is None  # a second settle changes nothing
    assert store.budget("t1", PERIOD) == store.Budget(40, 7, 900, 0)
    assert reserve("r10", [scope(tl=1000)], tokens=60)[0] is None  # the 60 given back
    assert reserve("r11", [scope(tl=1000)], tokens=1)[0] is not None


def test_a_refusal_in_one_scope_writes_nothing_anywhere():
    team, key = scope("t1", tl=10_000), scope("k1", tl=150, ul=5, pl=10_000)
    assert reserve("a", [team, key])[0] is None
    refusal, _ = reserve("b", [team, key])
    assert refusal.scope_index == 1 and refusal.name == "token_budget"
    assert store.budget("t1", PERIOD).reserved_tokens == 100
    assert store.running("t1", now_ms()) == 1 and store.running("k1", now_ms()) == 1
    assert store.minute("k1", now_ms()) == (0, 100)
    assert store.record("b") is None


def test_release_gives_everything_back_and_counts_nothing():
    assert reserve("a", [scope(tl=500, pl=1000, ul=1)])[0] is None
    assert reserve("b", [scope(tl=500, pl=1000, ul=1)])[0].name == "concurrent_runs"
    assert settle("a", tokens=999, add=False) == {"t1": (0, 0)}
    assert store.budget("t1", PERIOD) == store.Budget(0, 0, 0, 0)
    assert store.running("t1", now_ms()) == 0
    assert store.minute("t1", now_ms()) == (0, 0)
    assert reserve("b", [scope(tl=500, pl=1000, ul=1)])[0] is None


def test_concurrency_refusal_frees_when_a_run_settles():
    for i in range(3):
        assert reserve(f"r{i}", [scope(ul=3)])[0] is None
    refusal = reserve("r3", [scope(ul=3)])[0]
    assert refusal.name == "concurrent_runs" and refusal.reset_ms is None
    assert (refusal.current, refusal.limit) == (3, 3)
    settle("r1", tokens=5)
    assert reserve("r3", [scope(ul=3)])[0] is None


def test_tokens_per_minute_is_a_sliding_window_and_settles_to_actual():
    start = now_ms() - 50_000
    assert reserve("a", [scope(pl=300)], tokens=200, at=start)[0] is None
    assert reserve("b", [scope(pl=300)], tokens=100, at=start + 20_000)[0] is None
    refusal = reserve("c", [scope(pl=300)], tokens=150, at=start + 30_000)[0]
    # "a" leaves the window at start + 60 s; then 100 + 150 fit
    assert refusal.name == "tokens_per_minute" and refusal.reset_ms == start + 60_000
    settle("a", tokens=20)  # it used far less than it reserved
    assert reserve("c", [scope(pl=300)], tokens=150, at=start + 30_000)[0] is None
    # "a" aged out: 100 + 150 + 50 fit, 51 would not
    assert reserve("d", [scope(pl=300)], tokens=51, at=start + 60_001)[0] is not None
    assert reserve("d", [scope(pl=300)], tokens=50, at=start + 60_001)[0] is None


def test_requests_per_minute_hold_in_any_60_seconds():
    start = now_ms() - 59_000
    assert store.hit("k9", 2, start) is None
    assert store.hit("k9", 2, start + 30_000) is None
    refusal = store.hit("k9", 2, start + 59_999)
    assert refusal.name == "requests_per_minute" and refusal.reset_ms == start + 60_000
    assert store.hit("k9", 2, start + 60_000) is None  # the first one left the window
    assert store.hit("k9", 2, start + 60_001) is not None  # never 3 in a minute


def test_fifty_threads_take_exactly_what_fits():
    barrier = threading.Barrier(50)
    results = []

    def one(i):
        barrier.wait()
        results.append(reserve(f"r{i}", [scope(tl=1000, ul=50)])[0] is None)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 10
    assert store.budget("t1", PERIOD).reserved_tokens == 1000


def test_reconcile_counts_each_run_once_and_restores_lost_reservations():
    now = now_ms()
    cutoff = now - 60_000
    reserve("old", [scope()], tokens=100)
    settle("old", tokens=30, cost=3, fin=cutoff - 1000)  # PostgreSQL's sum has it
    reserve("new", [scope()], tokens=100)
    settle("new", tokens=50, cost=5, fin=cutoff + 1000)  # the sum stops before it
    _none, live = reserve("live", [scope()], tokens=100)
    lost = {"id": "lost", "tokens": 70, "cost": 9, "s": [{"n": "t1", "p": PERIOD, "bx": 0}]}
    settled = {"id": "new", "tokens": 100, "cost": 0, "s": [{"n": "t1", "p": PERIOD, "bx": 0}]}
    store.client().hset(store.key("t1", f"b:{PERIOD}"), mapping={"tokens": 9999, "rtokens": 1})
    spec = {
        "pre": store.prefix(),
        "n": "t1",
        "p": PERIOD,
        "bx": int(time.time()) + 3600,
        "pg_tokens": 30 + 500,  # "old" plus runs that never had a reservation
        "pg_cost": 3,
        "cutoff": cutoff,
        "now": now,
        "dl": now + 600_000,
        "rttl": 600,
        "restore": [
            {"id": "lost", "rec": json.dumps(lost)},
            {"id": "new", "rec": json.dumps(settled)},  # settled meanwhile: not restored
            {"id": "live", "rec": json.dumps(live)},
        ],
    }
    before, after = store.reconcile(json.dumps(spec))
    assert before[:2] == [9999, 8]
    assert after == [30 + 500 + 50, 3 + 5, 100 + 70, 9]
    assert store.record("lost") is not None and store.record("new") is None
    assert store.running("t1", now) == 2


@pytest.mark.parametrize("amount", ["0", "0.000001", "12.3456789", "999999999.999999"])
def test_costs_are_micros_rounded_up(amount):
    from decimal import Decimal

    micros = store.to_micros(Decimal(amount))
    assert Decimal(micros) / 1_000_000 >= Decimal(amount)
    assert Decimal(micros - 1) / 1_000_000 < Decimal(amount) or micros == 0


def test_without_redis_the_same_rules_hold_in_process(settings):
    """The embedded default (no REDIS_URL): the in-process twin of the scripts."""
    from apps.quotas import local

    settings.REDIS_URL = ""
    local.memory.flush()
    granted = [reserve(f"r{i}", [scope(tl=1000, ul=20)])[0] is None for i in range(12)]
    assert granted == [True] * 10 + [False] * 2
    assert settle("r0", tokens=40, cost=7) == {"t1": (40, 7)}
    assert settle("r0", tokens=40, cost=7) is None
    assert store.budget("t1", PERIOD) == store.Budget(40, 7, 900, 0)
    assert store.running("t1", now_ms()) == 9
    start = now_ms() - 59_000
    assert store.hit("k9", 1, start) is None
    assert store.hit("k9", 1, start + 59_999).reset_ms == start + 60_000
    assert store.live_reservations(now_ms() + 1)[:1] == ["r1"]
    local.memory.flush()


def reconcile_spec(now, cutoff, pg_tokens=0, recent=()):
    return {
        "pre": store.prefix(),
        "n": "t1",
        "p": PERIOD,
        "bx": int(time.time()) + 3600,
        "pg_tokens": pg_tokens,
        "pg_cost": 0,
        "cutoff": cutoff,
        "now": now,
        "dl": now + 600_000,
        "rttl": 600,
        "restore": [],
        "recent": list(recent),
    }


def check_seeding():
    """Unseeded budget counters refuse nothing and write nothing until they are set
    from the ledger; a run the seed counted from PostgreSQL adds nothing when it
    settles, one that settles before the seed is counted once from the log."""
    with pytest.raises(store.Unseeded) as unseeded:
        reserve("a", [scope(rl=5), scope("k2", tl=1000)], seeded_ok=False)
    assert unseeded.value.scope_indexes == [1]
    assert store.budget("k2", PERIOD) == store.Budget() and not store.budget("k2", PERIOD).seeded
    assert store.minute("t1", now_ms()) == (0, 0)  # the rate limit wasn't counted either
    assert reserve("b", [scope(rl=5)], seeded_ok=False)[0] is None  # no budget: no seed

    now = now_ms()
    cutoff = now - 60_000
    assert reserve("settled", [scope(tl=1000)])[0] is None  # settles into the log
    settle("settled", tokens=7, fin=cutoff + 10)
    assert reserve("pending", [scope(tl=1000)])[0] is None  # committed, not settled yet
    recent = [
        {"id": "settled", "t": 7, "c": 0, "f": cutoff + 10},
        {"id": "pending", "t": 11, "c": 0, "f": cutoff + 20},
        {"id": "run-9", "t": 13, "c": 0, "f": cutoff + 30},  # never reserved here
    ]
    _before, after = store.reconcile(json.dumps(reconcile_spec(now, cutoff, 100, recent)))
    assert after[0] == 100 + 7 + 11 + 13 and store.budget("t1", PERIOD).seeded
    settle("pending", tokens=11, fin=cutoff + 20)  # the seed counted it already
    assert store.budget("t1", PERIOD).tokens == 131
    # a later pass (no seed) still counts each once: PostgreSQL before, the log after
    _before, after = store.reconcile(json.dumps(reconcile_spec(now, cutoff, 100)))
    assert after[0] == 131
    assert reserve("c", [scope(tl=1000)], seeded_ok=False)[0] is None


def test_counters_are_seeded_from_the_ledger_before_they_decide():
    check_seeding()


def test_seeding_holds_in_process_without_redis(settings):
    from apps.quotas import local

    settings.REDIS_URL = ""
    local.memory.flush()
    try:
        check_seeding()
    finally:
        local.memory.flush()
