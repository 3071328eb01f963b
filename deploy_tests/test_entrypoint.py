"""The image's entrypoint starts every process by name, against real services.

The entrypoint runs here outside a container, the way the image runs it:
``PORTAL_ENV=production`` with a real secret and Fernet key, static files
collected first, then ``docker/entrypoint.py <process>``. The services are the
suite's: PostgreSQL (a database of this module's own, created, migrated by the
entrypoint's ``migrate`` and dropped at the end), Redis at ``REDIS_URL`` and the
Kafka-protocol broker at ``KAFKA_BOOTSTRAP_SERVERS``. Each case waits for the
process to do its job: web answers ``/readyz``, the worker runs a task sent to it,
beat starts its schedule, the simulator answers and registers as a backend, and
relay and bridge talk to Kafka. What a container adds (tini as PID 1, the
non-root user, the read-only filesystem) is not exercised here.
"""

# ruff: noqa: S603 - starts our own entrypoint with a fixed argv

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg import sql

from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "docker" / "entrypoint.py"


def entrypoint(*args: str, env: dict | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, str(ENTRYPOINT), *args],
        capture_output=True,
        text=True,
        env=env if env is not None else dict(os.environ),
        timeout=timeout,
        cwd=ROOT,
    )


def dry_run(*args: str, **env: str) -> list:
    result = entrypoint(*args, env={**os.environ, "PORTAL_DRY_RUN": "1", **env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["steps"]


# --- Names to commands (no services needed) --------------------------------------


@pytest.mark.parametrize(
    ("process", "expected"),
    [
        ("web", ["-m", "uvicorn", "portal.asgi:application"]),
        ("worker", ["-m", "celery", "-A", "portal", "worker", "-Q", "inference,default"]),
        ("beat", ["-m", "celery", "-A", "portal", "beat"]),
        ("relay", [str(ROOT / "manage.py"), "relay_events"]),
        ("bridge", [str(ROOT / "manage.py"), "bridge_events"]),
        ("simulator", [str(ROOT / "manage.py"), "simulate_openai"]),
    ],
)
def test_each_process_name_runs_its_command(process, expected):
    (command,) = dry_run(process)
    assert command[0] == sys.executable
    assert command[1 : 1 + len(expected)] == expected


def test_migrate_waits_for_the_database_and_seeds_the_demo_on_request():
    assert dry_run("migrate") == [
        "wait_for_database",
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--no-input"],
    ]
    assert dry_run("migrate", SEED_DEMO="true")[-1][-1] == "seed_demo"


def test_settings_from_the_environment_and_extra_arguments_reach_the_command():
    (worker,) = dry_run("worker", "--max-tasks-per-child", "100", WORKER_CONCURRENCY="8")
    assert worker[worker.index("-c") + 1] == "8"
    assert worker[-2:] == ["--max-tasks-per-child", "100"]
    (web,) = dry_run("web", PORT="9000", LISTEN_HOST="127.0.0.1")
    assert web[web.index("--port") + 1] == "9000"
    assert web[web.index("--host") + 1] == "127.0.0.1"


def test_an_unknown_process_is_refused_by_name():
    result = entrypoint("wroker")
    assert result.returncode == 64
    assert "unknown process 'wroker'" in result.stderr
    assert "worker" in result.stderr  # the list of the names it knows


def test_the_readme_lists_every_process():
    listing = entrypoint("processes").stdout.splitlines()
    names = [line.split("\t")[0] for line in listing]
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Processes\n") :]
    table = section.split("\n## ", 1)[0]
    for name in names:
        assert f"`{name}`" in table, f"README's Processes table lacks {name}"


# --- The processes against real services -------------------------------------------


@dataclass
class Stack:
    env: dict
    tmp: Path
    database_url: str
    migrate_output: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    url = urlsplit(os.environ["DATABASE_URL"])
    name = f"{url.path.lstrip('/') or 'portal'}_entrypoint"
    admin_url = url._replace(path="/postgres").geturl()
    database_url = url._replace(path=f"/{name}").geturl()
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(drop)
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    tmp = tmp_path_factory.mktemp("entrypoint")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PORTAL_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "STATIC_ROOT": str(tmp / "static"),
        "LISTEN_HOST": "127.0.0.1",
        "CELERY_BEAT_SCHEDULE_FILE": str(tmp / "celerybeat-schedule"),
        "PORTAL_PROCESS_FILE": str(tmp / "process"),
        "DATABASE_POOL_MAX_SIZE": "4",
    }
    env.pop("DEBUG", None)
    try:
        migrate = entrypoint("migrate", env={**env, "SEED_DEMO": "true"}, timeout=300)
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        # What the image's build does before any process starts.
        collect = entrypoint("manage", "collectstatic", "--no-input", "-v", "0", env=env)
        assert collect.returncode == 0, collect.stderr
        yield Stack(env, tmp, database_url, migrate.stdout + migrate.stderr)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(drop)


class Running:
    def __init__(self, process: subprocess.Popen, log: Path):
        self.process = process
        self.log_path = log

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, condition, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"exited ({self.process.returncode}) before {what}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} after {timeout}s:\n{self.log()[-4000:]}")
            time.sleep(0.2)


