"""The run messages the web process writes onto the broker itself are Celery's own."""

import base64
import json

import pytest
import redis
from django.conf import settings

from apps.inference import task_messages
from apps.inference.tasks import execute_run

ARGS = [42, "portal:feed:reply:abc", False]


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(task_messages.QUEUE)
    yield client
    client.delete(task_messages.QUEUE)


def _pop(client) -> dict:
    raw = client.rpop(task_messages.QUEUE)
    assert raw is not None, "nothing was queued"
    message = json.loads(raw)
    message["body"] = json.loads(base64.b64decode(message["body"]))
    return message


def test_a_direct_message_is_the_one_apply_async_sends(broker, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    execute_run.apply_async(args=ARGS)
    celery = _pop(broker)
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
    for name in ("delivery_mode", "delivery_info", "priority", "body_encoding"):
        assert direct["properties"][name] == celery["properties"][name], name
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


def test_other_brokers_go_through_apply_async(settings, monkeypatch):
    settings.CELERY_BROKER_URL = "amqp://guest@localhost//"
    sent = []
    monkeypatch.setattr(execute_run, "apply_async", lambda args: sent.append(args))
    task_messages.send(ARGS)
    assert sent == [ARGS]
