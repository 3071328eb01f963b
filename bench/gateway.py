"""Benchmark API-key authentication and the OpenAI-compatible gateway; print tables.

Two questions, answered with the same stack as ``inference_pipeline.py``
(uvicorn serving ``portal.asgi``, a Celery worker, the simulator; see
``stack.py``):

1. What does a team API key cost per request? ``apps.keys.auth.check`` timed
   in this process against the real Redis and PostgreSQL, with the process's
   one-second entry warm (a hit) and cold (a miss: a database lookup),
   next to its parts; then over HTTP ``GET /v1/models`` with a valid, an
   unknown and no key, next to ``/healthz`` (no authentication at all), so
   the share of authentication in a request is visible.
2. What does the gateway add to a model call? The official ``openai`` SDK
   (``AsyncOpenAI``) sends the same chat completions, non-streamed and
   streamed (``stream_options.include_usage``), once straight to the
   simulator and once through ``POST /v1/chat/completions`` with an
   assistant's slug as the model, from N concurrent callers each sending its
   next request as soon as the previous one ended (a closed loop) until the
   level's request count is reached. Added latency = gateway percentile minus
   the direct one at the same N. The timestamps a run stores split the
   gateway's share into stages.

Run: ``.venv/bin/python bench/gateway.py --help``. It measures and never
fails on a number; the exit code is 1 only when the benchmark itself could not
run.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from stack import (
    MODEL,
    Stack,
    add_stack_arguments,
    cpu_snapshot,
    cpu_spent,
    fmt,
    int_list,
    note_connections,
    openai_client,
    pct,
    percentile,
    print_table,
    run_times,
    seed,
    simulated_ms,
)
from stack import run as stack_run

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench2"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/10"
PROCESSES = ["web", "worker", "simulator", "bench client"]
# apps.inference.streaming.follow re-reads the run after 5 s without a message: an end
# later than this after finished_at was most likely found by that re-read.
LATE_S = 4.0


# --- command line -------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Time API-key authentication (in process and over HTTP) and compare chat "
            "completions through the gateway with the same calls sent straight to the simulator."
        )
    )
    parser.add_argument(
        "--concurrency",
        type=int_list,
        default=[1, 10, 50],
        help="comma-separated numbers of concurrent callers (default 1,10,50)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        help="requests per concurrency, mode and target (default 20 x N, at least 60, at most 400)",
    )
    parser.add_argument(
        "--auth-calls", type=int, default=2000, help="in-process auth.check calls per case"
    )
    parser.add_argument(
        "--http-requests", type=int, default=1000, help="HTTP requests per endpoint (part 1)"
    )
    parser.add_argument(
        "--http-concurrency", type=int, default=10, help="concurrent HTTP callers (part 1)"
    )
    parser.add_argument(
        "--skip-auth", action="store_true", help="only the chat completions (part 2)"
    )
    parser.add_argument(
        "--skip-chat", action="store_true", help="only the key authentication (part 1)"
    )
    add_stack_arguments(
        parser,
        default_database_url=DEFAULT_DATABASE_URL,
        default_redis_url=DEFAULT_REDIS_URL,
        timeout_help="seconds one request may take before it counts as an error",
    )
    return parser.parse_args(argv)


def requests_for(args: argparse.Namespace, n: int) -> int:
    return args.requests or min(max(20 * n, 60), 400)


# --- closed loop ------------------------------------------------------------------


async def closed_loop(n: int, total: int, one: Callable[[int], Awaitable]) -> tuple[list, float]:
    """``total`` calls of ``one(i)`` from ``n`` concurrent callers; (results, wall seconds)."""
    counter = itertools.count()
    results: list = []

    async def caller():
        while (i := next(counter)) < total:
            results.append(await one(i))

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(min(n, total))))
    return results, time.perf_counter() - started


@dataclass
class Phase:
    """One measured series: its samples, wall time, CPU by process, load average."""

    label: str
    n: int
    samples: list = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    load: float = 0.0

    @property
    def ok(self) -> list:
        return [s for s in self.samples if not s.error]

    @property
    def errors(self) -> list:
        return [s for s in self.samples if s.error]

    @property
    def rate(self) -> str:
        return f"{len(self.ok) / self.wall_s:.1f}" if self.wall_s else "-"

    def cpu_ms_per_request(self, name: str) -> str:
        if name not in self.cpu_s or not self.samples:
            return "-"
        return fmt(self.cpu_s[name] * 1000 / len(self.samples))


async def measured(
    phase: Phase, total: int, one: Callable[[int], Awaitable], pids: dict[str, int]
) -> Phase:
    phase.load = os.getloadavg()[0]
    before = cpu_snapshot(pids)
    phase.samples, phase.wall_s = await closed_loop(phase.n, total, one)
    cpu_spent(before, pids, phase.cpu_s)
    errors = len(phase.errors)
    print(f"  {phase.label} N={phase.n}: {total} requests in {phase.wall_s:.2f}s, {errors} errors")
    return phase


# --- part 1: what a key costs ------------------------------------------------------


@dataclass
class Keys:
    valid: str
    unknown: str  # well-formed, public id not in the database
    public_id: str


def time_us(fn: Callable[[], object], calls: int, before: Callable[[], object] | None = None):
    """Microseconds of each of ``calls`` calls of ``fn``; ``before`` runs untimed first."""
    values = []
    for _ in range(calls):
        if before is not None:
            before()
        started = time.perf_counter()
        fn()
        values.append((time.perf_counter() - started) * 1e6)
    return values


def auth_in_process(keys: Keys, calls: int) -> list[tuple[str, list[float]]]:
    """``auth.check`` warm and cold, a valid and an unknown key, and the parts of a check."""
    from django.core.cache import cache

    from apps.keys import auth, key_cache, tokens
    from apps.keys.models import ApiKey

    assert auth.check(keys.valid)[0] is not None, "the benchmark key does not authenticate"
    secret = tokens.parse(keys.valid)[1]
    unknown_id = tokens.parse(keys.unknown)[0]
    primed = [0.0]

    def keep_warm():
        """The entry lives one second: refill it (untimed) well before it expires."""
        if time.monotonic() - primed[0] > 0.5:
            auth.forget(keys.public_id)
            auth.check(keys.valid)
            primed[0] = time.monotonic()

    def keep_unknown_warm():
        if time.monotonic() - primed[0] > 0.5:
            auth.forget(unknown_id)
            auth.check(keys.unknown)
            primed[0] = time.monotonic()

    cases = [
        ("check(valid key), warm: process entry", lambda: auth.check(keys.valid), keep_warm),
        (
            "check(valid key), cold: miss -> PostgreSQL",
            lambda: auth.check(keys.valid),
            lambda: auth.forget(keys.public_id),
        ),
        (
            "check(unknown key), warm: 'unknown' kept",
            lambda: auth.check(keys.unknown),
            keep_unknown_warm,
        ),
        (
            "check(unknown key), cold: miss -> PostgreSQL",
            lambda: auth.check(keys.unknown),
            lambda: auth.forget(unknown_id),
        ),
        ("check(malformed key): no lookup", lambda: auth.check("aip_nope"), None),
        (
            "  part: key_cache.get (copies of the key and its team)",
            lambda: key_cache.get(keys.public_id),
            keep_warm,
        ),
        (
            "  part: key_cache.forget (local drop + Redis PUBLISH)",
            lambda: key_cache.forget(keys.public_id),
            None,
        ),
        (
            "  part: ApiKey query by public_id (PostgreSQL)",
            lambda: ApiKey.objects.filter(public_id=keys.public_id).first(),
            None,
        ),
        ("  part: tokens.hash_secret (HMAC-SHA256)", lambda: tokens.hash_secret(secret), None),
        (
            "  part: cache.add last-used guard (Redis SET NX)",
            lambda: cache.add(f"keys:apikey-used:{keys.public_id}", 1, 60),
            None,
        ),
    ]
    results = []
    for label, fn, before in cases:
        primed[0] = 0.0
        time_us(fn, 50, before)  # warm-up: connections open, code paths loaded
        results.append((label, time_us(fn, calls, before)))
    return results


async def auth_over_http(args, web_url: str, keys: Keys, pids: dict[str, int]) -> list[Phase]:
    import httpx2 as httpx

    endpoints = [
        ("GET /healthz (no auth)", "/healthz", None, 200),
        ("GET /v1/models, no key (401 before any lookup)", "/v1/models", None, 401),
        ("GET /v1/models, unknown key (401 after lookup)", "/v1/models", keys.unknown, 401),
        ("GET /v1/models, valid key (200, lists models)", "/v1/models", keys.valid, 200),
    ]
    n = args.http_concurrency
    limits = httpx.Limits(max_connections=n + 5, max_keepalive_connections=n)
    phases = []
    async with httpx.AsyncClient(base_url=web_url, limits=limits, timeout=args.timeout) as http:
        for label, path, key, expected in endpoints:
            headers = {"Authorization": f"Bearer {key}"} if key else {}

            async def one(_i, path=path, headers=headers, expected=expected):
                sample = HttpSample()
                started = time.perf_counter()
                try:
                    answer = await http.get(path, headers=headers)
                    sample.ms = (time.perf_counter() - started) * 1000
                    if answer.status_code != expected:
                        sample.error = f"{answer.status_code}: {answer.text[:150]}"
                except Exception as exc:
                    sample.error = f"{type(exc).__name__}: {exc}"[:200]
                return sample

            await closed_loop(n, 100, one)  # warm-up
            phases.append(await measured(Phase(label, n), args.http_requests, one, pids))
    return phases


@dataclass
class HttpSample:
    ms: float | None = None
    error: str = ""


# --- part 2: chat completions, direct and through the gateway -----------------------


@dataclass
class ChatSample:
    wall_start: float = 0.0
    total_ms: float | None = None  # the whole response (non-streamed) or the stream's end
    first_ms: float | None = None  # streamed: the first chunk with content
    wall_first: float | None = None
    wall_end: float | None = None
    run_id: int | None = None
    error: str = ""


class Target:
    """Where the SDK sends chat completions: the simulator, or the gateway with a key."""

    def __init__(self, name: str, base_url: str, api_key: str, model: str, args, connections):
        self.name = name
        self.model = model
        self.timeout = args.timeout
        self.client = openai_client(base_url, api_key, connections, args.timeout)

    async def one(self, stream: bool, label: str) -> ChatSample:
        sample = ChatSample(wall_start=time.time())
        started = time.perf_counter()
        create = self.client.chat.completions.with_raw_response.create
        messages = [{"role": "user", "content": label}]
        try:
            async with asyncio.timeout(self.timeout):
                if not stream:
                    raw = await create(model=self.model, messages=messages)
                    completion = raw.parse()
                    sample.total_ms = (time.perf_counter() - started) * 1000
                    if not completion.choices or not completion.choices[0].message.content:
                        sample.error = "empty completion"
                else:
                    raw = await create(
                        model=self.model,
                        messages=messages,
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                    usage = None
                    async for chunk in raw.parse():
                        content = chunk.choices and chunk.choices[0].delta.content
                        if content and sample.first_ms is None:
                            sample.first_ms = (time.perf_counter() - started) * 1000
                            sample.wall_first = time.time()
                        usage = chunk.usage or usage
                    sample.total_ms = (time.perf_counter() - started) * 1000
                    if sample.first_ms is None:
                        sample.error = "no content in the stream"
                    elif usage is None:
                        sample.error = "no usage chunk (include_usage)"
                sample.wall_end = time.time()
                run_id = raw.headers.get("x-portal-run-id")
                sample.run_id = int(run_id) if run_id else None
        except TimeoutError:
            sample.error = f"no answer within {self.timeout:g}s"
        except Exception as exc:
            elapsed = (time.perf_counter() - started) * 1000
            sample.error = f"{type(exc).__name__}: {exc} ({elapsed:.0f} ms)"[:240]
        return sample

    async def close(self) -> None:
        await self.client.close()


@dataclass
class ChatPhase(Phase):
    target: str = ""
    stream: bool = False


async def chat(args, targets: list[Target], pids: dict[str, int]) -> list[ChatPhase]:
    phases = []
    for n in args.concurrency:
        total = requests_for(args, n)
        for stream in (False, True):
            for target in targets:
                mode = "streamed" if stream else "non-streamed"

                async def one(i, target=target, stream=stream, n=n):
                    return await target.one(stream, f"bench {target.name} {n}-{i}")

                await closed_loop(n, n, one)  # warm-up: N connections open, N runs done
                await asyncio.sleep(0.3)
                phase = ChatPhase(f"{mode} {target.name}", n, target=target.name, stream=stream)
                phases.append(await measured(phase, total, one, pids))
    return phases


# --- where the gateway's time goes ------------------------------------------------------


STAGES = [
    ("to_row", "request sent -> run row created (web: key, body, limits, INSERT)"),
    ("queue", "row created -> worker claimed (commit, publish, broker, claim)"),
    ("pre_call", "claimed -> attempt started"),
    ("call", "attempt - configured simulator time (SDK, HTTP, sim overshoot)"),
    ("first", "streamed: first content at client - (attempt start + TTFT)"),
    ("finish", "attempt ended -> run finished_at (flush, lock row)"),
    ("deliver", "finished_at -> client has the end (relay, web, HTTP)"),
]


def stages(phase: ChatPhase, args) -> dict[str, list[float]]:
    """Per stage, the ms of each request of a gateway phase, from the runs' stored times."""
    by_id = {s.run_id: s for s in phase.ok if s.run_id is not None}
    stored = run_times(by_id)
    sim_ms = simulated_ms(args)
    out: dict[str, list[float]] = {key: [] for key, _label in STAGES}
    for run_id, sample in by_id.items():
        run = stored.get(run_id)
        if run is None or run.started is None or run.finished is None or not run.attempts:
            continue
        values = {
            "to_row": run.created - sample.wall_start,
            "queue": run.started - run.created,
            "pre_call": run.first_attempt_started - run.started,
            "call": run.last_attempt_finished - run.last_attempt_started - sim_ms / 1000,
            "finish": run.finished - run.last_attempt_finished,
            "deliver": sample.wall_end - run.finished,
        }
        if sample.wall_first is not None:
            values["first"] = sample.wall_first - run.last_attempt_started - args.sim_ttft_ms / 1000
        for key, value in values.items():
            out[key].append(value * 1000)
    return out


