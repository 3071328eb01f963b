"""Shared test harness: real services, a live ASGI server, a real Celery worker, a browser.

The test command (``make test`` -> ``scripts/test.sh``) points DATABASE_URL,
REDIS_URL and KAFKA_BOOTSTRAP_SERVERS at real PostgreSQL, Redis and a Tansu
broker before pytest starts; these fixtures build on that.
"""

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

ROOT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
# Every event emitted in a test (and in the workers and servers tests start) is
# checked against its schema; a mismatch fails the test.
os.environ.setdefault("EVENTS_CHECK_ON_EMIT", "true")


def pytest_configure(config):
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing:
        raise pytest.UsageError(
            f"{', '.join(missing)} not set: run the suite with `make test`, which starts the "
            "real services the tests need."
        )
    settings.EVENTS_CHECK_ON_EMIT = True  # this process may have read its settings already


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters and cached lookups must not leak between tests."""
    from apps.keys import key_cache

    cache.clear()
    key_cache.clear()
    yield


def run_async(coro):
    """Run a coroutine on its own loop in a fresh thread. Playwright's sync API keeps
    a loop running in the main thread once a browser test has run, and asyncio.run
    or async_to_sync refuse to start there."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture
def kafka_bootstrap() -> str:
    if not settings.KAFKA_BOOTSTRAP_SERVERS:
        pytest.fail("KAFKA_BOOTSTRAP_SERVERS is not set: run the suite with `make test`.")
    return ",".join(settings.KAFKA_BOOTSTRAP_SERVERS)


def database_url_for_processes() -> str:
    """The test database as a DATABASE_URL, for processes the tests start."""
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@contextlib.contextmanager
def uvicorn_process(env: dict, log_path: Path, port: int | None = None, log_level: str = "info"):
    """``uvicorn portal.asgi:application`` as a process of its own; yields its URL."""
    port = port or free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "portal.asgi:application"),
                *("--port", str(port), "--lifespan", "off", "--log-level", log_level),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, timeout=30)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=10)


class AsgiLiveServer:
    """uvicorn serving ``portal.asgi`` (HTTP and WebSockets) in a thread of the test process."""

    def __init__(self):
        import uvicorn

        from portal.asgi import application

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            application,
            host="127.0.0.1",
            port=self.port,
            lifespan="off",
            log_level="warning",
            ws="websockets-sansio",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def asgi_live_server(transactional_db, settings):
    """A live server on a free port whose requests see the test database."""
    with AsgiLiveServer() as server:
        settings.SITE_URL = server.url
        yield server


class WorkerProcess:
    """One ``celery worker`` process on the real Redis broker."""

    def __init__(self, env: dict, log_path: Path, concurrency: int, pool: str = "threads"):
        self.log_path = log_path
        self._log = open(log_path, "a")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "-Q",
                "default,inference",
                "-P",
                pool,
                "-c",
                str(concurrency),
                "--without-gossip",
                "--without-mingle",
                "-l",
                "info",
                "-n",
                f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, app, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not app.control.ping(timeout=0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("celery worker did not start:\n" + self.log_path.read_text())

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to finish or ack anything."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()


@pytest.fixture
def celery_workers(transactional_db, tmp_path):
    """Start real ``celery worker`` processes on Redis, connected to the test database.

    Call the returned function to start one (``start(concurrency=8, pool="threads",
    **env)``); all are stopped after the test. Tests must commit their data
    (``transactional_db``) so the workers see it. E-mail goes to files under ``tmp_path / "mail"``.
    """
    import redis

    from apps.inference.task_messages import RUNS_QUEUE
    from portal.celery import app

    app.control.purge()  # Celery's queues; the list of new runs is not one of them
    redis.Redis.from_url(app.conf.broker_url).delete(RUNS_QUEUE)
    base_env = {
        **os.environ,
        "DATABASE_URL": database_url_for_processes(),
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
        "SITE_URL": settings.SITE_URL,
        "INFERENCE_RETRY_BASE_SECONDS": "0.05",
        "INFERENCE_HEARTBEAT_SECONDS": "1",
    }
    started: list[WorkerProcess] = []

    def start(concurrency: int = 8, pool: str = "threads", **env) -> WorkerProcess:
        worker = WorkerProcess({**base_env, **env}, tmp_path / "worker.log", concurrency, pool)
        started.append(worker)
        worker.wait_ready(app)
        return worker

    start.mail_dir = tmp_path / "mail"
    start.log = tmp_path / "worker.log"
    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture
def celery_worker(celery_workers):
    """One running worker; ``mail_dir`` and ``log`` tell where its output goes."""
    worker = celery_workers()
    return {
        "process": worker.process,
        "mail_dir": celery_workers.mail_dir,
        "log": celery_workers.log,
        "worker": worker,
    }


@pytest.fixture
def simulator():
    """The project's OpenAI-compatible simulator on a free port, fresh for each test."""
    from apps.inference.simulator.server import SimulatorServer

    with SimulatorServer() as server:
        yield server


@pytest.fixture(scope="session")
def _playwright():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package.")
    # Playwright's sync API keeps an event loop in this thread for the rest of the
    # session; the ORM calls tests and teardown make here are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(_playwright):
    browser = _playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    )
    yield browser
    browser.close()


