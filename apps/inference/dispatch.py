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

from apps.inference import executor

logger = logging.getLogger(__name__)
_background_tasks: set = set()


def _server_loop():
    if getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) != os.getpid():
        return None
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() else None


def _execute_inline(run_id: int) -> None:
    """The task in this process. An eager task propagates its errors, retries
    included (CELERY_TASK_EAGER_PROPAGATES), so its failure handler never runs here:
    a run the task could not finish is failed here, never left queued for good."""
    from apps.inference.tasks import execute_run

    try:
        execute_run.apply(args=[run_id])
    except Exception:
        logger.exception("run task failed", extra={"run_id": run_id})
        executor.fail_unfinished(run_id)


def enqueue_run(run_id: int) -> None:
    from apps.inference.tasks import execute_run

    if not settings.CELERY_TASK_ALWAYS_EAGER:
        execute_run.delay(run_id)
        return
    loop = _server_loop()
    if loop is None:
        _execute_inline(run_id)
        return

    def start() -> None:
        task = loop.create_task(sync_to_async(_execute_inline, thread_sensitive=False)(run_id))
        _background_tasks.add(task)
        task.add_done_callback(_background_tasks.discard)

    loop.call_soon_threadsafe(start)
