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

logger = logging.getLogger(__name__)
_background_tasks: set = set()


def _server_loop():
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() else None


def _finished(task) -> None:
    """Retrieve the outcome so an error is logged once, here; the task's own failure
    handler has already failed the run."""
    _background_tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("run task failed", exc_info=task.exception())


def enqueue_run(run_id: int) -> None:
    from apps.inference.tasks import execute_run

    if not settings.CELERY_TASK_ALWAYS_EAGER:
        execute_run.delay(run_id)
        return
    loop = _server_loop()
    if loop is None:
        execute_run.apply(args=[run_id])
        return

    def start() -> None:
        task = loop.create_task(
            sync_to_async(execute_run.apply, thread_sensitive=False)(args=[run_id])
        )
        _background_tasks.add(task)
        task.add_done_callback(_finished)

    loop.call_soon_threadsafe(start)