# --- report -------------------------------------------------------------------------------


def report_auth(in_process, load: float, http_phases: list[Phase], args) -> None:
    print()
    print(
        f"1a. apps.keys.auth.check(raw) in this process, real Redis cache and PostgreSQL "
        f"(µs per call, {args.auth_calls} calls per case; load {load:.1f} at the start)"
    )
    rows = [
        [label, str(len(v)), pct(v, 50), pct(v, 99), fmt(statistics.fmean(v))]
        for label, v in in_process
    ]
    print_table(["case", "calls", "p50 µs", "p99 µs", "mean µs"], rows, align_left=1)

    print()
    print(
        f"1b. over HTTP (uvicorn, one process), {args.http_concurrency} concurrent callers, "
        f"{args.http_requests} requests each (ms; web/client CPU = ms of CPU per request in "
        "the web process / this one)"
    )
    base = percentile([s.ms for s in http_phases[0].ok], 50) if http_phases else None
    rows = []
    for phase in http_phases:
        ms = [s.ms for s in phase.ok]
        p50 = percentile(ms, 50)
        rows.append(
            [
                phase.label,
                str(len(phase.samples)),
                str(len(phase.errors)),
                phase.rate,
                fmt(p50, 2),
                pct(ms, 99, 2),
                fmt(p50 - base, 2) if p50 is not None and base is not None else "-",
                phase.cpu_ms_per_request("web"),
                phase.cpu_ms_per_request("bench client"),
                f"{phase.load:.1f}",
            ]
        )
    headers = ["endpoint", "requests", "errors", "req/s", "p50", "p99", "p50 - healthz"]
    headers += ["web CPU", "client CPU", "load"]
    print_table(headers, rows, align_left=1)


