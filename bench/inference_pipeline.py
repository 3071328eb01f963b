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
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
MODEL = "sim-small"
BENCH_EMAIL = "bench@example.com"
TARGET_ADDED_P50_MS = 10.0
TARGET_ADDED_P99_MS = 50.0
TARGET_N = 10
TARGET_STREAMS = 100


# --- command line -------------------------------------------------------------


def int_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("expected positive integers, e.g. 1,10,100")
    return values


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
    parser.add_argument(
        "--worker-concurrency",
        type=int,
        default=None,
        help="worker threads (-c); default: the largest N",
    )
    parser.add_argument("--sim-ttft-ms", type=float, default=200)
    parser.add_argument("--sim-tokens", type=int, default=20, help="tokens per reply")
    parser.add_argument("--sim-tps", type=float, default=200, help="tokens per second")
    parser.add_argument(
        "--relay-interval-ms",
        type=int,
        default=None,
        help="INFERENCE_RELAY_INTERVAL_MS for web and worker (default: the environment's, "
        "else the project's default)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60,
        help="seconds one run may take before it counts as an error",
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    parser.add_argument(
        "--settings",
        default="portal.settings",
        help="DJANGO_SETTINGS_MODULE for every process, e.g. a module that imports "
        "portal.settings and changes one thing, to compare (default portal.settings)",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the subprocess logs even on success"
    )
    return parser.parse_args(argv)


# --- environment and Django ----------------------------------------------------


def configure_environment(args: argparse.Namespace) -> None:
    """Before Django is imported: every process (this one and its children) gets this env."""
    os.environ["DJANGO_SETTINGS_MODULE"] = args.settings
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["REDIS_URL"] = args.redis_url
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    os.environ.pop("CELERY_BROKER_URL", None)  # the broker is REDIS_URL
    # Production-like: no per-query bookkeeping of DEBUG (overridable from the environment).
    os.environ.setdefault("DEBUG", "false")
    if args.relay_interval_ms is not None:
        os.environ["INFERENCE_RELAY_INTERVAL_MS"] = str(args.relay_interval_ms)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def ensure_database(url: str) -> int:
    """Create the benchmark database when it is missing (connecting to ``postgres``)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not found:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")
        max_connections = conn.execute("SHOW max_connections").fetchone()[0]
    return int(max_connections)


def migrate(log_dir: Path) -> None:
    log = log_dir / "migrate.log"
    with open(log, "w") as out:
        code = subprocess.call(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if code != 0:
        raise RuntimeError(f"manage.py migrate failed:\n{log.read_text()}")


# --- subprocesses ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{log.stem} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{log.stem}: nothing listens on 127.0.0.1:{port} after {timeout}s")


class Processes:
    """The subprocesses this script started; ``stop_all`` ends each by its own pid."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen, object]] = []

    def start(self, name: str, argv: list[str]) -> tuple[subprocess.Popen, Path]:
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "w")  # noqa: SIM115 - closed in stop_all()
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only us; we stop them in order
        )
        self.started.append((name, proc, log))
        return proc, log_path

    @property
    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc, _log in self.started}

    def stop_all(self) -> None:
        # A second Ctrl-C must not cut the clean-up short and leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for _name, proc, _log in reversed(self.started):
            if proc.poll() is None:
                proc.terminate()
        for _name, proc, log in reversed(self.started):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            log.close()
        self.started.clear()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of one process (all its threads), from /proc (Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    snapshot = {name: cpu_seconds(pid) for name, pid in pids.items()}
    snapshot["bench client"] = time.process_time()
    return {name: value for name, value in snapshot.items() if value is not None}


def start_simulator(procs: Processes, args: argparse.Namespace) -> str:
    port = free_port()
    proc, log = procs.start(
        "simulator",
        [
            sys.executable,
            "manage.py",
            "simulate_openai",
            "--port",
            str(port),
            "--models",
            MODEL,
            "--ttft-ms",
            str(args.sim_ttft_ms),
            "--tokens-per-second",
            str(args.sim_tps),
            "--default-tokens",
            str(args.sim_tokens),
        ],
    )
    wait_for_port(port, proc, log)
    return f"http://127.0.0.1:{port}/v1"


def start_web(procs: Processes) -> str:
    port = free_port()
    proc, log = procs.start(
        "web",
        [
            str(BIN / "uvicorn"),
            "portal.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--ws",
            "websockets-sansio",
            "--log-level",
            "warning",
        ],
    )
    wait_for_port(port, proc, log)
    return f"http://127.0.0.1:{port}"


def start_worker(procs: Processes, concurrency: int) -> None:
    from portal.celery import app

    app.control.purge()
    node = f"bench-{os.getpid()}@{socket.gethostname()}"
    proc, log = procs.start(
        "worker",
        [
            str(BIN / "celery"),
            "-A",
            "portal",
            "worker",
            "-Q",
            "inference,default",
            "-P",
            "threads",
            "-c",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "-l",
            "info",
            "-n",
            node,
        ],
    )
    deadline = time.monotonic() + 60
    while not app.control.ping(destination=[node], timeout=0.5):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the celery worker did not start:\n{log.read_text()}")


# --- seed -----------------------------------------------------------------------


@dataclass
class Seed:
    email: str
    password: str
    team_slug: str
    backend_id: int


def seed(sim_base_url: str) -> Seed:
    """A staff user owning a fresh team with a backend on this run's simulator."""
    from django.contrib.auth import get_user_model

    from apps.accounts.services import user_create
    from apps.inference.models import BackendKind
    from apps.inference.services import backend_create
    from apps.teams.services import team_create

    password = secrets.token_urlsafe(18)
    user = get_user_model().objects.filter(email=BENCH_EMAIL).first()
    if user is None:
        user = user_create(email=BENCH_EMAIL, password=password, display_name="Bench")
    else:
        user.set_password(password)
    user.is_staff = True
    user.save()
    team = team_create(name=f"bench {time.strftime('%Y%m%d-%H%M%S')}", created_by=user)
    backend = backend_create(
        team=team,
        actor=user,
        kind=BackendKind.OPENAI_COMPATIBLE,
        name="simulator",
        base_url=sim_base_url,
        models=[MODEL],
    )
    return Seed(BENCH_EMAIL, password, team.slug, backend.pk)


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
        import httpx2 as httpx
        import openai

        limits = httpx.Limits(
            max_connections=max_connections + 10, max_keepalive_connections=max_connections
        )
        self.client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key="not-needed",
            max_retries=0,
            http_client=httpx.AsyncClient(limits=limits, timeout=60),
        )

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
                for name, value in cpu_snapshot(pids).items():
                    if name in cpu_before:
                        spent = value - cpu_before[name]
                        level.cpu_s[name] = level.cpu_s.get(name, 0.0) + spent
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
    from apps.inference.models import ChatRun, RunAttempt

    samples = {s.run_id: s for level in levels for s in level.samples if s.run_id}
    runs = ChatRun.objects.in_bulk(list(samples))
    attempts: dict[int, list] = {}
    for attempt in RunAttempt.objects.filter(run_id__in=list(samples)).order_by("number"):
        attempts.setdefault(attempt.run_id, []).append(attempt)

    def ts(value: datetime) -> float:
        return value.timestamp()

    for run_id, sample in samples.items():
        run = runs.get(run_id)
        tries = attempts.get(run_id, [])
        sample.attempts = len(tries)
        sample.db_status = run.status if run is not None else "missing"
        if run is None or not tries or sample.wall_done is None or run.started_at is None:
            continue
        last = tries[-1]
        stages = sample.stages
        stages["post"] = sample.post_ms
        stages["to_row"] = (ts(run.created_at) - sample.wall_start) * 1000
        stages["queue"] = (ts(run.started_at) - ts(run.created_at)) * 1000
        stages["pre_call"] = (ts(tries[0].started_at) - ts(run.started_at)) * 1000
        stages["call"] = (ts(last.finished_at) - ts(last.started_at)) * 1000 - sim_ms
        stages["finish"] = (ts(run.finished_at) - ts(last.finished_at)) * 1000
        stages["deliver"] = (sample.wall_done - ts(run.finished_at)) * 1000
        stages["attempt_ms"] = (ts(last.finished_at) - ts(last.started_at)) * 1000


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


