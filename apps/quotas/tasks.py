"""Background work for quotas: threshold e-mails and reconciliation."""

import logging

from celery import shared_task
from django.core.mail import send_mail
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from apps.quotas.models import QuotaAlert
from apps.teams.models import Role

logger = logging.getLogger(__name__)


@shared_task(
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def send_quota_alert_email(alert_id: int) -> None:
    """Mail the owners and admins once; a retry after a sent mail does nothing."""
    alert = (
        QuotaAlert.objects.select_related("team", "quota", "quota__api_key")
        .filter(pk=alert_id, emailed_at__isnull=True)
        .first()
    )
    if alert is None:
        return
    recipients = sorted(
        alert.team.memberships.filter(Q(role=Role.OWNER) | Q(role=Role.ADMIN))
        .select_related("user")
        .values_list("user__email", flat=True)
    )
    if recipients:
        from apps.quotas.views import quotas_url

        context = {"alert": alert, "url": quotas_url(alert.team)}
        metric = alert.get_metric_display().lower()
        send_mail(
            subject=(
                f"{alert.team.name}: {alert.threshold}% of the {metric} used ({alert.period})"
            ),
            message=render_to_string("quotas/emails/threshold.txt", context),
            from_email=None,
            recipient_list=recipients,
        )
    QuotaAlert.objects.filter(pk=alert.pk).update(emailed_at=timezone.now())


@shared_task(
    ignore_result=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def publish_limit_hit(team_id: int, data: dict) -> None:
    """Emit ``quota.limit_hit`` for a refused request (see ``announcements``)."""
    from apps.quotas.announcements import publish_limit_hit_now

    publish_limit_hit_now(team_id, data)


@shared_task(ignore_result=True)
def reconcile_quotas() -> dict:
    """Beat: correct the Redis counters from PostgreSQL and release leaked reservations."""
    from apps.quotas.reconcile import reconcile_all

    result = reconcile_all()
    logger.info("quota reconciliation", extra=result)
    return result
