"""The gateway's hot path, issue 13: one reply message, no lost run at a crash point,
revocation seen by every web process. Real PostgreSQL, Redis, Celery worker,
simulator and the ``openai`` SDK; nothing is mocked except the crash itself."""

import json
import os
import time
from datetime import timedelta

import httpx2
import openai
import pytest
import redis
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from apps.events.models import OutboxEvent
from apps.gateway import services as gateway
from apps.gateway.requests import parse_chat
from apps.inference import executor, feed
from apps.inference import services as inference
from apps.inference.models import ChatRun, RunStatus
from apps.inference.tests.factories import simulator_backend, team_with_admin
from apps.keys import services as keys
from apps.keys.actor import KeyActor
from apps.keys.tests.factories import make_key
from apps.usage.models import UsageRecord
from conftest import database_url_for_processes, uvicorn_process

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture
def setup(simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    key, raw = make_key(team, admin, scopes=["chat", "read"])
    return team, admin, backend, key, raw


def _listen(*channels: str):
    client = redis.Redis.from_url(settings.REDIS_URL)
    pubsub = client.pubsub()
    pubsub.owner = client  # a collected client closes its pool, the subscription with it
    pubsub.subscribe(*channels)
    confirmed = 0
    while confirmed < len(channels):
        item = pubsub.get_message(timeout=5.0)
        confirmed += item is not None and item["type"] == "subscribe"
    return pubsub


def _drain(pubsub) -> dict[str, list[dict]]:
    """Everything published so far, by channel (publishing is done when execute returns)."""
    got: dict[str, list[dict]] = {}
    while (item := pubsub.get_message(timeout=1.0)) is not None:
        if item["type"] == "message":
            got.setdefault(item["channel"].decode(), []).append(json.loads(item["data"]))
    return got


def _queued_run(team, backend, **fields) -> ChatRun:
    return ChatRun.objects.create(
        team=team, backend=backend, model="sim-small", messages=HELLO, **fields
    )


@pytest.mark.parametrize("streamed", [False, True])
def test_the_caller_gets_the_end_on_its_reply_channel_and_deltas_only_when_it_streams(
    setup, simulator, streamed
):
    team, _admin, backend, _key, _raw = setup
    simulator.config.tokens_per_second = 200  # several relay batches
    run = _queued_run(team, backend, parameters={"max_tokens": 12})
    reply = feed.Reply("portal-test:reply:one", deltas=streamed)
    pubsub = _listen(reply.channel, feed.run_channel(run.pk))

    assert executor.execute(run.pk, reply) == RunStatus.SUCCEEDED
    got = _drain(pubsub)
    to_caller, to_watchers = got.get(reply.channel, []), got.get(feed.run_channel(run.pk), [])
    run.refresh_from_db()
    if not streamed:  # one message, the end, with the whole answer
        assert [m["type"] for m in to_caller] == ["run.done"]
        assert to_watchers == to_caller
    else:
        deltas = [m for m in to_caller if m["type"] == "run.delta"]
        assert len(deltas) > 1 and to_caller[-1]["type"] == "run.done"
        assert [m["type"] for m in to_caller].count("run.done") == 1
        assert "".join(d["delta"] for d in deltas) == run.output
        assert to_watchers == to_caller
    assert to_caller[-1]["output"] == run.output and to_caller[-1]["status"] == "succeeded"
    assert feed.partial_output(run.pk) == ""  # the row is the truth once written


def test_the_gateway_waits_on_its_reply_channel_through_the_sdk(
    asgi_live_server, celery_worker, setup, monkeypatch
):
    """The web process's hub delivers exactly what the worker sent its caller: the end
    alone for a non-streamed call, the deltas and the end for a streamed one."""
    _team, _admin, _backend, _key, raw = setup
    seen: list[tuple[str, str]] = []
    original = feed.Hub.deliver

    def spy(hub, channel, message):
        if channel == hub.channel:
            seen.append((message["type"], message["run_id"]))
        return original(hub, channel, message)

    monkeypatch.setattr(feed.Hub, "deliver", spy)
    client = openai.OpenAI(
        api_key=raw, base_url=f"{asgi_live_server.url}/v1", max_retries=0, timeout=30
    )
    answer = client.chat.completions.create(model="sim-small", messages=HELLO)
    run_id = int(answer.id.removeprefix("chatcmpl-"))
    assert seen == [("run.done", run_id)]
    assert answer.choices[0].message.content == ChatRun.objects.get(pk=run_id).output

    seen.clear()
    chunks = list(
        client.chat.completions.create(
            model="sim-small",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed_id = int(chunks[0].id.removeprefix("chatcmpl-"))
    assert seen[-1] == ("run.done", streamed_id) and ("run.delta", streamed_id) in seen
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ChatRun.objects.get(pk=streamed_id).output
    assert chunks[-1].usage.total_tokens > 0


def _chat(raw_key: str, model: str = "sim-small") -> gateway.Started:
    from apps.keys.auth import check

    key, _reason = check(raw_key)
    return gateway.chat_start(
        actor=KeyActor(key), chat=parse_chat({"model": model, "messages": HELLO})
    )


def test_a_web_process_dying_after_the_commit_loses_nothing(setup, celery_worker, monkeypatch):
    """Row first: the run and its run.queued event commit together; a process that dies
    before the task is sent leaves a queued run, which the sweeper sends again, and it
    is executed and billed once."""
    _team, _admin, _backend, _key, raw = setup
    monkeypatch.setattr("apps.inference.dispatch.enqueue_run", lambda run_id, reply=None: None)
    run = _chat(raw).run
    assert ChatRun.objects.get(pk=run.pk).status == RunStatus.QUEUED
    assert OutboxEvent.objects.filter(type="run.queued", subject=f"run/{run.pk}").count() == 1
    monkeypatch.undo()

    ChatRun.objects.filter(pk=run.pk).update(enqueued_at=timezone.now() - timedelta(hours=1))
    assert inference.runs_sweep()["resent"] == 1
    deadline = time.monotonic() + 30
    while not ChatRun.objects.get(pk=run.pk).is_finished and time.monotonic() < deadline:
        time.sleep(0.05)
    finished = ChatRun.objects.get(pk=run.pk)
    assert finished.status == RunStatus.SUCCEEDED, finished.error
    assert UsageRecord.objects.filter(run=finished).count() == 1
    assert OutboxEvent.objects.filter(type="run.succeeded", subject=f"run/{run.pk}").count() == 1


def test_a_run_whose_event_cannot_be_written_is_not_written_either(setup, monkeypatch):
    """The run's row and its ``run.queued`` are one statement (``insert_with_event``): a
    failure in the event's part leaves neither, and no task is sent for a run that
    doesn't exist. (A web process that dies cannot stop between the two.)"""
    from apps.events import statement_events

    _team, _admin, _backend, _key, raw = setup
    sent: list[int] = []
    monkeypatch.setattr(
        "apps.inference.dispatch.enqueue_run", lambda run_id, reply=None: sent.append(run_id)
    )
    statement = statement_events._insert_after_statement
    monkeypatch.setattr(
        statement_events,
        "_insert_after_statement",
        lambda key: statement(key).replace(
            "FROM inserted RETURNING", "FROM inserted WHERE 1 / 0 = 1 RETURNING"
        ),
    )
    with pytest.raises(DatabaseError, match="division by zero"):
        _chat(raw)
    assert not ChatRun.objects.exists()
    assert not OutboxEvent.objects.filter(type="run.queued").exists()
    assert sent == []


@pytest.fixture
def second_web_process(tmp_path, asgi_live_server):
    """Another uvicorn process on the same database and Redis as the test's server."""
    env = {**os.environ, "DATABASE_URL": database_url_for_processes(), "DEBUG": "false"}
    with uvicorn_process(env, tmp_path / "web2.log", log_level="warning") as url:
        yield url


def test_a_revoked_key_is_refused_at_once_by_every_web_process(
    setup, asgi_live_server, second_web_process
):
    _team, admin, _backend, key, raw = setup
    servers = [asgi_live_server.url, second_web_process]
    headers = {"Authorization": f"Bearer {raw}"}
    for url in servers:  # both have the key's lookup warm
        for _ in range(2):
            assert httpx2.get(f"{url}/v1/models", headers=headers).status_code == 200
    keys.key_revoke(key=key, actor=admin)
    for url in servers:
        refused = httpx2.get(f"{url}/v1/models", headers=headers)
        assert refused.status_code == 401, url
        assert refused.json()["error"]["code"] == "invalid_api_key"


def test_v1_has_its_own_short_middleware_chain(setup, asgi_live_server):
    """/v1 skips the session, CSRF, auth, messages and frame middleware (hops onto the
    one thread-sensitive thread each) but keeps request ids and security headers;
    pages keep the whole chain."""
    _team, _admin, _backend, _key, raw = setup
    api = httpx2.get(
        f"{asgi_live_server.url}/v1/models",
        headers={"Authorization": f"Bearer {raw}", "X-Request-ID": "trace-me-1"},
    )
    assert api.status_code == 200
    assert api.headers["X-Request-ID"] == "trace-me-1"
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    assert "X-Frame-Options" not in api.headers and "set-cookie" not in api.headers
    unknown = httpx2.post(f"{asgi_live_server.url}/v1/nowhere", headers={"X-Request-ID": "t2"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_url"
    assert unknown.headers["X-Request-ID"] == "t2"

    page = httpx2.get(f"{asgi_live_server.url}/accounts/login/")
    assert page.status_code == 200
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "csrftoken" in page.headers.get("set-cookie", "")


def test_v1_bodies_past_the_limit_are_refused_announced_or_chunked(setup, asgi_live_server):
    """The gateway reads bodies into memory (apps/gateway/asgi.py), never more than the
    limit: one announced too large and one sent in chunks both get OpenAI's 413, and
    nothing is written."""
    _team, _admin, _backend, _key, raw = setup
    url = f"{asgi_live_server.url}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {raw}", "Content-Type": "application/json"}
    body = json.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "x" * 2_000_000}]}
    ).encode()

    def chunks():
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    announced = httpx2.post(url, headers=headers, content=body)
    chunked = httpx2.post(url, headers=headers, content=chunks())
    assert "content-length" not in chunked.request.headers
    for response in (announced, chunked):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "request_too_large"
        assert response.headers["X-Request-ID"]
    small = httpx2.post(url, headers=headers, content=iter([b'{"model": "m", ', b'"messages": 1}']))
    assert small.status_code == 400 and small.json()["error"]["param"] == "messages"
    assert ChatRun.objects.count() == 0


