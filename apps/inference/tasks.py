"""Celery tasks for inference. They take ids and call the executor or a service.

``execute_run`` is routed to the ``inference`` queue (see ``portal/celery.py``),
whose workers use a thread pool sized for many concurrent streams.
"""

import logging

from celery import Task, shared_task
from django.db import OperationalError

logger = logging.getLogger(__name__)


class RunTask(Task):
    """A run whose task gives up (retries spent, or an error before the claim) is
    failed, not left queued for good; in the embedded default there is no sweeper
    that would find it later."""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        from apps.inference.executor import fail_unfinished
        from apps.inference.feed import Reply

        run_id = args[0] if args else kwargs.get("run_id")
        channel = args[1] if len(args) > 1 else kwargs.get("reply_channel")
        deltas = args[2] if len(args) > 2 else kwargs.get("reply_deltas", True)
        if run_id is not None:
            fail_unfinished(run_id, reply=Reply(channel, deltas) if channel else None)


@shared_task(
    base=RunTask,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # The database refusing a connection must not leave the run queued forever.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=8,
)
def execute_run(run_id: int, reply_channel: str | None = None, reply_deltas: bool = True) -> str:
    """``reply_channel``: the web process whose request waits for this run (see
    apps/inference/feed.py); ``reply_deltas``: whether that caller streams."""
    from apps.inference.executor import execute
    from apps.inference.feed import Reply

    reply = Reply(reply_channel, reply_deltas) if reply_channel else None
    outcome = execute(run_id, reply)
    logger.info("run executed", extra={"run_id": run_id, "outcome": outcome})
    return outcome


@shared_task(ignore_result=True)
def sweep_stale_runs() -> dict:
    from apps.inference.services import runs_sweep

    return runs_sweep()


@shared_task(ignore_result=True, autoretry_for=(OSError,), max_retries=3, retry_backoff=True)
def refresh_backend_models(backend_id: int) -> None:
    from apps.inference.services import backend_models_refresh_by_id

    backend_models_refresh_by_id(backend_id)
