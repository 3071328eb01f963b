"""The quota scripts for the embedded default, where there is no Redis.

Without ``REDIS_URL`` the portal is one process (tasks run in it), so counters
in this process's memory are shared by everything that can spend. Each
function mirrors its Lua script in ``lua/`` step by step and runs under one
lock, which gives the same all-or-nothing behaviour; the Redis scripts remain
the reference, and the tests run against them.
"""

import json
import threading
import time

WINDOW = 60_000
LOG_KEEP = 600_000
_lock = threading.RLock()


class _Memory:
    """The few Redis structures the scripts use: hashes, sorted sets, strings."""

    def __init__(self):
        self.data: dict[str, object] = {}
        self.expires: dict[str, float] = {}  # key -> unix seconds

    def _alive(self, key: str) -> bool:
        deadline = self.expires.get(key)
        if deadline is not None and deadline <= time.time():
            self.data.pop(key, None)
            self.expires.pop(key, None)
        return key in self.data

    def get(self, key, default=None):
        return self.data[key] if self._alive(key) else default

    def hash(self, key) -> dict:
        if not self._alive(key):
            self.data[key] = {}
        return self.data[key]

    def zset(self, key) -> dict:
        return self.hash(key)

    def delete(self, key) -> None:
        self.data.pop(key, None)
        self.expires.pop(key, None)

    def expire_at(self, key, unix_seconds: float) -> None:
        if key in self.data:
            self.expires[key] = unix_seconds

    def expire_in(self, key, seconds: float) -> None:
        self.expire_at(key, time.time() + seconds)

    def flush(self) -> None:
        self.data.clear()
        self.expires.clear()


memory = _Memory()


def _key(pre, scope, suffix):
    return f"{pre}:{scope}:{suffix}"


def _trim(zset: dict, below: float) -> list:
    old = [m for m, score in zset.items() if score <= below]
    for member in old:
        del zset[member]
    return old


def _tpm_trim(pre, scope, now) -> int:
    zset = memory.zset(_key(pre, scope, "tpm"))
    values = memory.hash(_key(pre, scope, "tpmv"))
    freed = sum(values.pop(m, 0) for m in _trim(zset, now - WINDOW))
    values["_sum"] = values.get("_sum", 0) - freed
    return values["_sum"]


def hit(key: str, now: int, limit: int, member: str):
    with _lock:
        zset = memory.zset(key)
        _trim(zset, now - WINDOW)
        if len(zset) >= limit:
            oldest = min(zset.values(), default=now)
            return [0, len(zset), oldest + WINDOW]
        zset[member] = now
        memory.expire_in(key, (WINDOW + 1000) / 1000)
        return [1, len(zset)]