@pytest.fixture
def page(browser, asgi_live_server):
    from playwright.sync_api import expect

    # Generous waits: the suite shares two cores with a worker, a server and a broker.
    expect.set_options(timeout=15_000)
    context = browser.new_context(base_url=asgi_live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


EMBEDDED_UNSET = {
    "DATABASE_URL",
    "REDIS_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "CELERY_BROKER_URL",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}


class EmbeddedPortal:
    """The portal as ``make run`` starts it: no service URLs (SQLite, the in-memory
    layer, tasks in the web process), migrated and seeded, uvicorn in a subprocess."""

    def __init__(self, tmp_path: Path, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp_path = tmp_path
        self.env = {k: v for k, v in os.environ.items() if k not in EMBEDDED_UNSET}
        self.env.update(
            SQLITE_PATH=str(tmp_path / "portal.sqlite3"),
            SITE_URL=self.url,
            LOCAL_BACKEND_TOKENS_PER_SECOND="15",
            **env,
        )
        self.manage("migrate", "--no-input", "-v", "0")
        self.seed_output = self.manage("seed_demo").stdout
        self.server = None

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=check,
            capture_output=True,
            text=True,
        )

    @property
    def team_slug(self) -> str:
        """The demo team's slug."""
        if not hasattr(self, "_team_slug"):
            self._team_slug = self.manage("shell", "-v", "0", "-c", DEMO_TEAM_SLUG).stdout.strip()
        return self._team_slug

    def api_key(self, *scopes: str, name: str = "") -> str:
        """A key of the demo team, made the way a script makes one."""
        self._keys = getattr(self, "_keys", 0) + 1
        name = name or f"key-{self._keys}"
        return self.manage(
            "key_create",
            *("--team", self.team_slug, "--name", name, "--scopes", ",".join(scopes), "-v", "0"),
        ).stdout.strip()

    def start(self) -> "EmbeddedPortal":
        self._log = open(self.tmp_path / "server.log", "a")  # noqa: SIM115 - closed in stop()
        self.server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "portal.asgi:application",
                "--port",
                str(self.port),
                "--lifespan",
                "off",
                "--ws",
                "websockets-sansio",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, timeout=30)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=10)
            self.server = None
            self._log.close()

    @property
    def log(self) -> str:
        return (self.tmp_path / "server.log").read_text()


DEMO_TEAM_SLUG = (
    "from apps.teams.models import Team; "
    "from django.conf import settings; "
    "print(Team.objects.get(memberships__user__email=settings.DEMO_EMAIL).slug)"
)


@pytest.fixture
def embedded_portal(tmp_path):
    """A running embedded default; ``.url``, ``.env``, ``.manage()``, ``.api_key()``."""
    portal = EmbeddedPortal(tmp_path).start()
    try:
        yield portal
    finally:
        portal.stop()
