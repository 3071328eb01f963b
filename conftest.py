"""Shared test harness: real services, a live ASGI server, a real Celery worker, a browser.

The test command (``make test`` -> ``scripts/test.sh``) points DATABASE_URL,
REDIS_URL and KAFKA_BOOTSTRAP_SERVERS at real PostgreSQL, Redis and a Tansu
broker before pytest starts; these fixtures build on that.
"""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

ROOT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"


def pytest_configure(config):
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing:
        raise pytest.UsageError(
            f"{', '.join(missing)} not set: run the suite with `make test`, which starts the "
            "real services the tests need."
        )


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters and cached lookups must not leak between tests."""
    cache.clear()
    yield


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


@pytest.fixture
def celery_worker(transactional_db, tmp_path):
    """A real ``celery worker`` process on Redis, connected to the test database.

    Tests using it must commit their data (``transactional_db``) so the worker
    sees it. Its e-mail goes to files under ``tmp_path / "mail"``.
    """
    from portal.celery import app

    app.control.purge()
    db = settings.DATABASES["default"]
    database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    mail_dir = tmp_path / "mail"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "SITE_URL": settings.SITE_URL,
    }
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
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
            "4",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "info",
            "-n",
            f"test-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not app.control.ping(timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "celery worker did not start:\n" + (tmp_path / "worker.log").read_text()
                )
        yield {"process": process, "mail_dir": mail_dir, "log": tmp_path / "worker.log"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


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
    context = browser.new_context(base_url=asgi_live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
