"""Quota events that no change's transaction can carry.

``quota.limit_hit``: a refused request rolls its own transaction back (nothing of
it is written), so an event emitted there would vanish with it. The refusal is
handed to a Celery task instead, sent at once (the broker is not part of the
database transaction) and emitted by the worker in a transaction of its own; in
the embedded default, where tasks run inline, a short-lived thread does the same.
A gate in the quota store lets one event through per limit and scope per
budget period, or per minute for rates and concurrency, so a burst of refusals
is one event, not thousands.

``quota.period_reset``: periods roll over by key name at the team's midnight with
no job running at that instant; the reconciliation beat (every
``QUOTA_RECONCILE_SECONDS``) announces the new period of each budget once.
"""

import logging
import threading
from decimal import Decimal

from django.conf import settings
from django.db import close_old_connections, connection

from apps.quotas import periods, rules, store

logger = logging.getLogger(__name__)
MINUTE_MS = 60_000


def _number(value) -> str:
    """A plain decimal string, as the event schema wants ("0.00089", never "8.9E-4")."""
    return f"{Decimal(str(value)):f}"


def _gate_name(scope: rules.ScopeRules, limit: dict, now_ms: int) -> tuple[str, int]:
    """The gate's key and when it expires (seconds since the epoch)."""
    if limit.get("period") not in (None, "minute"):  # a budget: once per period
        bucket = limit["period"]
        expire_at = now_ms // 1000 + settings.QUOTA_PERIOD_KEEP_SECONDS
    else:
        bucket = f"m{now_ms // MINUTE_MS}"
        expire_at = now_ms // 1000 + 120
    return store.key(scope.name, f"hit:{limit['name']}:{bucket}"), expire_at


def limit_hit(team_id: int, scope: rules.ScopeRules, limit: dict, now_ms: int) -> None:
    """Announce a refusal of a quota's limit (the first of its period or minute).

    Limits set on the key itself rather than by a quota have no quota to name and
    are not announced; the 429 still says everything."""
    if scope.quota_id is None:
        return
    try:
        name, expire_at = _gate_name(scope, limit, now_ms)
        if not store.first_time(name, expire_at):
            return
    except Exception:  # the store is down: the refusal matters more than its event
        logger.exception("quota: limit-hit gate failed", extra={"scope": scope.name})
        return
    data = {
        "quota_id": scope.quota_id,
        "key_id": scope.key_id,
        "metric": limit["name"],
        "period": limit.get("period") or "",
        "limit": _number(limit["limit"]),
        "used": _number(limit["current"]),
        "resets_at": limit.get("resets_at"),
    }
    if settings.CELERY_TASK_ALWAYS_EAGER:
        threading.Thread(target=_publish_in_thread, args=(team_id, data), daemon=True).start()
        return
    from apps.quotas.tasks import publish_limit_hit

    try:
        publish_limit_hit.delay(team_id, data)
    except Exception:
        logger.exception("quota: limit-hit event not queued", extra={"scope": scope.name})


def _publish_in_thread(team_id: int, data: dict) -> None:
    try:
        publish_limit_hit_now(team_id, data)
    except Exception:
        logger.exception("quota: limit-hit event failed", extra={"team_id": team_id})
    finally:
        connection.close()


def publish_limit_hit_now(team_id: int, data: dict) -> None:
    """Emit ``quota.limit_hit`` in a transaction of its own (a deleted team: nothing)."""
    from django.db import transaction

    from apps.events.outbox import emit
    from apps.teams.models import Team

    close_old_connections()
    team = Team.objects.filter(pk=team_id).only("pk", "events_include_content").first()
    if team is None:
        return
    with transaction.atomic():
        emit(
            team,
            "quota.limit_hit",
            subject=f"quota/{data['quota_id']}",
            data=data,
            key_id=data.get("key_id"),
        )


def period_started(quota, scope: rules.ScopeRules, window: periods.Window, expire_at: int) -> bool:
    """Announce a budget's new period once; True when this call announced it.

    A quota created during the period has no earlier period to reset from."""
    if scope.token_budget is None and scope.cost_budget is None:
        return False
    if quota.created_at >= window.start:
        return False
    if not store.first_time(store.key(scope.name, f"b:{window.id}:started"), expire_at):
        return False
    from apps.events.outbox import emit

    emit(
        quota.team,
        "quota.period_reset",
        subject=f"quota/{quota.pk}",
        data={
            "quota_id": quota.pk,
            "key_id": quota.api_key_id,
            "metric": "tokens" if scope.token_budget is not None else "cost",
            "period": window.id,
            "limit": _number(
                scope.token_budget if scope.token_budget is not None else scope.cost_budget
            ),
            "period_start": window.start.isoformat(),
        },
        key_id=quota.api_key_id,
    )
    return True
