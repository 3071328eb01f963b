#!/usr/bin/env python3
"""The image's entrypoint: one image, every process, picked by name.

``entrypoint.py web`` (or ``worker``, ``beat``, ``relay``, ``bridge``,
``migrate``, ``simulator``, ...) replaces itself with that process, so the
server or worker gets the container's signals directly (tini is PID 1 in the
image). Compose services and Helm deployments name only a process here, never
a raw command line, so a flag changes in one place. Extra arguments after the
name are appended to the command. Configuration comes only from environment
variables (the README's configuration table).

The same file runs outside a container (the tests start every process with it
against real services): commands use this interpreter and the repository this
file lives in.

Other subcommands, for operators and orchestrators rather than as a process:

- ``processes`` lists the names this entrypoint knows (one per line, tab, summary);
- ``probe http PATH``, ``probe worker``, ``probe ready`` are the exec probes the
  Helm chart and ``compose.yaml`` use (see :func:`probe`);
- ``healthcheck`` is the image's ``HEALTHCHECK``: it probes whatever process the
  container runs.

``PORTAL_DRY_RUN=1`` prints the steps as JSON instead of running them.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MANAGE = [PYTHON, str(APP_DIR / "manage.py")]
TRUE = {"1", "true", "yes", "on"}

Step = list[str] | Callable[[], None]


def env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUE


# --- The processes -------------------------------------------------------------


def web() -> list[Step]:
    # uvicorn reads WEB_CONCURRENCY (worker processes) and FORWARDED_ALLOW_IPS itself.
    return [
        [
            PYTHON,
            "-m",
            "uvicorn",
            "portal.asgi:application",
            "--host",
            env("LISTEN_HOST", "0.0.0.0"),  # noqa: S104 - a container listens on all interfaces
            "--port",
            env("PORT", "8000"),
            "--lifespan",
            "off",
            "--ws",
            "websockets-sansio",
            "--proxy-headers",
            "--no-server-header",
        ]
    ]


def worker() -> list[Step]:
    return [
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "-Q",
            env("CELERY_QUEUES", "inference,default"),
            "-P",
            "threads",
            "-c",
            env("WORKER_CONCURRENCY", "100"),
            "-l",
            env("CELERY_LOG_LEVEL", "info"),
            "--without-gossip",
            "--without-mingle",
        ]
    ]


def beat() -> list[Step]:
    # The schedule file must be writable: /tmp is (an emptyDir under a read-only root).
    return [
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "portal",
            "beat",
            "-l",
            env("CELERY_LOG_LEVEL", "info"),
            "-s",
            env("CELERY_BEAT_SCHEDULE_FILE", "/tmp/celerybeat-schedule"),  # noqa: S108
        ]
    ]


def relay() -> list[Step]:
    return [[*MANAGE, "relay_events"]]


def bridge() -> list[Step]:
    return [[*MANAGE, "bridge_events"]]


def migrate() -> list[Step]:
    steps: list[Step] = [wait_for_database, [*MANAGE, "migrate", "--no-input"]]
    if env_flag("SEED_DEMO"):
        steps.append([*MANAGE, "seed_demo"])
    return steps


def simulator() -> list[Step]:
    return [
        [
            *MANAGE,
            "simulate_openai",
            "--host",
            env("LISTEN_HOST", "0.0.0.0"),  # noqa: S104
            "--port",
            env("SIMULATOR_PORT", "9100"),
        ]
    ]


def seed_simulator() -> list[Step]:
    return [wait_for_database, register_simulator_backend]


def manage() -> list[Step]:
    return [list(MANAGE)]


@dataclass(frozen=True)
class Process:
    summary: str
    steps: Callable[[], list[Step]]


PROCESSES: dict[str, Process] = {
    "web": Process("ASGI server (uvicorn): pages, /api/v1, /v1, WebSockets", web),
    "worker": Process("Celery worker for the inference and default queues", worker),
    "beat": Process("Celery beat: periodic sweeps (run exactly one)", beat),
    "relay": Process("transactional outbox -> Kafka (manage.py relay_events)", relay),
    "bridge": Process("Kafka consumer group -> browsers (manage.py bridge_events)", bridge),
    "migrate": Process("wait for the database, migrate; seed the demo when SEED_DEMO", migrate),
    "simulator": Process("the OpenAI-compatible simulator on SIMULATOR_PORT", simulator),
    "seed-simulator": Process(
        "register the simulator as a backend of the demo team (idempotent)", seed_simulator
    ),
    "manage": Process("any manage.py command: manage createsuperuser", manage),
}


# --- Steps that are not a command ----------------------------------------------


def _django() -> None:
    sys.path.insert(0, str(APP_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()


def wait_for_database() -> None:
    """Wait up to DATABASE_WAIT_SECONDS for the database: a fresh PostgreSQL (or a
    managed one still coming up) refuses connections for a while, and a migration
    that fails on the first try would fail the whole install."""
    _django()
    from django.db import connection
    from django.db.utils import OperationalError

    deadline = time.monotonic() + float(env("DATABASE_WAIT_SECONDS", "60"))
    while True:
        try:
            connection.ensure_connection()
            connection.close()
            return
        except OperationalError as error:
            if time.monotonic() > deadline:
                raise SystemExit(f"entrypoint: the database is unreachable: {error}") from None
            print("entrypoint: waiting for the database ...", file=sys.stderr, flush=True)
            time.sleep(1)


def register_simulator_backend() -> None:
    """Give the demo team an OpenAI-compatible backend pointing at the simulator."""
    _django()
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from apps.dashboard.management.commands.seed_demo import DEMO_TEAM
    from apps.inference.models import Backend, BackendKind
    from apps.inference.services import backend_create
    from apps.inference.simulator.app import SimulatorConfig
    from apps.teams.models import Team

    url = env("SIMULATOR_URL", "http://simulator:9100/v1")
    user = get_user_model().objects.filter(email__iexact=settings.DEMO_EMAIL).first()
    team = Team.objects.filter(memberships__user=user, name=DEMO_TEAM).first() if user else None
    if team is None:
        raise SystemExit(
            f"entrypoint: no demo team for {settings.DEMO_EMAIL}: run migrate with SEED_DEMO=true"
        )
    if Backend.objects.filter(team=team, name="Simulator").exists():
        print(f"entrypoint: {team.name} already has the Simulator backend")
        return
    backend_create(
        team=team,
        actor=user,
        kind=BackendKind.OPENAI_COMPATIBLE,
        name="Simulator",
        base_url=url,
        models=list(SimulatorConfig().models),
    )
    print(f"entrypoint: {team.name} has a Simulator backend at {url}")


# --- Probes ----------------------------------------------------------------------


def _http_ok(path: str, port: str) -> bool:
    # Django answers 400 to a Host it does not allow; localhost is allowed by default
    # and the chart adds it to ALLOWED_HOSTS. PROBE_HOST is for `helm test`, which asks
    # the Service from another pod.
    request = urllib.request.Request(
        f"http://{env('PROBE_HOST', '127.0.0.1')}:{port}{path}", headers={"Host": "localhost"}
    )
    try:
        with urllib.request.urlopen(request, timeout=float(env("PROBE_TIMEOUT", "4"))) as answer:  # noqa: S310
            return 200 <= answer.status < 300
    except (urllib.error.URLError, OSError) as error:
        print(f"probe: GET {path}: {error}", file=sys.stderr)
        return False


def _worker_alive() -> bool:
    """This container's Celery worker answers a ping over the broker.

    A broker that is down is not the worker's fault: restarting the worker would
    not help, so the probe passes and readiness (``probe ready``) reports it.
    """
    sys.path.insert(0, str(APP_DIR))
    from portal.celery import app

    try:
        app.connection_for_write().ensure_connection(max_retries=1, timeout=3)
    except Exception as error:
        print(f"probe: broker unreachable ({error}); not restarting the worker", file=sys.stderr)
        return True
    node = f"celery@{socket.gethostname()}"
    replies = app.control.ping(destination=[node], timeout=float(env("PROBE_TIMEOUT", "4")))
    if not replies:
        print(f"probe: {node} did not answer a ping", file=sys.stderr)
    return bool(replies)


def _ready() -> bool:
    """The same checks as ``/readyz``, for processes that serve no HTTP."""
    _django()
    from apps.core.health import run_checks

    checks = run_checks()
    failed = {name: result for name, result in checks.items() if result not in {"ok", "skipped"}}
    print(json.dumps({"checks": checks}))
    return not failed


def probe(args: list[str]) -> int:
    """``probe http PATH [PORT]`` | ``probe worker`` | ``probe ready``; exit 0 when healthy."""
    kind = args[0] if args else ""
    if kind == "http" and len(args) >= 2:
        return 0 if _http_ok(args[1], args[2] if len(args) > 2 else env("PORT", "8000")) else 1
    if kind == "worker":
        return 0 if _worker_alive() else 1
    if kind == "ready":
        return 0 if _ready() else 1
    print("usage: entrypoint.py probe http PATH [PORT] | worker | ready", file=sys.stderr)
    return 64


def healthcheck() -> int:
    """Docker's HEALTHCHECK: probe the process this container was started as."""
    state = os.environ.get("PORTAL_PROCESS_FILE", "")
    process = Path(state).read_text().strip() if state and Path(state).exists() else ""
    if process == "web":
        return probe(["http", "/healthz"])
    if process == "simulator":
        return probe(["http", "/v1/models", env("SIMULATOR_PORT", "9100")])
    if process == "worker":
        return probe(["worker"])
    return 0  # beat, relay, bridge: the container stops when the process does