def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(headers: list[str], rows: list[list[str]], align_left: int = 0) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(
            c.ljust(w) if i < align_left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def _ok(level: Level) -> list[Sample]:
    return [s for s in level.samples if not s.error and s.e2e_ms is not None]


def _p(values: list[float], p: float) -> str:
    return fmt(percentile(values, p))


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
                _p(added, 50),
                _p(added, 95),
                _p(added, 99),
                _p(e2e, 50),
                _p(e2e, 99),
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
                _p(level.direct_ms, 50),
                _p(level.direct_ms, 99),
                _p(vs_attempt, 50),
                _p(vs_attempt, 99),
                _p(vs_direct, 50),
                _p(vs_direct, 99),
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
            cells.append(f"{_p(values, 50)} / {_p(values, 99)}")
        stage_rows.append(cells)
    cells = ["(simulator direct - configured: its own overshoot)"]
    for level in levels:
        over = [d - sim_ms for d in level.direct_ms]
        cells.append(f"{_p(over, 50)} / {_p(over, 99)}")
    stage_rows.append(cells)
    cells = ["(WebSocket first message after POST; in parallel)"]
    for level in levels:
        values = [s.ws_open_ms for s in level.samples if s.ws_open_ms is not None]
        cells.append(f"{_p(values, 50)} / {_p(values, 99)}")
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


def _terminate_as_interrupt(signum, frame):
    """SIGTERM takes the Ctrl-C path (asyncio's handler while the batches run)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_environment(args)
    # Ctrl-C stops cleanly even when started with SIGINT ignored (`cmd &` in a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    log_dir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    procs = Processes(log_dir)
    ok = False
    try:
        max_connections = ensure_database(args.database_url)
        import django

        django.setup()
        from django.conf import settings

        for name in ("httpx2", "httpx", "openai"):  # one INFO line per request otherwise
            logging.getLogger(name).setLevel(logging.WARNING)

        assert not settings.CELERY_TASK_ALWAYS_EAGER, "tasks must go to the worker"
        migrate(log_dir)
        worker_c = args.worker_concurrency or max(args.concurrency)
        if worker_c + 10 > max_connections:
            print(
                f"note: PostgreSQL max_connections is {max_connections}: the worker holds one "
                f"connection per running run (up to {worker_c}) and the web one per request in "
                "flight, so runs may fail with 'too many clients'"
            )
        sim_url = start_simulator(procs, args)
        web_url = start_web(procs)
        start_worker(procs, worker_c)
        seed_ = seed(sim_url)
        from django.db import connection

        connection.close()  # no connection held idle while the batches run
        print(f"simulator {sim_url}, web {web_url}, worker -c {worker_c}, logs in {log_dir}")
        pids = procs.pids
        levels = asyncio.run(measure(args, web_url, seed_, sim_url, pids))
        sim_ms = args.sim_ttft_ms + max(args.sim_tokens - 1, 0) * 1000 / args.sim_tps
        fill_stages(levels, sim_ms)
        peaks = {level.n: peak_concurrent_attempts(level) for level in levels}
        info = {
            "worker_c": worker_c,
            "relay_ms": settings.INFERENCE_RELAY_INTERVAL_MS,
            "debug": settings.DEBUG,
            "peaks": peaks,
        }
        report(levels, args, sim_ms, info)
        # Logs of a run with errors are kept: they say why.
        ok = not any(s.error for level in levels for s in level.samples)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the subprocesses", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        procs.stop_all()
        if ok and not args.keep_logs:
            for path in log_dir.iterdir():
                path.unlink()
            with contextlib.suppress(OSError):
                log_dir.rmdir()
        elif log_dir.exists():
            print(f"subprocess logs: {log_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
