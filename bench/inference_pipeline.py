"""Benchmark the inference pipeline end to end and print a table.

web (REST API on uvicorn) -> Celery worker (threads, Redis broker) -> the
project's OpenAI-compatible simulator (its own process, fixed latency), and the
run's stream back over the channel layer to a WebSocket.

For each concurrency N a batch of N runs is started at once: POST
``/api/v1/teams/{slug}/runs``, then listen on ``/ws/runs/{id}/`` until
``run.done``. End-to-end time is from just before the POST to the receipt of
``run.done``; "added" time is that minus the simulator's configured time for the
request (``ttft + (tokens - 1) / tps``: the first token comes after the TTFT,
each further one after a gap). Timestamps the pipeline stores (created,
started, attempt start/end, finished) split the added time into stages.

Authentication is the browser's: the script logs in over HTTP through the
login form (``/accounts/login/``), keeps the session cookie, and sends the
CSRF token as ``X-CSRFToken`` on API writes and the cookies on the WebSocket
handshake.

Run: ``.venv/bin/python bench/inference_pipeline.py --help``. Needs PostgreSQL
and Redis (DATABASE_URL, REDIS_URL). It is a measurement: it exits 0 when a
target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field

from stack import (
    MODEL,
    Seed,
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

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
TARGET_ADDED_P50_MS = 10.0
TARGET_ADDED_P99_MS = 50.0
TARGET_N = 10
TARGET_STREAMS = 100


# --- command line -------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Drive N concurrent runs through web -> Celery worker -> simulator and report "
            "the latency the pipeline adds on top of the simulator's own."
        )
    )
    parser.add_argument(
        "--concurrency",
        type=int_list,
        default=[1, 10, 100],
        help="comma-separated batch sizes (default 1,10,100)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="batches per concurrency (default 3 for N<=10, 1 above)",
    )
    parser.add_argument("--warmup", type=int, default=10, help="runs in the warm-up batch")
    add_stack_arguments(
        parser,
        default_database_url=DEFAULT_DATABASE_URL,
        default_redis_url=DEFAULT_REDIS_URL,
        timeout_help="seconds one run may take before it counts as an error",
    )
    return parser.parse_args(argv)


# --- the measured runs --------------------------------------------------------------


@dataclass
class Sample:
    n: int
    index: int
    run_id: int | None = None
    wall_start: float = 0.0  # time.time() just before the POST
    t_start: float = 0.0  # perf_counter() just before the POST
    post_ms: float | None = None
    ws_open_ms: float | None = None  # from the POST's answer to the WebSocket's first message
    e2e_ms: float | None = None
    wall_done: float | None = None
    status: str = ""
    error: str = ""
    stages: dict[str, float] = field(default_factory=dict)
    attempts: int = 0
    db_status: str = ""  # the run's status in the database after the batches


class Client:
    def __init__(self, base_url: str, seed_: Seed, timeout: float, max_connections: int):
        import httpx2 as httpx

        self.base_url = base_url
        self.ws_base = "ws" + base_url.removeprefix("http")
        self.seed = seed_
        self.timeout = timeout
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections + 10, max_keepalive_connections=max_connections
            ),
        )
        self.csrf = ""
        self.cookie_header = ""

    async def login(self) -> None:
        """The login form, as a browser: GET for the CSRF cookie, POST the credentials."""
        page = await self.http.get("/accounts/login/")
        page.raise_for_status()
        token = self.http.cookies.get("csrftoken")
        answer = await self.http.post(
            "/accounts/login/",
            data={
                "username": self.seed.email,
                "password": self.seed.password,
                "csrfmiddlewaretoken": token,
            },
            headers={"X-CSRFToken": token},
        )
        if answer.status_code != 302 or "sessionid" not in self.http.cookies:
            raise RuntimeError(f"login failed: {answer.status_code} {answer.text[:300]}")
        self.csrf = self.http.cookies.get("csrftoken")  # rotated at login
        self.cookie_header = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())

    async def close(self) -> None:
        await self.http.aclose()

    async def run(self, sample: Sample) -> Sample:
        from websockets.asyncio.client import connect

        body = {
            "backend": self.seed.backend_id,
            "model": MODEL,
            "messages": [{"role": "user", "content": f"bench {sample.n}-{sample.index}"}],
        }
        sample.wall_start = time.time()
        sample.t_start = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self.http.post(
                    f"/api/v1/teams/{self.seed.team_slug}/runs",
                    json=body,
                    headers={"X-CSRFToken": self.csrf},
                )
                t_posted = time.perf_counter()
                sample.post_ms = (t_posted - sample.t_start) * 1000
                if answer.status_code != 202:
                    sample.error = f"POST {answer.status_code}: {answer.text[:200]}"
                    return sample
                sample.run_id = answer.json()["id"]
                async with connect(
                    f"{self.ws_base}/ws/runs/{sample.run_id}/",
                    origin=self.base_url,
                    additional_headers={"Cookie": self.cookie_header},
                    compression=None,
                    open_timeout=self.timeout,
                ) as ws:
                    async for raw in ws:
                        message = json.loads(raw)
                        if sample.ws_open_ms is None:
                            sample.ws_open_ms = (time.perf_counter() - t_posted) * 1000
                        if message.get("type") == "run.done":
                            sample.e2e_ms = (time.perf_counter() - sample.t_start) * 1000
                            sample.wall_done = time.time()
                            sample.status = message["status"]
                            if sample.status != "succeeded":
                                sample.error = f"{sample.status}: {message.get('error', '')}"
                            break
                    else:
                        sample.error = "WebSocket closed before run.done"
        except TimeoutError:
            sample.error = f"no run.done within {self.timeout:g}s"
        except Exception as exc:
            elapsed = (time.perf_counter() - sample.t_start) * 1000
            sample.error = f"{type(exc).__name__}: {exc} ({elapsed:.0f} ms after the POST)"[:200]
        return sample


class DirectSimulator:
    """Streams straight to the simulator with the openai SDK: its own time, no portal.

    One client for the whole benchmark, so its connections are warm like the worker's.
    """

    def __init__(self, base_url: str, max_connections: int):
        self.client = openai_client(base_url, "not-needed", max_connections)

    async def one(self, label: str) -> float:
        started = time.perf_counter()
        stream = await self.client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": label}], stream=True
        )
        async for _chunk in stream:
            pass
        return (time.perf_counter() - started) * 1000

    async def batch(self, n: int) -> list[float]:
        return list(await asyncio.gather(*(self.one(f"direct {n}-{i}") for i in range(n))))

    async def close(self) -> None:
        await self.client.close()


@dataclass
class Level:
    n: int
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0
    direct_ms: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)


async def measure(
    args: argparse.Namespace, web_url: str, seed_: Seed, sim_url: str, pids: dict[str, int]
) -> list[Level]:
    biggest = max(args.concurrency)
    client = Client(web_url, seed_, args.timeout, biggest)
    direct = DirectSimulator(sim_url, biggest)
    levels: list[Level] = []
    try:
        await client.login()
        print(f"logged in as {seed_.email} over HTTP; warming up")
        first = await client.run(Sample(0, 0))
        warm = await asyncio.gather(*(client.run(Sample(0, i + 1)) for i in range(args.warmup)))
        failed = [s.error for s in [first, *warm] if s.error]
        if len(failed) == 1 + len(warm):
            raise RuntimeError(f"every warm-up run failed; the first: {failed[0]}")
        if failed:
            print(f"warm-up errors ({len(failed)}): {failed[0]}")
        await direct.batch(min(10, biggest))
        for n in args.concurrency:
            rounds = args.rounds or (3 if n <= 10 else 1)
            level = Level(n)
            for r in range(rounds):
                await asyncio.sleep(0.5)
                level.direct_ms += await direct.batch(n)
                await asyncio.sleep(0.5)
                level.load.append(os.getloadavg()[0])
                cpu_before = cpu_snapshot(pids)
                started = time.perf_counter()
                batch = [Sample(n, r * n + i) for i in range(n)]
                level.samples += await asyncio.gather(*(client.run(s) for s in batch))
                level.wall_s += time.perf_counter() - started
                cpu_spent(cpu_before, pids, level.cpu_s)
            errors = sum(1 for s in level.samples if s.error)
            print(f"N={n}: {len(level.samples)} runs in {level.wall_s:.2f}s, {errors} errors")
            levels.append(level)
    finally:
        await client.close()
        await direct.close()
    return levels


# --- stages from the stored timestamps ---------------------------------------------


STAGES = [
    ("post", "POST round trip (client)"),
    ("to_row", "request sent -> run row created"),
    ("queue", "row created -> worker claimed (commit, publish, broker, claim)"),
    ("pre_call", "claimed -> attempt started"),
    ("call", "attempt duration - simulator configured time (SDK, HTTP, sim jitter)"),
    ("finish", "attempt ended -> run finished_at (flush deltas, lock row)"),
    ("deliver", "finished_at -> run.done received (save, commit, relay, WebSocket)"),
]


def fill_stages(levels: list[Level], sim_ms: float) -> None:
    """Split each run's time using what the pipeline stored (same machine, same clock)."""
    samples = {s.run_id: s for level in levels for s in level.samples if s.run_id}
    stored = run_times(samples)
    for run_id, sample in samples.items():
        run = stored.get(run_id)
        sample.attempts = run.attempts if run is not None else 0
        sample.db_status = run.status if run is not None else "missing"
        if run is None or not run.attempts or sample.wall_done is None or run.started is None:
            continue
        attempt_ms = (run.last_attempt_finished - run.last_attempt_started) * 1000
        stages = sample.stages
        stages["post"] = sample.post_ms
        stages["to_row"] = (run.created - sample.wall_start) * 1000
        stages["queue"] = (run.started - run.created) * 1000
        stages["pre_call"] = (run.first_attempt_started - run.started) * 1000
        stages["call"] = attempt_ms - sim_ms
        stages["finish"] = (run.finished - run.last_attempt_finished) * 1000
        stages["deliver"] = (sample.wall_done - run.finished) * 1000
        stages["attempt_ms"] = attempt_ms