@contextmanager
def started(stack: Stack, name: str, *args: str, **env: str):
    log = stack.tmp / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(ENTRYPOINT), name, *args],
            env={**stack.env, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            yield Running(process, log)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def http_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def test_migrate_built_the_schema_and_seeded_the_demo(stack):
    assert "Demo login: demo@example.com" in stack.migrate_output
    with psycopg.connect(stack.database_url) as connection:
        (users,) = connection.execute("SELECT count(*) FROM accounts_user").fetchone()
    assert users == 1
    again = entrypoint("migrate", env=stack.env)
    assert again.returncode == 0, again.stderr
    assert "No migrations to apply" in again.stdout


def test_web_answers_readyz_and_serves_the_collected_static_files(stack):
    port = free_port()
    with started(stack, "web", PORT=str(port)) as web:
        web.wait_until(lambda: http_get(port, "/readyz")[0] == 200, "200 on /readyz")
        checks = json.loads(http_get(port, "/readyz")[1])["checks"]
        kafka = "ok" if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else "skipped"
        assert checks == {"database": "ok", "redis": "ok", "kafka": kafka}

        status, page = http_get(port, "/accounts/login/")
        assert status == 200
        # Production settings: hashed names from the manifest collectstatic wrote.
        htmx = re.search(rb'src="(/static/vendor/htmx-[\d.]+\.min\.[0-9a-f]{12}\.js)"', page)
        assert htmx, page[:500]
        assert http_get(port, htmx.group(1).decode()) == (
            200,
            (stack.tmp / "static" / htmx.group(1).decode().removeprefix("/static/")).read_bytes(),
        )

        assert entrypoint("probe", "http", "/healthz", str(port), env=stack.env).returncode == 0
        healthcheck = entrypoint("healthcheck", env={**stack.env, "PORT": str(port)})
        assert healthcheck.returncode == 0, healthcheck.stderr
    assert (stack.tmp / "process").read_text() == "web"


def test_probe_ready_runs_the_readyz_checks(stack):
    ready = entrypoint("probe", "ready", env=stack.env)
    assert ready.returncode == 0, ready.stderr
    assert json.loads(ready.stdout)["checks"]["database"] == "ok"
    down = entrypoint("probe", "ready", env={**stack.env, "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert down.returncode == 1
    assert json.loads(down.stdout)["checks"]["redis"].startswith("unreachable")


def test_worker_picks_a_task(stack):
    from portal.celery import app

    node = f"celery@{socket.gethostname()}"
    with started(stack, "worker", WORKER_CONCURRENCY="2") as worker:
        worker.wait_until(
            lambda: app.control.ping(destination=[node], timeout=0.5), f"a ping answer from {node}"
        )
        task = app.send_task("apps.inference.tasks.sweep_stale_runs")
        worker.wait_until(
            lambda: re.search(rf"{task.id}\]? succeeded", worker.log()), f"task {task.id} run"
        )
        probe = entrypoint("probe", "worker", env=stack.env)
        assert probe.returncode == 0, probe.stderr


def test_beat_starts_its_schedule(stack):
    with started(stack, "beat") as beat:
        beat.wait_until(lambda: "beat: Starting" in beat.log(), "beat starting")
        beat.wait_until(
            lambda: any(stack.tmp.glob("celerybeat-schedule*")), "the schedule file in /tmp"
        )
        time.sleep(2)
        assert beat.process.poll() is None, beat.log()


def test_simulator_serves_and_registers_as_a_backend_of_the_demo_team(stack):
    port = free_port()
    with started(stack, "simulator", SIMULATOR_PORT=str(port)) as simulator:
        simulator.wait_until(lambda: http_get(port, "/v1/models")[0] == 200, "/v1/models")
        models = [m["id"] for m in json.loads(http_get(port, "/v1/models")[1])["data"]]
        url = f"http://127.0.0.1:{port}/v1"
        seeded = entrypoint("seed-simulator", env={**stack.env, "SIMULATOR_URL": url})
        assert seeded.returncode == 0, seeded.stderr
        with psycopg.connect(stack.database_url) as connection:
            row = connection.execute(
                "SELECT base_url, model_ids FROM inference_backend WHERE name = 'Simulator'"
            ).fetchone()
        assert row[0] == url
        assert sorted(row[1]) == sorted(models)
        again = entrypoint("seed-simulator", env={**stack.env, "SIMULATOR_URL": url})
        assert again.returncode == 0 and "already has" in again.stdout


class KafkaTap:
    """A TCP relay in front of the broker that counts the bytes the broker answers.

    The process under test gets the tap as its bootstrap server; a Kafka client's
    first exchange (API versions, metadata) goes through it, so answered bytes prove
    the process spoke Kafka with the broker, whatever it does next.
    """

    def __init__(self, upstream: str):
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.answered = 0
        self._closed = threading.Event()

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self._closed.set()
        self.listener.close()

    def _accept(self):
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream, timeout=5)
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source, target, from_broker: bool):
        source.settimeout(None)
        with source:
            while chunk := self._recv(source):
                if from_broker:
                    self.answered += len(chunk)
                try:
                    target.sendall(chunk)
                except OSError:
                    return

    @staticmethod
    def _recv(sock) -> bytes:
        try:
            return sock.recv(65536)
        except OSError:
            return b""


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("process", "command"), [("relay", "relay_events"), ("bridge", "bridge_events")]
)
def test_relay_and_bridge_connect_to_kafka(stack, request, process, command):
    from django.core.management import get_commands

    assert command in get_commands(), f"the entrypoint's {process} runs manage.py {command}"
    bootstrap = request.getfixturevalue("kafka_bootstrap").split(",")[0]
    with (
        KafkaTap(bootstrap) as tap,
        started(stack, process, KAFKA_BOOTSTRAP_SERVERS=tap.address) as running,
    ):
        running.wait_until(lambda: tap.answered > 0, "a Kafka exchange through the tap", 60)
        time.sleep(3)
        assert running.process.poll() is None, running.log()
        assert "Traceback" not in running.log(), running.log()
