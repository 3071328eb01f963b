"""Background work for usage, run by the ``default`` queue's workers."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def purge_usage_records() -> int:
    """Beat runs this hourly; a big backlog goes in batches, the rollups stay."""
    from apps.usage.services import usage_records_purge

    deleted = usage_records_purge()
    if deleted:
        logger.info("usage records purged", extra={"deleted": deleted})
    return deleted


@shared_task(ignore_result=True)
def fold_usage_rollups() -> int:
    """Beat runs this every couple of seconds: workers only append to the ledger,
    this adds what they wrote to the rollups, in batches."""
    from apps.usage.services import usage_rollups_fold

    return usage_rollups_fold()
