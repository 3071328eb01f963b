"""Issue 13's fault: Redis restarted under the gateway.

Redis carries the gateway's new runs to the worker, the answers back to the web
process, the quota counters and the cached routing. Here it is killed (SIGKILL,
nothing written to disk, as the machine's and the chart's Redis keep nothing)
while requests are in the worker, and started again on the same port. What must
hold: a request in flight ends (its answer, once the web process re-reads the
run's row, or a clean OpenAI-shaped 5xx), never a hang or a dropped
connection; requests sent after the restart succeed; every run that was
started finishes and is billed once.

A Redis, a uvicorn process and a Celery worker of the test's own, on the test
database, so the shared Redis of the rest of the suite is not touched.
"""

import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from apps.inference.models import TERMINAL_STATUSES, ChatRun, RunStatus
from apps.inference.tests.factories import simulator_backend, team_with_admin
from apps.keys.tests.factories import make_key
from apps.usage.models import UsageRecord
from conftest import (
    WorkerProcess,
    database_url_for_processes,
    free_port,
    uvicorn_process,
    wait_for_port,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
HELLO = [{"role": "user", "content": "Hello there"}]
IN_FLIGHT = 4


class RedisServer:
    """``redis-server`` on a free port, killed and started again on demand."""

    def __init__(self, log_path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [
                    *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def own_stack(tmp_path, simulator):
    """A Redis, a web process and a worker of this test's; yields (redis, web URL)."""
    redis_server = RedisServer(tmp_path / "redis.log")
    redis_server.start()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_processes(),
        "REDIS_URL": redis_server.url,
        "CELERY_BROKER_URL": redis_server.url,
        "DEBUG": "false",
        "INFERENCE_HEARTBEAT_SECONDS": "1",
    }
    worker = WorkerProcess(env, tmp_path / "worker.log", concurrency=8)
    try:
        with uvicorn_process(env, tmp_path / "web.log", log_level="warning") as url:
            yield redis_server, url
    finally:
        worker.stop()
        redis_server.kill()


def _client(url: str, raw: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=raw, max_retries=0, timeout=60)


def _ask(client: openai.OpenAI):
    """The answer, or the SDK's exception for an HTTP error; anything else propagates."""
    try:
        return client.chat.completions.create(model="sim-small", messages=HELLO, max_tokens=5)
    except openai.APIStatusError as error:
        return error


def _first_answer(client: openai.OpenAI, timeout: float = 60):
    """Poll until the stack answers: the worker has started and taken its first run."""
    deadline = time.monotonic() + timeout
    while True:
        answer = _ask(client)
        if not isinstance(answer, openai.APIStatusError) or time.monotonic() > deadline:
            return answer
        time.sleep(0.5)


def test_redis_restarted_under_load_fails_nothing_silently_and_new_requests_succeed(
    own_stack, simulator
):
    redis_server, url = own_stack
    team, admin = team_with_admin()
    simulator_backend(team, admin, simulator)
    _key, raw = make_key(team, admin, scopes=["chat"])
    client = _client(url, raw)
    warm = _first_answer(client)
    assert warm.choices[0].message.content, warm

    simulator.config.latency_ms = 1500  # the next requests are in the worker's call
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        in_flight = [pool.submit(_ask, client) for _ in range(IN_FLIGHT)]
        deadline = time.monotonic() + 30
        while ChatRun.objects.filter(status=RunStatus.RUNNING).count() < IN_FLIGHT:
            assert time.monotonic() < deadline, "the runs never reached the worker"
            time.sleep(0.05)
        redis_server.kill()
        redis_server.start()
        results = [future.result(timeout=90) for future in in_flight]

    for result in results:  # an answer, or OpenAI's error shape with a server status
        if isinstance(result, openai.APIStatusError):
            assert result.status_code >= 500, result
            assert result.body and result.body.get("code"), result.body
        else:
            assert result.choices[0].message.content, result

    simulator.config.latency_ms = 0
    for _ in range(3):
        answer = _ask(client)
        assert not isinstance(answer, openai.APIStatusError), answer.body
        assert answer.choices[0].message.content

    deadline = time.monotonic() + 30
    while ChatRun.objects.exclude(status__in=TERMINAL_STATUSES).exists():
        assert time.monotonic() < deadline, "a run never finished"
        time.sleep(0.1)
    runs = list(ChatRun.objects.filter(team=team))
    assert len(runs) == 1 + IN_FLIGHT + 3
    for run in runs:
        billed = UsageRecord.objects.filter(run=run).count()
        assert billed == (1 if run.attempts.exists() else 0), run.pk
