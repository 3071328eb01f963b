"""Quota counters in Redis, changed only by the Lua scripts in ``lua/``.

Every web and worker process talks to the same Redis, and Redis runs a script
alone: a check and the increment it guards happen as one step, so concurrent
requests can never both take the last unit of a limit. Keys (``quota`` is
``QUOTA_REDIS_PREFIX``; a scope is ``t<team id>`` or ``k<key id>``):

- ``quota:<scope>:b:<period>`` hash ``tokens``, ``cost`` (settled) and
  ``rtokens``, ``rcost`` (reserved by runs in flight); the period id is in the
  name and the key expires after the period, so a new period starts from zero
  without any job. ``...:log`` lists recent settlements for reconciliation.
- ``quota:<scope>:rpm`` zset of requests, ``quota:<scope>:tpm`` zset plus
  ``...:tpmv`` hash of token entries: sliding 60 s logs, exact at every instant.
- ``quota:<scope>:run`` zset of the scope's live reservations (the score is a
  deadline after which a leaked one stops counting): concurrent runs.
- ``quota:res:<id>`` the reservation record (JSON), ``quota:done:<id>`` its
  tombstone after settling, ``quota:res:index`` zset of live reservations by age.

Costs are integers in millionths of the currency unit, rounded up, so Redis
never counts less than was spent. Without ``REDIS_URL`` (the embedded default,
one process) the same operations run on this process's memory (``local``).
"""

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import redis
from django.conf import settings

from apps.core import shared_redis
from apps.core.errors import Unavailable
from apps.quotas import local

LUA_DIR = Path(__file__).resolve().parent / "lua"
MICROS = Decimal(1_000_000)
_lock = threading.Lock()
_scripts: dict[str, object] = {}


def prefix() -> str:
    return settings.QUOTA_REDIS_PREFIX


def to_micros(amount: Decimal) -> int:
    return int((Decimal(amount) * MICROS).to_integral_value(rounding=ROUND_CEILING))


def from_micros(micros: int) -> Decimal:
    return (Decimal(int(micros)) / MICROS).quantize(Decimal("0.000001"))


def new_id() -> str:
    return uuid.uuid4().hex


def shared() -> bool:
    """Whether the counters live in Redis (every process) or here (``local``)."""
    return bool(settings.REDIS_URL)


def client() -> redis.Redis:
    return shared_redis.client()


def _script(name: str):
    conn = client()
    with _lock:
        script = _scripts.get(name)
        if script is None:
            source = (LUA_DIR / "common.lua").read_text() + (LUA_DIR / f"{name}.lua").read_text()
            script = _scripts[name] = conn.register_script(source)
        return script


def _run(name: str, keys=(), args=()):
    if not shared():
        if name == "hit":
            return local.hit(keys[0], *args)
        return getattr(local, name)(*args)
    try:
        return _script(name)(keys=list(keys), args=list(args))
    except redis.ConnectionError as error:
        raise Unavailable(
            "Quotas can't be checked right now (Redis is unreachable); try again shortly."
        ) from error


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Refusal:
    scope_index: int  # 0-based index into the scopes of the request
    name: str  # token_budget, cost_budget, requests_per_minute, tokens_per_minute, ...
    current: int
    limit: int
    requested: int
    reset_ms: int | None  # None: frees up when a run ends


def _refusal(reply) -> Refusal:
    reset = int(_text(reply[6]))
    return Refusal(
        scope_index=int(reply[1]) - 1,
        name=_text(reply[2]),
        current=int(_text(reply[3])),
        limit=int(_text(reply[4])),
        requested=int(_text(reply[5])),
        reset_ms=reset if reset >= 0 else None,
    )


def key(scope: str, suffix: str) -> str:
    return f"{prefix()}:{scope}:{suffix}"


def hit(scope: str, limit: int, now_ms: int) -> Refusal | None:
    """Count one request against ``limit`` per minute, or refuse it uncounted."""
    reply = _run("hit", [key(scope, "rpm")], [now_ms, limit, new_id()])
    if int(reply[0]) == 1:
        return None
    return Refusal(0, "requests_per_minute", int(reply[1]), limit, 1, int(reply[2]))


