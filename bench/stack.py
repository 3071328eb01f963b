"""The running portal that the benchmarks in this directory measure, and their shared helpers.

Every benchmark needs the same stack, each part in its own process as in
production: a migrated PostgreSQL database, uvicorn serving ``portal.asgi``, a
Celery worker on the Redis broker, and the project's OpenAI-compatible
simulator with a fixed latency; plus a user, a team and a backend on that
simulator. Starting and stopping those processes cleanly (Ctrl-C, SIGTERM,
a failure half-way) is the fiddly part, so it lives here once: a benchmark
adds its options with :func:`add_stack_arguments` and hands its body to
:func:`run`, which owns the processes, the logs and the exit code.

The percentile and table helpers are here too, so every benchmark reports
figures computed the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODEL = "sim-small"
BENCH_EMAIL = "bench@example.com"


# --- command line -------------------------------------------------------------


def int_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("expected positive integers, e.g. 1,10,100")
    return values


def add_stack_arguments(
    parser: argparse.ArgumentParser,
    *,
    default_database_url: str,
    default_redis_url: str,
    timeout_help: str,
) -> None:
    """The options every benchmark shares: the worker, the simulator, the services."""
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
    parser.add_argument("--timeout", type=float, default=60, help=timeout_help)
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL") or default_database_url
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or default_redis_url)
    parser.add_argument(
        "--settings",
        default="portal.settings",
        help="DJANGO_SETTINGS_MODULE for every process, e.g. a module that imports "
        "portal.settings and changes one thing, to compare (default portal.settings)",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the subprocess logs even on success"
    )


def simulated_ms(args: argparse.Namespace) -> float:
    """The simulator's configured time for one reply: the first token, then a gap per token."""
    return args.sim_ttft_ms + max(args.sim_tokens - 1, 0) * 1000 / args.sim_tps


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


def cpu_spent(before: dict[str, float], pids: dict[str, int], into: dict[str, float]) -> None:
    """Add the CPU seconds each process used since ``before`` to ``into``."""
    for name, value in cpu_snapshot(pids).items():
        if name in before:
            into[name] = into.get(name, 0.0) + value - before[name]


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


def note_connections(max_connections: int, worker_c: int) -> None:
    if worker_c + 10 > max_connections:
        print(
            f"note: PostgreSQL max_connections is {max_connections}: the worker holds one "
            f"connection per running run (up to {worker_c}) and the web one per request in "
            "flight, so runs may fail with 'too many clients'"
        )


def openai_client(base_url: str, api_key: str, max_connections: int, timeout: float = 60):
    """An ``AsyncOpenAI`` with no retries and a pool sized for ``max_connections`` at once."""
    import httpx2 as httpx
    import openai

    limits = httpx.Limits(
        max_connections=max_connections + 10, max_keepalive_connections=max_connections
    )
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key,
        max_retries=0,
        http_client=httpx.AsyncClient(limits=limits, timeout=timeout),
    )


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


# --- what the pipeline stored -------------------------------------------------------


@dataclass
class RunTimes:
    """One run's stored timestamps as epoch seconds (same machine, same clock as the client)."""

    status: str
    created: float
    started: float | None
    finished: float | None
    attempts: int
    first_attempt_started: float | None
    last_attempt_started: float | None
    last_attempt_finished: float | None


def run_times(run_ids) -> dict[int, RunTimes]:
    """The timestamps of these runs and of their attempts, read in two queries."""
    from apps.inference.models import ChatRun, RunAttempt

    ids = [int(i) for i in run_ids]
    tries: dict[int, list] = {}
    for attempt in RunAttempt.objects.filter(run_id__in=ids).order_by("number"):
        tries.setdefault(attempt.run_id, []).append(attempt)

    def ts(value) -> float | None:
        return None if value is None else value.timestamp()

    found = {}
    for run_id, run in ChatRun.objects.in_bulk(ids).items():
        attempts = tries.get(run_id, [])
        first, last = (attempts[0], attempts[-1]) if attempts else (None, None)
        found[run_id] = RunTimes(
            status=run.status,
            created=ts(run.created_at),
            started=ts(run.started_at),
            finished=ts(run.finished_at),
            attempts=len(attempts),
            first_attempt_started=ts(first.started_at) if first else None,
            last_attempt_started=ts(last.started_at) if last else None,
            last_attempt_finished=ts(last.finished_at) if last else None,
        )
    return found


# --- report helpers -------------------------------------------------------------------


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


def pct(values: list[float], p: float, digits: int = 1) -> str:
    return fmt(percentile(values, p), digits)


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


# --- the benchmark's life cycle -----------------------------------------------------------


class Stack:
    """What a benchmark body gets: the log directory, its subprocesses, the database's limit."""

    def __init__(self, args: argparse.Namespace, procs: Processes, max_connections: int):
        self.args = args
        self.procs = procs
        self.log_dir = procs.log_dir
        self.max_connections = max_connections

    def start(self, worker_c: int) -> tuple[str, str]:
        """Simulator, web and worker, in that order; returns (simulator URL, web URL)."""
        sim_url = start_simulator(self.procs, self.args)
        web_url = start_web(self.procs)
        start_worker(self.procs, worker_c)
        return sim_url, web_url

    @property
    def pids(self) -> dict[str, int]:
        return self.procs.pids


def _terminate_as_interrupt(signum, frame):
    """SIGTERM takes the Ctrl-C path (asyncio's handler while the batches run)."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def run(args: argparse.Namespace, body: Callable[[Stack], bool]) -> int:
    """Set up Django and the database, call ``body``, always stop what it started.

    ``body`` returns whether everything went without errors; the subprocess logs
    are deleted only then (unless ``--keep-logs``). Exit code: 0 when it returned,
    1 when it raised, 130 on Ctrl-C or SIGTERM.
    """
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
        # Logs of a run with errors are kept: they say why.
        ok = body(Stack(args, procs, max_connections))
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
