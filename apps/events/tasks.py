"""Beat's periodic events work: the relay's safety net, expired keys, retention."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.events import relay
from apps.events.models import OutboxEvent

logger = logging.getLogger(__name__)


def relay_stuck_rows() -> int:
    """Publish rows older than ``EVENTS_SAFETY_NET_SECONDS`` when no relay is running
    (a running relay holds the lock, and order is its job)."""
    older_than = timezone.now() - timedelta(seconds=settings.EVENTS_SAFETY_NET_SECONDS)
    if not OutboxEvent.objects.filter(published_at__isnull=True, time__lt=older_than).exists():
        return 0
    published = 0
    with relay.relay_lock_free() as free:
        if not free:
            return 0
        publisher = relay.default_publisher()
        try:
            while batch := relay.publish_batch(
                publisher, batch_size=settings.EVENTS_RELAY_BATCH_SIZE, older_than=older_than
            ):
                published += batch
        except relay.PublishError as error:
            logger.warning("safety net could not publish", extra={"error": str(error)[:300]})
        finally:
            publisher.close()
    if published:
        logger.warning("safety net published stuck events", extra={"count": published})
    return published


def notice_expired_keys() -> int:
    """Emit ``key.expired`` once per key that passed its expiry (within the retention
    window, which is how far back the log can tell whether it was emitted)."""
    from django.db import transaction

    from apps.keys.models import ApiKey
    from apps.keys.services import key_event

    now = timezone.now()
    since = now - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    candidates = ApiKey.objects.filter(
        expires_at__lte=now, expires_at__gt=since, revoked_at__isnull=True
    ).select_related("team")
    emitted = 0
    for key in candidates.iterator():
        with transaction.atomic():
            if OutboxEvent.objects.filter(type="key.expired", key_id=key.pk).exists():
                continue
            key_event(key, "key.expired", None, expired_at=key.expires_at)
            emitted += 1
    return emitted


def purge_published(*, now=None) -> int:
    """Delete published rows past ``EVENTS_RETENTION_DAYS``, one batch per statement."""
    before = (now or timezone.now()) - timedelta(days=settings.EVENTS_RETENTION_DAYS)
    size = settings.EVENTS_RETENTION_BATCH_SIZE
    deleted = 0
    while True:
        ids = list(
            OutboxEvent.objects.filter(published_at__lt=before)
            .order_by("sequence")
            .values_list("pk", flat=True)[:size]
        )
        if not ids:
            return deleted
        deleted += OutboxEvent.objects.filter(pk__in=ids).delete()[0]


@shared_task(ignore_result=True)
def events_safety_net() -> dict:
    return {
        "expired_keys": notice_expired_keys(),
        "relayed": relay_stuck_rows(),
        "purged": purge_published(),
    }