def reserve(spec_json: str):
    spec = json.loads(spec_json)
    pre, now, rid = spec["pre"], spec["now"], spec["id"]
    tokens, cost = spec["tokens"], spec["cost"]
    with _lock:
        if not spec.get("seeded_ok"):
            unseeded = [
                i
                for i, s in enumerate(spec["s"], start=1)
                if s.get("p")
                and (s["tl"] >= 0 or s["cl"] >= 0)
                and "seeded" not in memory.hash(_key(pre, s["n"], "b:" + s["p"]))
            ]
            if unseeded:
                return [2, *unseeded]
        refusal = None

        def refuse(i, name, current, limit, requested, reset):
            nonlocal refusal
            if refusal is None or reset > refusal[6]:
                refusal = [0, i, name, current, limit, requested, reset]

        for i, s in enumerate(spec["s"], start=1):
            if s.get("p"):
                budget = memory.hash(_key(pre, s["n"], "b:" + s["p"]))
                used_t = budget.get("tokens", 0) + budget.get("rtokens", 0)
                used_c = budget.get("cost", 0) + budget.get("rcost", 0)
                if s["tl"] >= 0 and used_t + tokens > s["tl"]:
                    refuse(i, "token_budget", used_t, s["tl"], tokens, s["reset"])
                if s["cl"] >= 0 and used_c + cost > s["cl"]:
                    refuse(i, "cost_budget", used_c, s["cl"], cost, s["reset"])
            if s["rl"] >= 0:
                requests = memory.zset(_key(pre, s["n"], "rpm"))
                _trim(requests, now - WINDOW)
                if len(requests) + 1 > s["rl"]:
                    oldest = min(requests.values(), default=now)
                    refuse(i, "requests_per_minute", len(requests), s["rl"], 1, oldest + WINDOW)
            if s["pl"] >= 0:
                in_window = _tpm_trim(pre, s["n"], now)
                if in_window + tokens > s["pl"]:
                    entries = sorted(
                        memory.zset(_key(pre, s["n"], "tpm")).items(), key=lambda e: e[1]
                    )
                    values = memory.hash(_key(pre, s["n"], "tpmv"))
                    reset, freed = now + WINDOW, 0
                    for member, score in entries:
                        freed += values.get(member, 0)
                        reset = score + WINDOW
                        if in_window - freed + tokens <= s["pl"]:
                            break
                    refuse(i, "tokens_per_minute", in_window, s["pl"], tokens, reset)
            if s["ul"] >= 0:
                running = memory.zset(_key(pre, s["n"], "run"))
                _trim(running, now)
                if len(running) + 1 > s["ul"]:
                    refuse(i, "concurrent_runs", len(running), s["ul"], 1, -1)
        if refusal is not None:
            return refusal
        for s in spec["s"]:
            if s.get("p"):
                name = _key(pre, s["n"], "b:" + s["p"])
                budget = memory.hash(name)
                budget["rtokens"] = budget.get("rtokens", 0) + tokens
                budget["rcost"] = budget.get("rcost", 0) + cost
                memory.expire_at(name, s["bx"])
            if s["rl"] >= 0:
                memory.zset(_key(pre, s["n"], "rpm"))[rid] = now
            if s["pl"] >= 0:
                memory.zset(_key(pre, s["n"], "tpm"))[rid] = now
                values = memory.hash(_key(pre, s["n"], "tpmv"))
                values[rid] = tokens
                values["_sum"] = values.get("_sum", 0) + tokens
            memory.zset(_key(pre, s["n"], "run"))[rid] = spec["dl"]
        memory.data[f"{pre}:res:{rid}"] = spec["record"]
        memory.expire_in(f"{pre}:res:{rid}", spec["rttl"])
        memory.zset(f"{pre}:res:index")[rid] = now
        return [1]


def settle(spec_json: str):
    spec = json.loads(spec_json)
    pre, rid, now = spec["pre"], spec["id"], spec["now"]
    with _lock:
        raw = memory.get(f"{pre}:res:{rid}")
        if raw is None:
            return [0]
        record = json.loads(raw)
        memory.delete(f"{pre}:res:{rid}")
        memory.data[f"{pre}:done:{rid}"] = "1"
        memory.expire_in(f"{pre}:done:{rid}", 172_800)
        memory.zset(f"{pre}:res:index").pop(rid, None)
        tokens = spec["tokens"] if spec["add"] else 0
        cost = spec["cost"] if spec["add"] else 0
        out = [1]
        for s in record["s"]:
            if s.get("p"):
                name = _key(pre, s["n"], "b:" + s["p"])
                budget = memory.hash(name)
                budget["rtokens"] = max(0, budget.get("rtokens", 0) - record["tokens"])
                budget["rcost"] = max(0, budget.get("rcost", 0) - record["cost"])
                if spec["add"] and rid not in memory.hash(name + ":counted"):
                    budget["tokens"] = budget.get("tokens", 0) + tokens
                    budget["cost"] = budget.get("cost", 0) + cost
                    log = memory.zset(name + ":log")
                    log[f"{rid}:{tokens}:{cost}"] = spec["fin"]
                    _trim(log, now - LOG_KEEP)
                    memory.expire_at(name + ":log", s["bx"])
                memory.expire_at(name, s["bx"])
                out += [s["n"], budget.get("tokens", 0), budget.get("cost", 0)]
            values = memory.hash(_key(pre, s["n"], "tpmv"))
            if rid in values and rid in memory.zset(_key(pre, s["n"], "tpm")):
                values["_sum"] = values.get("_sum", 0) + tokens - values[rid]
                values[rid] = tokens
            memory.zset(_key(pre, s["n"], "run")).pop(rid, None)
        return out