def report_chat(phases: list[ChatPhase], args, worker_c: int) -> None:
    sim_ms = simulated_ms(args)
    print()
    print(
        f"2. chat completions with the openai SDK, direct to the simulator vs through the "
        f"gateway (model = an assistant's slug; worker -P threads -c {worker_c})"
    )
    print(
        f"simulator: ttft {args.sim_ttft_ms:g} ms + {args.sim_tokens} tokens at "
        f"{args.sim_tps:g} tok/s = {sim_ms:.1f} ms configured per reply; N callers in a "
        "closed loop; latency in ms; streamed: first = first content chunk, end = stream end"
    )
    print()
    rows = []
    for p in phases:
        total = [s.total_ms for s in p.ok]
        first = [s.first_ms for s in p.ok if s.first_ms is not None]
        rows.append(
            [
                "streamed" if p.stream else "non-streamed",
                str(p.n),
                p.target,
                str(len(p.samples)),
                str(len(p.errors)),
                f"{p.wall_s:.2f}",
                p.rate,
                pct(first, 50) if p.stream else "",
                pct(first, 99) if p.stream else "",
                pct(total, 50),
                pct(total, 99),
                f"{p.load:.1f}",
            ]
        )
    headers = ["mode", "N", "target", "requests", "errors", "wall s", "req/s"]
    headers += ["first p50", "first p99", "end p50", "end p99", "load"]
    print_table(headers, rows, align_left=3)

    print()
    print("added by the gateway = gateway - direct, same mode and N (ms; req/s as gateway/direct)")
    pairs = {}
    for p in phases:
        pairs.setdefault((p.stream, p.n), {})[p.target] = p
    rows = []
    for (stream, n), pair in pairs.items():
        direct, gateway = pair.get("direct"), pair.get("gateway")
        if direct is None or gateway is None:
            continue

        def added(attr, q, direct=direct, gateway=gateway):
            values = [
                percentile([getattr(s, attr) for s in p.ok if getattr(s, attr) is not None], q)
                for p in (gateway, direct)
            ]
            return "-" if None in values else fmt(values[0] - values[1])

        ratio = (
            f"{(len(gateway.ok) / gateway.wall_s) / (len(direct.ok) / direct.wall_s):.2f}"
            if gateway.wall_s and direct.wall_s and direct.ok
            else "-"
        )
        rows.append(
            [
                "streamed" if stream else "non-streamed",
                str(n),
                added("first_ms", 50) if stream else "",
                added("first_ms", 99) if stream else "",
                added("total_ms", 50),
                added("total_ms", 99),
                ratio,
            ]
        )
    headers = ["mode", "N", "first p50", "first p99", "end p50", "end p99", "req/s ratio"]
    print_table(headers, rows, align_left=1)

    print()
    print("CPU per request during each series (ms; PostgreSQL and Redis not counted):")
    rows = []
    for p in phases:
        cells = ["streamed" if p.stream else "non-streamed", str(p.n), p.target]
        cells += [p.cpu_ms_per_request(name) for name in PROCESSES]
        total = sum(p.cpu_s.get(name, 0.0) for name in PROCESSES)
        cells.append(fmt(total * 1000 / len(p.samples)) if p.samples else "-")
        cells.append(fmt(total / p.wall_s, 2) if p.wall_s else "-")
        rows.append(cells)
    print_table(["mode", "N", "target", *PROCESSES, "total", "cores busy"], rows, align_left=3)

    gateway = [p for p in phases if p.target == "gateway"]
    if gateway:
        print()
        print("where the gateway's time goes, from the runs' stored timestamps (p50 / p99, ms):")
        split = [(p, stages(p, args)) for p in gateway]
        rows = []
        for key, label in STAGES:
            cells = [label]
            for _p, values in split:
                cells.append(
                    f"{pct(values[key], 50)} / {pct(values[key], 99)}" if values[key] else ""
                )
            rows.append(cells)
        cells = [f"(ends delivered > {LATE_S:g} s after finished_at: lost run.done?)"]
        cells += [
            str(sum(1 for v in values["deliver"] if v > LATE_S * 1000)) for _p, values in split
        ]
        rows.append(cells)
        headers = ["stage", *(f"{'stream' if p.stream else 'plain'} N={p.n}" for p, _v in split)]
        print_table(headers, rows, align_left=1)

    errors = [(p, s) for p in phases for s in p.errors]
    if errors:
        print()
        print(f"errors ({len(errors)}), first few:")
        for p, s in errors[:8]:
            print(f"  {p.label} N={p.n}: {s.error}")


