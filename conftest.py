"""Shared test harness: real services, a live ASGI server, a real Celery worker, a browser.

The test command (``make test`` -> ``scripts/test.sh``) points DATABASE_URL,
REDIS_URL and KAFKA_BOOTSTRAP_SERVERS at real PostgreSQL, Redis and a Tansu
broker before pytest starts; these fixtures build on that.
"""

import asyncio
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
    cache.clear()
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

    def __init__(self, env: dict, log_path: Path, concurrency: int):
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
                "threads",
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

    Call the returned function to start one (``start(concurrency=8, **env)``); all
    are stopped after the test. Tests must commit their data (``transactional_db``)
    so the workers see it. E-mail goes to files under ``tmp_path / "mail"``.
    """
    from portal.celery import app

    app.control.purge()
    db = settings.DATABASES["default"]
    base_env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
        "SITE_URL": settings.SITE_URL,
        "INFERENCE_RETRY_BASE_SECONDS": "0.05",
        "INFERENCE_HEARTBEAT_SECONDS": "1",
    }
    started: list[WorkerProcess] = []

    def start(concurrency: int = 8, **env) -> WorkerProcess:
        worker = WorkerProcess({**base_env, **env}, tmp_path / "worker.log", concurrency)
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