# --- Running ---------------------------------------------------------------------


def usage() -> str:
    width = max(map(len, PROCESSES))
    lines = [f"  {name:<{width}}  {p.summary}" for name, p in PROCESSES.items()]
    return (
        "usage: entrypoint.py PROCESS [ARGS...]\n\nprocesses:\n"
        + "\n".join(lines)
        + "\n\nalso: processes | probe http PATH [PORT] | probe worker | probe ready"
        + " | healthcheck\n"
    )


def describe(step: Step) -> list[str] | str:
    return step if isinstance(step, list) else step.__name__


def run(name: str, extra: list[str]) -> int:
    steps = PROCESSES[name].steps()
    if extra:
        last = steps[-1]
        if not isinstance(last, list):
            print(f"entrypoint: {name} takes no arguments", file=sys.stderr)
            return 64
        steps[-1] = [*last, *extra]
    if env_flag("PORTAL_DRY_RUN"):
        print(json.dumps({"process": name, "steps": [describe(s) for s in steps]}))
        return 0
    state = os.environ.get("PORTAL_PROCESS_FILE", "")
    if state:
        with contextlib.suppress(OSError):  # only the image's HEALTHCHECK reads it
            Path(state).write_text(name)
    os.chdir(APP_DIR)
    *before, last = steps
    for step in before:
        if isinstance(step, list):
            subprocess.run(step, check=True)  # noqa: S603 - our own fixed commands
        else:
            step()
    if isinstance(last, list):
        sys.stdout.flush()
        os.execv(last[0], last)  # noqa: S606 - replace this process, keep PID and signals
    last()
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage(), end="")
        return 0 if argv else 64
    name, extra = argv[0], argv[1:]
    if name == "processes":
        for process, spec in PROCESSES.items():
            print(f"{process}\t{spec.summary}")
        return 0
    if name == "probe":
        return probe(extra)
    if name == "healthcheck":
        return healthcheck()
    if name not in PROCESSES:
        print(f"entrypoint: unknown process {name!r}\n\n{usage()}", file=sys.stderr, end="")
        return 64
    try:
        return run(name, extra)
    except subprocess.CalledProcessError as error:
        return error.returncode or 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
