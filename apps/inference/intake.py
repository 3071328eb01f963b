"""How a Celery worker takes new runs: a bootstep that pops them into the worker's pool.

Why: kombu's consumer is built for every broker and every task option. On Redis,
for each message it polls through its event hub, decodes the message, builds a
``Request``, checks revocations, limits and ETAs, and hands the task to the pool
through a chain of callbacks. py-spy on a worker of the gateway's benchmark put
that at about a quarter of the worker's CPU per run, more than the backend call.
A new run needs none of it: its message (:mod:`apps.inference.task_messages`)
has no ETA, no retry count and no result.

So the web process pushes new runs onto their own list (``RUNS_QUEUE``), and in every
worker that consumes the ``inference`` queue with the thread pool, this step
pops them with a blocking ``BRPOP`` and submits each to the same pool that runs
Celery's tasks, never holding more than the pool's size at once (as Celery's
prefetch does). Everything else stays Celery's: a run that must be retried (the
database refused the claim) is handed to ``execute_run.apply_async`` and goes
through the ``inference`` queue with Celery's retry policy; a run that fails
otherwise is failed as ``RunTask.on_failure`` does; a warm shutdown stops taking
runs and lets the pool finish the ones it holds. A message popped by a worker
that is then killed is lost, as with acknowledgement emulation off
(``CELERY_ACK_EMULATION``): the run's row stays queued and the sweeper sends it
again.

The list holds Celery's own messages: a worker with another pool consumes it
through kombu instead, running them as ordinary ``execute_run`` tasks.
"""

import base64
import json
import logging
import threading

import redis
from celery import bootsteps
from celery.concurrency.thread import TaskPool as ThreadPool

from apps.inference.task_messages import RUNS_QUEUE

logger = logging.getLogger(__name__)

POP_TIMEOUT_SECONDS = 1


def message_args(raw: bytes) -> list:
    """The task arguments of a Celery message as kombu's Redis transport stores it."""
    message = json.loads(raw)
    body = message["body"]
    if message.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    args, _kwargs, _embed = json.loads(body)
    return args


def run_message(raw: bytes) -> str | None:
    """Execute the run a message names: ``execute_run``'s own body, its failure handler,
    and Celery's retry policy for a database that refused."""
    from django.db import OperationalError, close_old_connections

    from apps.inference.tasks import execute_run

    try:
        args = message_args(raw)
    except (ValueError, KeyError, TypeError):
        logger.error("run intake: dropped a message that is not a run task")
        return None
    try:
        return execute_run.run(*args)  # called directly, a retry re-raises its error
    except OperationalError:
        logger.warning("run intake: database error, retrying through Celery", exc_info=True)
        execute_run.apply_async(args=args, countdown=1)
    except Exception as exc:
        logger.exception("run intake: run failed", extra={"run_id": args[0]})
        execute_run.on_failure(exc, None, args, {}, None)
    finally:
        close_old_connections()
    return None


class RunIntake(bootsteps.StartStopStep):
    """Started after the pool, stopped before it (bootsteps stop in reverse)."""

    label = "run intake"
    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()

    def include_if(self, worker) -> bool:
        url = worker.app.conf.broker_url or ""
        queues = worker.app.amqp.queues.consume_from or worker.app.amqp.queues
        return url.startswith(("redis://", "rediss://")) and "inference" in queues

    def start(self, worker) -> None:
        if not isinstance(worker.pool, ThreadPool):
            # started before the consumer (which starts last): kombu takes the list
            worker.app.amqp.queues.select_add(RUNS_QUEUE)
            return
        client = redis.Redis.from_url(
            worker.app.conf.broker_url,
            socket_timeout=POP_TIMEOUT_SECONDS + 5,
            socket_connect_timeout=5,
            health_check_interval=30,
        )
        slots = threading.BoundedSemaphore(worker.pool.limit)
        self.stopping.clear()
        self.thread = threading.Thread(
            target=self._take, args=(client, worker.pool, slots), name="run-intake", daemon=True
        )
        self.thread.start()

    def _take(self, client: redis.Redis, pool: ThreadPool, slots: threading.BoundedSemaphore):
        def run(raw: bytes) -> None:
            try:
                run_message(raw)
            finally:
                slots.release()

        while not self.stopping.is_set():
            if not slots.acquire(timeout=POP_TIMEOUT_SECONDS):
                continue
            try:
                popped = client.brpop([RUNS_QUEUE], timeout=POP_TIMEOUT_SECONDS)
            except redis.RedisError:
                slots.release()
                logger.warning("run intake: Redis unavailable, retrying", exc_info=True)
                self.stopping.wait(1)
                continue
            if popped is None:
                slots.release()
                continue
            try:
                pool.apply_async(run, args=(popped[1],))
            except Exception:  # the pool is shutting down under us
                slots.release()
                client.rpush(RUNS_QUEUE, popped[1])  # back where it was, for another worker
                logger.warning("run intake: the pool refused a run; stopping", exc_info=True)
                return

    def stop(self, worker) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(POP_TIMEOUT_SECONDS + 5)
            self.thread = None