# --- main -----------------------------------------------------------------------------------


def make_keys(seed_) -> tuple[Keys, str]:
    """An assistant on the simulator backend and a chat+read key; (keys, assistant slug)."""
    from django.contrib.auth import get_user_model

    from apps.assistants.services import assistant_create
    from apps.keys import tokens
    from apps.keys.services import key_create
    from apps.teams.models import Team

    team = Team.objects.get(slug=seed_.team_slug)
    user = get_user_model().objects.get(email=seed_.email)
    assistant = assistant_create(
        team=team, actor=user, name="Gateway bench", backend=seed_.backend_id, model=MODEL
    )
    key, raw = key_create(team=team, actor=user, name="gateway bench", scopes=["chat", "read"])
    unknown = tokens.format_key(tokens.generate_public_id(), tokens.generate_secret())
    return Keys(valid=raw, unknown=unknown, public_id=key.public_id), assistant.slug


async def measure(args, sim_url: str, web_url: str, keys: Keys, slug: str, pids, worker_c):
    http_phases: list[Phase] = []
    if not args.skip_auth:
        print(f"1b. HTTP, {args.http_concurrency} concurrent callers")
        http_phases = await auth_over_http(args, web_url, keys, pids)
    chat_phases: list[ChatPhase] = []
    if not args.skip_chat:
        biggest = max(args.concurrency)
        targets = [
            Target("direct", sim_url, "not-needed", MODEL, args, biggest),
            Target("gateway", f"{web_url}/v1", keys.valid, slug, args, biggest),
        ]
        try:
            print("2. chat completions")
            chat_phases = await chat(args, targets, pids)
        finally:
            for target in targets:
                await target.close()
    return http_phases, chat_phases