def peak_concurrent_attempts(level: Level) -> int:
    """Most attempts of this level in flight at once in the worker (from stored times)."""
    from apps.inference.models import RunAttempt

    ids = [s.run_id for s in level.samples if s.run_id]
    events = []
    for started, finished in RunAttempt.objects.filter(run_id__in=ids).values_list(
        "started_at", "finished_at"
    ):
        events += [(started, 1), (finished, -1)]
    peak = current = 0
    for _when, step in sorted(events, key=lambda e: (e[0], e[1])):
        current += step
        peak = max(peak, current)
    return peak


# --- report ---------------------------------------------------------------------------


def _ok(level: Level) -> list[Sample]:
    return [s for s in level.samples if not s.error and s.e2e_ms is not None]


def report(levels: list[Level], args, sim_ms: float, info: dict) -> None:
    print()
    print(
        f"Inference pipeline: POST /api/v1 (uvicorn) -> celery worker (-P threads -c "
        f"{info['worker_c']}, Redis) -> simulator (openai SDK) -> run.done on /ws/runs/<id>/"
    )
    print(
        f"simulator: ttft {args.sim_ttft_ms:g} ms + {args.sim_tokens} tokens at "
        f"{args.sim_tps:g} tok/s = {sim_ms:.1f} ms configured per run (ttft + (tokens-1)/tps); "
        f"relay interval {info['relay_ms']} ms; DEBUG={info['debug']}; {os.cpu_count()} CPUs; "
        f"settings {args.settings}"
    )
    print(
        f"targets: added p50 < {TARGET_ADDED_P50_MS:g} ms and added p99 < "
        f"{TARGET_ADDED_P99_MS:g} ms at N={TARGET_N}; {TARGET_STREAMS} concurrent streams "
        "held by one worker process without errors"
    )
    print("added = end-to-end - configured simulator time (ms)")
    print()
    rows = []
    for level in levels:
        ok = _ok(level)
        added = [s.e2e_ms - sim_ms for s in ok]
        e2e = [s.e2e_ms for s in ok]
        rows.append(
            [
                str(level.n),
                str(len(level.samples)),
                str(len(level.samples) - len(ok)),
                f"{level.wall_s:.2f}",
                f"{len(level.samples) / level.wall_s:.1f}" if level.wall_s else "-",
                pct(added, 50),
                pct(added, 95),
                pct(added, 99),
                pct(e2e, 50),
                pct(e2e, 99),
            ]
        )
    print_table(
        [
            "N",
            "runs",
            "errors",
            "wall s",
            "runs/s",
            "added p50",
            "added p95",
            "added p99",
            "e2e p50",
            "e2e p99",
        ],
        rows,
    )

    print()
    print(
        "the same runs against other baselines (ms): vs-attempt = e2e - the worker's "
        "measured attempt;\nvs-direct = e2e - p50 of N streams sent straight to the "
        "simulator just before the batch; load = 1-min load average at batch start"
    )
    rows = []
    for level in levels:
        ok = _ok(level)
        vs_attempt = [s.e2e_ms - s.stages["attempt_ms"] for s in ok if "attempt_ms" in s.stages]
        direct_p50 = percentile(level.direct_ms, 50)
        vs_direct = [s.e2e_ms - direct_p50 for s in ok] if direct_p50 is not None else []
        rows.append(
            [
                str(level.n),
                pct(level.direct_ms, 50),
                pct(level.direct_ms, 99),
                pct(vs_attempt, 50),
                pct(vs_attempt, 99),
                pct(vs_direct, 50),
                pct(vs_direct, 99),
                str(info["peaks"].get(level.n, 0)),
                " ".join(f"{x:.1f}" for x in level.load),
            ]
        )
    print_table(
        [
            "N",
            "sim direct p50",
            "sim direct p99",
            "vs-attempt p50",
            "vs-attempt p99",
            "vs-direct p50",
            "vs-direct p99",
            "peak in worker",
            "load",
        ],
        rows,
    )

    print()
    print(
        "CPU per run during the batches (ms of CPU time per run, by process; PostgreSQL and "
        "Redis not counted)\nand cores busy = that CPU / wall time:"
    )
    names = ["web", "worker", "simulator", "bench client"]
    rows = []
    for level in levels:
        runs = len(level.samples) or 1
        cells = [str(level.n)]
        cells += [fmt(level.cpu_s[n] * 1000 / runs) if n in level.cpu_s else "-" for n in names]
        total = sum(level.cpu_s.get(n, 0.0) for n in names)
        cells += [fmt(total * 1000 / runs), fmt(total / level.wall_s, 2) if level.wall_s else "-"]
        rows.append(cells)
    print_table(["N", *names, "total", "cores busy"], rows)

    print()
    print("where the time on top of the simulator goes (p50 / p99 per stage, ms):")
    stage_rows = []
    for key, label in STAGES:
        cells = [label]
        for level in levels:
            values = [s.stages[key] for s in level.samples if key in s.stages]
            cells.append(f"{pct(values, 50)} / {pct(values, 99)}")
        stage_rows.append(cells)
    cells = ["(simulator direct - configured: its own overshoot)"]
    for level in levels:
        over = [d - sim_ms for d in level.direct_ms]
        cells.append(f"{pct(over, 50)} / {pct(over, 99)}")
    stage_rows.append(cells)
    cells = ["(WebSocket first message after POST; in parallel)"]
    for level in levels:
        values = [s.ws_open_ms for s in level.samples if s.ws_open_ms is not None]
        cells.append(f"{pct(values, 50)} / {pct(values, 99)}")
    stage_rows.append(cells)
    cells = ["(runs with more than one attempt)"]
    for level in levels:
        cells.append(str(sum(1 for s in level.samples if s.attempts > 1)))
    stage_rows.append(cells)
    print_table(["stage", *(f"N={level.n}" for level in levels)], stage_rows, align_left=1)

    errors = [s for level in levels for s in level.samples if s.error]
    if errors:
        print()
        print(f"errors ({len(errors)}), first few:")
        for s in errors[:5]:
            print(f"  N={s.n} run {s.run_id}: {s.error}")
        states: dict[str, int] = {}
        for s in errors:
            key = s.db_status or "not created"
            states[key] = states.get(key, 0) + 1
        listed = ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
        print(f"  where those runs are in the database now: {listed}")

    print()
    by_n = {level.n: level for level in levels}
    target = by_n.get(TARGET_N)
    if target is None:
        print(f"targets at N={TARGET_N}: not measured (add {TARGET_N} to --concurrency)")
    else:
        added = [s.e2e_ms - sim_ms for s in _ok(target)]
        for name, p, limit in (("p50", 50, TARGET_ADDED_P50_MS), ("p99", 99, TARGET_ADDED_P99_MS)):
            value = percentile(added, p)
            verdict = "PASS" if value is not None and value < limit else "MISS"
            print(
                f"{verdict}  added {name} at N={TARGET_N}: {fmt(value)} ms "
                f"(target < {limit:g} ms; {len(added)} runs)"
            )
    streams = by_n.get(TARGET_STREAMS)
    if streams is None:
        print(f"target of {TARGET_STREAMS} streams: not measured")
    else:
        good = len(_ok(streams))
        peak = info["peaks"].get(TARGET_STREAMS, 0)
        verdict = "PASS" if good == len(streams.samples) and peak >= TARGET_STREAMS else "MISS"
        print(
            f"{verdict}  {TARGET_STREAMS} concurrent streams in one worker process: "
            f"{good}/{len(streams.samples)} succeeded, peak {peak} attempts in flight at once"
        )


# --- main -----------------------------------------------------------------------------------


def bench(args: argparse.Namespace, stack: Stack) -> bool:
    """Start the stack, measure, report; True when no run failed."""
    from django.conf import settings
    from django.db import connection

    worker_c = args.worker_concurrency or max(args.concurrency)
    note_connections(stack.max_connections, worker_c)
    sim_url, web_url = stack.start(worker_c)
    seed_ = seed(sim_url)
    connection.close()  # no connection held idle while the batches run
    print(f"simulator {sim_url}, web {web_url}, worker -c {worker_c}, logs in {stack.log_dir}")
    levels = asyncio.run(measure(args, web_url, seed_, sim_url, stack.pids))
    sim_ms = simulated_ms(args)
    fill_stages(levels, sim_ms)
    peaks = {level.n: peak_concurrent_attempts(level) for level in levels}
    info = {
        "worker_c": worker_c,
        "relay_ms": settings.INFERENCE_RELAY_INTERVAL_MS,
        "debug": settings.DEBUG,
        "peaks": peaks,
    }
    report(levels, args, sim_ms, info)
    return not any(s.error for level in levels for s in level.samples)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stack_run(args, lambda stack: bench(args, stack))


if __name__ == "__main__":
    sys.exit(main())
