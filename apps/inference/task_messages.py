"""``execute_run`` messages written straight onto a Redis broker's queue.

Why: every gateway call sends one. ``apply_async`` builds it through Celery's
router, kombu's producer pool, connection retry wrappers and serializer
registry: 500 us of the web process's CPU, for what is one ``LPUSH`` of 80 us.
Here Celery builds the message once per process (``app.amqp.as_task_v2``: the
headers, properties and body a Celery worker expects); each send fills in the
task id and the arguments and wraps it in kombu's envelope for its Redis
transport (base64 body, delivery info and tag), 150 us in all. It goes onto
the list of new runs (``RUNS_QUEUE``), which workers pop themselves
(:mod:`apps.inference.intake`); it is the message ``apply_async`` would send
(``tests/test_task_messages.py`` compares them), so kombu can consume it too.

Only for the plain Redis transport with no options that change where messages
go (a key prefix, priority queues, another queue order); any other broker goes
through ``apply_async``.
"""

import base64
import functools
import json
import logging
import threading
import uuid

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

TASK_NAME = "apps.inference.tasks.execute_run"
# New runs have a list of their own, which workers take from directly
# (apps/inference/intake.py); retries and other brokers use Celery's "inference" queue.
RUNS_QUEUE = "inference.runs"
_SAFE_TRANSPORT_OPTIONS = {"visibility_timeout", "ack_emulation"}

_client: redis.Redis | None = None
_client_lock = threading.Lock()


def _broker_client() -> redis.Redis | None:
    """A client for the broker when messages may be written directly, else None."""
    global _client
    url = settings.CELERY_BROKER_URL or ""
    if not url.startswith(("redis://", "rediss://")):
        return None
    if set(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})) - _SAFE_TRANSPORT_OPTIONS:
        return None
    with _client_lock:
        if _client is None:
            _client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        return _client


@functools.cache
def _template(app) -> tuple[dict, dict, list]:
    """Headers, properties and the body's last part of a message as Celery builds it;
    only the task id and the arguments differ from one message to the next."""
    message = app.amqp.as_task_v2("", TASK_NAME, args=[], ignore_result=True)
    return message.headers, message.properties, message.body[2]


def _envelope(app, args: list) -> bytes:
    headers, properties, embed = _template(app)
    task_id = str(uuid.uuid4())
    headers = {**headers, "id": task_id, "root_id": task_id, "argsrepr": repr(args)}
    body = json.dumps([args, {}, embed]).encode()
    properties = {
        **properties,
        "correlation_id": task_id,
        "delivery_mode": 2,
        "delivery_info": {"exchange": "", "routing_key": RUNS_QUEUE},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": str(uuid.uuid4()),
    }
    return json.dumps(
        {
            "body": base64.b64encode(body).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": properties,
        }
    ).encode()


def send(args: list) -> None:
    """Queue ``execute_run(*args)`` for a worker of the ``inference`` queue: on its
    own list for a Redis broker, else through Celery's routing."""
    from portal.celery import app  # by name: importing the task would close a cycle

    client = _broker_client()
    if client is None:
        # by name too: the web process never imports the tasks module
        app.send_task(TASK_NAME, args=args)
        return
    client.lpush(RUNS_QUEUE, _envelope(app, args))