def bench(args: argparse.Namespace, stack: Stack) -> bool:
    from django.db import connection

    logging.getLogger("apps.keys").setLevel(logging.WARNING)  # "api key created"
    worker_c = args.worker_concurrency or max(args.concurrency)
    note_connections(stack.max_connections, worker_c)
    sim_url, web_url = stack.start(worker_c)
    keys, slug = make_keys(seed(sim_url))
    print(f"simulator {sim_url}, web {web_url}, worker -c {worker_c}, logs in {stack.log_dir}")
    print(f"assistant {slug!r}, key aip_{keys.public_id}_...")
    in_process = []
    auth_load = os.getloadavg()[0]
    if not args.skip_auth:
        print(f"1a. auth.check in process, {args.auth_calls} calls per case")
        in_process = auth_in_process(keys, args.auth_calls)
    connection.close()  # no connection held idle while the requests run
    started = time.monotonic()
    http_phases, chat_phases = asyncio.run(
        measure(args, sim_url, web_url, keys, slug, stack.pids, worker_c)
    )
    print(f"measured in {time.monotonic() - started:.0f}s; {os.cpu_count()} CPUs")
    if not args.skip_auth:
        report_auth(in_process, auth_load, http_phases, args)
    if chat_phases:
        report_chat(chat_phases, args, worker_c)
    return not any(p.errors for p in [*http_phases, *chat_phases])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stack_run(args, lambda stack: bench(args, stack))


if __name__ == "__main__":
    sys.exit(main())
