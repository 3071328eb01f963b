"""The run messages the web process writes onto the broker itself are Celery's own."""

import base64
import json
import time

import pytest
import redis
from django.conf import settings

from apps.inference import task_messages
from apps.inference.tasks import execute_run

ARGS = [42, "portal:feed:reply:abc", False]


QUEUES = ("inference", task_messages.RUNS_QUEUE)


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(*QUEUES)
    yield client
    client.delete(*QUEUES)


def _pop(client, queue: str = task_messages.RUNS_QUEUE) -> dict:
    raw = client.rpop(queue)
    assert raw is not None, "nothing was queued"
    message = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


def test_a_direct_message_is_the_one_apply_async_sends(broker, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    execute_run.apply_async(args=ARGS)
    celery = _pop(broker, "inference")
    task_messages.send(ARGS)
    direct = _pop(broker)

    assert direct["body"] == celery["body"] == [ARGS, {}, celery["body"][2]]
    assert direct["content-type"] == celery["content-type"] == "application/json"
    assert direct["content-encoding"] == celery["content-encoding"]
    per_message = {"id", "root_id", "origin"}
    assert {k: v for k, v in direct["headers"].items() if k not in per_message} == {
        k: v for k, v in celery["headers"].items() if k not in per_message
    }
    assert direct["headers"]["id"] == direct["headers"]["root_id"]
    assert direct["headers"]["id"] != celery["headers"]["id"]
    assert direct["properties"]["correlation_id"] == direct["headers"]["id"]
    for name in ("delivery_mode", "priority", "body_encoding"):
        assert direct["properties"][name] == celery["properties"][name], name
    assert direct["properties"]["delivery_info"] == {
        **celery["properties"]["delivery_info"],
        "routing_key": task_messages.RUNS_QUEUE,
    }
    assert direct["properties"]["delivery_tag"] != celery["properties"]["delivery_tag"]


def test_each_message_has_its_own_ids(broker, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    task_messages.send(ARGS)
    task_messages.send([43])
    first, second = _pop(broker), _pop(broker)
    assert first["headers"]["id"] != second["headers"]["id"]
    assert first["properties"]["delivery_tag"] != second["properties"]["delivery_tag"]
    assert (first["body"][0], second["body"][0]) == (ARGS, [43])
    assert second["headers"]["argsrepr"] == "[43]"


def test_other_brokers_get_the_task_by_name(settings, monkeypatch):
    """The web process never imports the tasks module, so the task is sent by its name
    (routed like any other ``execute_run``), not looked up in the app's registry."""
    from portal.celery import app

    settings.CELERY_BROKER_URL = "amqp://guest@localhost//"
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args: sent.append((name, args)))
    task_messages.send(ARGS)
    assert sent == [(task_messages.TASK_NAME, ARGS)]
    assert app.amqp.router.route({}, task_messages.TASK_NAME)["queue"].name == "inference"


def test_options_that_move_messages_go_through_celery(settings, monkeypatch):
    from portal.celery import app

    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": "other:"}
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args: sent.append((name, args)))
    task_messages.send(ARGS)
    assert sent == [(task_messages.TASK_NAME, ARGS)]


def test_a_worker_keeps_no_unacked_copy_by_default(celery_worker):
    """Acknowledgement emulation is off (settings): a delivered run message leaves
    nothing behind in Redis; the run's row is what the sweeper recovers from."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["ack_emulation"] is False
    task_messages.send([10**9])  # no such run: the worker skips it
    deadline = time.monotonic() + 20
    while client.llen(task_messages.RUNS_QUEUE):
        assert time.monotonic() < deadline, "the worker never took the message"
        time.sleep(0.05)
    time.sleep(0.5)
    assert not client.exists("unacked", "unacked_index")
