"""Handing a run to whatever executes it.

With a broker, a Celery worker on the ``inference`` queue. In the embedded
default (eager tasks, in-memory channel layer) the run executes in a thread of
the web process, scheduled from the ASGI server's loop, so the request that
created it returns at once and the stream reaches WebSockets on that loop.
Outside a server (shell, tests) it runs right here.
"""

import logging
import os

from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings

from apps.inference import executor, feed, task_messages

logger = logging.getLogger(__name__)
_background_tasks: set = set()


def _server_loop():
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() else None


def _task_args(run_id: int, reply: feed.Reply | None) -> list:
    return [run_id, *reply.as_task_args()] if reply else [run_id]


def _execute_inline(run_id: int, reply: feed.Reply | None = None) -> None:
    """The task in this process. An eager task propagates its errors, retries
    included (CELERY_TASK_EAGER_PROPAGATES), so its failure handler never runs here:
    a run the task could not finish is failed here, never left queued for good."""
    from apps.inference.tasks import execute_run

    try:
        execute_run.apply(args=_task_args(run_id, reply))
    except Exception:
        logger.exception("run task failed", extra={"run_id": run_id})
        executor.fail_unfinished(run_id, reply=reply)


def enqueue_run(run_id: int, reply: feed.Reply | None = None) -> None:
    """``reply``: where the run's caller waits, carried in the task."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        task_messages.send(_task_args(run_id, reply))
        return
    loop = _server_loop()
    if loop is None:
        _execute_inline(run_id, reply)
        return

    def start() -> None:
        inline = sync_to_async(_execute_inline, thread_sensitive=False)
        task = loop.create_task(inline(run_id, reply))
        _background_tasks.add(task)
        task.add_done_callback(_background_tasks.discard)

    loop.call_soon_threadsafe(start)