class Unseeded(Exception):
    """Budget counters of a period that were never set from the ledger."""

    def __init__(self, scope_indexes: list[int]):
        super().__init__(scope_indexes)
        self.scope_indexes = scope_indexes  # 0-based, into the scopes of the request


def reserve(spec_json: str) -> Refusal | None:
    """None when reserved; the refusal; or Unseeded (nothing written)."""
    reply = _run("reserve", args=[spec_json])
    status = int(reply[0])
    if status == 2:
        raise Unseeded([int(_text(i)) - 1 for i in reply[1:]])
    return None if status == 1 else _refusal(reply)


def release(reservation_id: str) -> None:
    """Give a reservation back without counting anything."""
    spec = {"pre": prefix(), "id": reservation_id, "tokens": 0, "cost": 0, "add": False}
    now = int(time.time() * 1000)
    settle(json.dumps({**spec, "fin": now, "now": now}))


def settle(spec_json: str) -> dict[str, tuple[int, int]] | None:
    """None when the reservation was already settled (or never existed); else each
    budget scope's settled ``(tokens, cost micros)`` afterwards."""
    reply = _run("settle", args=[spec_json])
    if int(reply[0]) == 0:
        return None
    rest = reply[1:]
    return {
        _text(rest[i]): (int(_text(rest[i + 1])), int(_text(rest[i + 2])))
        for i in range(0, len(rest), 3)
    }


def reconcile(spec_json: str) -> tuple[list[int], list[int]]:
    reply = [int(_text(v)) for v in _run("reconcile", args=[spec_json])]
    return reply[:4], reply[4:]


@dataclass(frozen=True)
class Budget:
    tokens: int = 0
    cost: int = 0  # micros
    reserved_tokens: int = 0
    reserved_cost: int = 0
    # False: never set from the ledger this period (see Unseeded); not an amount
    seeded: bool = field(default=True, compare=False)


def budget(scope: str, period: str) -> Budget:
    name = key(scope, f"b:{period}")
    if not shared():
        *values, seeded = local.read_budget(name)
        return Budget(*values, seeded=bool(seeded))
    *values, seeded = client().hmget(name, "tokens", "cost", "rtokens", "rcost", "seeded")
    return Budget(*(int(v or 0) for v in values), seeded=seeded is not None)


def minute(scope: str, now_ms: int) -> tuple[int, int]:
    """Requests and tokens in the last 60 s, read without changing anything."""
    if not shared():
        return local.read_minute(prefix(), scope, now_ms)
    since = f"({now_ms - 60_000}"
    conn = client()
    requests = conn.zcount(key(scope, "rpm"), since, "+inf")
    members = conn.zrangebyscore(key(scope, "tpm"), since, "+inf")
    tokens = sum(int(v or 0) for v in conn.hmget(key(scope, "tpmv"), members)) if members else 0
    return requests, tokens


def running(scope: str, now_ms: int) -> int:
    if not shared():
        return local.read_running(key(scope, "run"), now_ms)
    return client().zcount(key(scope, "run"), now_ms, "+inf")


def live_reservations(older_than_ms: int, count: int = 1000) -> list[str]:
    """Ids of reservations not settled yet, made before ``older_than_ms``."""
    if not shared():
        return local.live(f"{prefix()}:res:index", older_than_ms, count)
    ids = client().zrangebyscore(f"{prefix()}:res:index", "-inf", older_than_ms, start=0, num=count)
    return [_text(i) for i in ids]


def record(reservation_id: str) -> str | None:
    if not shared():
        return local.memory.get(f"{prefix()}:res:{reservation_id}")
    raw = client().get(f"{prefix()}:res:{reservation_id}")
    return _text(raw) if raw is not None else None


def forget_index_entry(reservation_id: str) -> None:
    """An index entry whose record expired on its own."""
    if not shared():
        local.drop(f"{prefix()}:res:index", reservation_id)
        return
    client().zrem(f"{prefix()}:res:index", reservation_id)


def first_time(name: str, expire_at: int) -> bool:
    """True for the first caller only (``SET NX``), until ``expire_at`` (unix s)."""
    if not shared():
        return local.first_time(name, expire_at)
    conn = client()
    first = conn.set(name, 1, nx=True)
    if first and expire_at:
        conn.expireat(name, expire_at)
    return bool(first)


def forget(name: str) -> None:
    if not shared():
        local.drop(name)
        return
    client().delete(name)