def test_a_worker_killed_mid_call_is_retried_and_the_caller_still_gets_its_answer(
    asgi_live_server, celery_workers, setup, simulator, settings
):
    """No token had reached the (non-streamed) caller, so the sweeper hands the run to
    another worker; the request, waiting on its reply channel, gets that answer (the
    re-read of the row when its channel is quiet), billed once. Never a hang."""
    import threading

    _team, _admin, _backend, _key, raw = setup
    simulator.config.tokens_per_second = 8
    first = celery_workers()
    client = openai.OpenAI(
        api_key=raw, base_url=f"{asgi_live_server.url}/v1", max_retries=0, timeout=60
    )
    answers: list = []
    caller = threading.Thread(
        target=lambda: answers.append(
            client.chat.completions.create(model="sim-small", messages=HELLO)
        )
    )
    caller.start()
    deadline = time.monotonic() + 20
    while not ChatRun.objects.filter(status=RunStatus.RUNNING).exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.kill()
    settings.INFERENCE_STALE_SECONDS = 2
    time.sleep(2.5)  # the dead worker's heartbeat goes stale
    assert inference.runs_sweep()["requeued"] == 1
    celery_workers()
    caller.join(60)
    (answer,) = answers
    run = ChatRun.objects.get(pk=int(answer.id.removeprefix("chatcmpl-")))
    assert run.status == RunStatus.SUCCEEDED and run.deliveries == 2
    assert answer.choices[0].message.content == run.output
    assert UsageRecord.objects.filter(run=run).count() == 1
