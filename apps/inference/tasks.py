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

        run_id = args[0] if args else kwargs.get("run_id")
        if run_id is not None:
            fail_unfinished(run_id)


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
def execute_run(run_id: int) -> str:
    from apps.inference.executor import execute

    outcome = execute(run_id)
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