def reconcile(spec_json: str):
    spec = json.loads(spec_json)
    pre, scope, period, now = spec["pre"], spec["n"], spec["p"], spec["now"]
    with _lock:
        name = _key(pre, scope, "b:" + period)
        budget = memory.hash(name)
        before = [budget.get(f, 0) for f in ("tokens", "cost", "rtokens", "rcost")]
        for item in spec["restore"]:
            if memory.get(f"{pre}:done:{item['id']}") is not None:
                continue
            if memory.get(f"{pre}:res:{item['id']}") is None:
                memory.data[f"{pre}:res:{item['id']}"] = item["rec"]
                memory.expire_in(f"{pre}:res:{item['id']}", spec["rttl"])
                memory.zset(f"{pre}:res:index")[item["id"]] = now
            for s in json.loads(item["rec"])["s"]:
                memory.zset(_key(pre, s["n"], "run"))[item["id"]] = spec["dl"]
        running = memory.zset(_key(pre, scope, "run"))
        reserved_t = reserved_c = 0
        for rid in list(running):
            raw = memory.get(f"{pre}:res:{rid}")
            if raw is None:
                del running[rid]
                continue
            record = json.loads(raw)
            for s in record["s"]:
                if s["n"] == scope and s.get("p") == period:
                    reserved_t += record["tokens"]
                    reserved_c += record["cost"]
        logged_t = logged_c = 0
        for member, score in memory.zset(name + ":log").items():
            if score >= spec["cutoff"]:
                _rid, t, c = member.rsplit(":", 2)
                logged_t += int(t)
                logged_c += int(c)
        if spec.get("recent"):
            log = memory.zset(name + ":log")
            logged = {member.rsplit(":", 2)[0] for member in log}
            counted = memory.hash(name + ":counted")
            for item in spec["recent"]:
                if item["id"] not in logged and item["id"] not in counted:
                    logged_t += item["t"]
                    logged_c += item["c"]
                    log[f"{item['id']}:{item['t']}:{item['c']}"] = item["f"]
                    counted[item["id"]] = 1
            memory.expire_at(name + ":counted", spec["bx"])
            memory.expire_at(name + ":log", spec["bx"])
        budget.update(
            tokens=spec["pg_tokens"] + logged_t,
            cost=spec["pg_cost"] + logged_c,
            rtokens=reserved_t,
            rcost=reserved_c,
            seeded=1,
        )
        memory.expire_at(name, spec["bx"])
        return [*before, budget["tokens"], budget["cost"], reserved_t, reserved_c]


def read_budget(key: str) -> list[int]:
    with _lock:
        budget = memory.get(key) or {}
        return [budget.get(f, 0) for f in ("tokens", "cost", "rtokens", "rcost", "seeded")]


def read_minute(pre: str, scope: str, now_ms: int) -> tuple[int, int]:
    with _lock:
        since = now_ms - WINDOW
        requests = sum(1 for s in (memory.get(_key(pre, scope, "rpm")) or {}).values() if s > since)
        values = memory.get(_key(pre, scope, "tpmv")) or {}
        members = [m for m, s in (memory.get(_key(pre, scope, "tpm")) or {}).items() if s > since]
        return requests, sum(values.get(m, 0) for m in members)


def read_running(key: str, now_ms: int) -> int:
    with _lock:
        return sum(1 for score in (memory.get(key) or {}).values() if score >= now_ms)


def live(index_key: str, older_than_ms: int, count: int) -> list[str]:
    with _lock:
        members = sorted((memory.get(index_key) or {}).items(), key=lambda e: e[1])
        return [m for m, score in members if score <= older_than_ms][:count]


def first_time(key: str, expire_at: int) -> bool:
    with _lock:
        if memory.get(key) is not None:
            return False
        memory.data[key] = "1"
        if expire_at:
            memory.expire_at(key, expire_at)
        return True


def drop(key: str, member: str | None = None) -> None:
    with _lock:
        if member is None:
            memory.delete(key)
        else:
            (memory.get(key) or {}).pop(member, None)
