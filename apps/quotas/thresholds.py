"""Soft thresholds: the first time a budget's consumption reaches one of its
percentages in a period, write an alert, publish a ``quota.threshold_reached``
event and e-mail the team's owners and admins.

"Once" is the database's unique constraint on (quota, period, metric,
threshold); a Redis ``SET NX`` in front of it keeps the settle path from asking
the database again and again once a threshold is behind it.
"""

import logging
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction

from apps.events.outbox import emit
from apps.quotas import periods, rules, store
from apps.quotas.models import Metric, QuotaAlert

logger = logging.getLogger(__name__)


def crossed(consumed, limit, thresholds) -> list[int]:
    """The thresholds (percent) that ``consumed`` has reached out of ``limit``."""
    if limit is None or limit <= 0:
        return []
    return [t for t in thresholds if consumed * 100 >= limit * t]


def _gate(scope: str, period: str, metric: str, threshold: int, expire_at: int) -> bool:
    """True the first time anyone asks for this alert in this period."""
    return store.first_time(store.key(scope, f"b:{period}:alert:{metric}:{threshold}"), expire_at)


def _forget_gate(scope: str, period: str, metric: str, threshold: int) -> None:
    store.forget(store.key(scope, f"b:{period}:alert:{metric}:{threshold}"))


def record_alert(
    *,
    team_id: int,
    quota_id: int,
    window: periods.Window,
    metric: str,
    threshold: int,
    consumed: Decimal,
    limit: Decimal,
    key_id: int | None = None,
) -> QuotaAlert | None:
    """Write the alert and its event if it is the first for its period; mail it
    after commit."""
    from apps.teams.models import Team

    team = Team.objects.filter(pk=team_id).only("pk", "events_include_content").first()
    if team is None:
        return None
    try:
        with transaction.atomic():
            alert = QuotaAlert.objects.create(
                team_id=team_id,
                quota_id=quota_id,
                period=window.id,
                period_start=window.start,
                period_end=window.end,
                metric=metric,
                threshold=threshold,
                consumed=consumed,
                limit=limit,
            )
            emit(
                team,
                "quota.threshold_reached",
                subject=f"quota/{quota_id}",
                data={
                    "quota_id": quota_id,
                    "key_id": key_id,
                    "metric": metric,
                    "period": window.id,
                    "limit": f"{limit:f}",
                    "used": f"{consumed:f}",
                    "threshold": threshold,
                },
                key_id=key_id,
            )
            transaction.on_commit(lambda: _send(alert.pk))
    except IntegrityError:
        return None
    return alert


def _send(alert_id: int) -> None:
    from apps.quotas.tasks import send_quota_alert_email

    send_quota_alert_email.delay(alert_id)


def check(
    *,
    team_id: int,
    scope: rules.ScopeRules,
    window: periods.Window,
    tokens: int,
    cost_micros: int,
    expire_at: int = 0,
) -> list[QuotaAlert]:
    """Alerts for every threshold the consumption has reached and not yet announced."""
    if scope.quota_id is None or not scope.thresholds:
        return []
    measured = [(Metric.TOKENS, Decimal(tokens), scope.token_budget)]
    if scope.cost_budget is not None:
        measured.append((Metric.COST, store.from_micros(cost_micros), Decimal(scope.cost_budget)))
    alerts = []
    for metric, consumed, limit in measured:
        for threshold in crossed(consumed, limit, scope.thresholds):
            if not _gate(scope.name, window.id, metric, threshold, expire_at):
                continue
            try:
                alert = record_alert(
                    team_id=team_id,
                    quota_id=scope.quota_id,
                    window=window,
                    metric=metric,
                    threshold=threshold,
                    consumed=consumed,
                    limit=Decimal(limit),
                    key_id=scope.key_id,
                )
            except Exception:
                _forget_gate(scope.name, window.id, metric, threshold)  # try again next time
                raise
            if alert is not None:
                alerts.append(alert)
    return alerts


def check_after_settle(record: dict, used: dict[str, tuple[int, int]]) -> None:
    """After a settlement: look at each budget scope the run was counted in."""
    team_id = record.get("team")
    if team_id is None:
        return
    for entry in record["s"]:
        if not entry.get("p") or entry["n"] not in used:
            continue
        try:
            scope = rules.for_scope(team_id, entry["n"])
            if scope is None or scope.period is None:
                continue
            window = _window_named(team_id, scope.period, entry["p"])
            if window is None:
                continue
            tokens, cost = used[entry["n"]]
            check(
                team_id=team_id,
                scope=scope,
                window=window,
                tokens=tokens,
                cost_micros=cost,
                expire_at=entry.get("bx", 0),
            )
        except Exception:
            logger.exception("quota: threshold check failed", extra={"scope": entry["n"]})


def _window_named(team_id: int, kind: str, period_id: str) -> periods.Window | None:
    """The window with this id in the team's zone (the run may have ended just after
    the period did)."""
    from apps.teams.models import Team

    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        return None
    if kind == "day":
        start = datetime.fromisoformat(period_id)
    else:
        start = datetime.fromisoformat(f"{period_id}-01")
    at = start.replace(hour=12, tzinfo=team.zone)
    window = periods.window(kind, team.zone, at)
    return window if window.id == period_id else None
