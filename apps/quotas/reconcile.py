"""Reconciliation: PostgreSQL is the truth, the Redis counters are corrected to it.

Run by beat every ``QUOTA_RECONCILE_SECONDS``. First, reservations that stayed
in Redis longer than the grace time are looked up: without a run (its
transaction rolled back) or with a run that finished long enough ago (it ended
without settling: a worker died between commit and settle, Redis was away),
they are released. Then, for every quota's current period, the settled counters
are set to the sums of the runs that finished before a cutoff (``now - grace``)
plus the settlements Redis logged from the cutoff on, and the reserved counters
to the sum of the live reservations; reservations of unfinished runs that Redis
lost are restored from the runs. The cutoff is what lets this run while runs
keep finishing: each is counted either from PostgreSQL or from the log, never
both. Tokens and cost are the usage ledger's, like settlement's: a price
changed since is never applied to past runs.
"""

import json
import logging
import time
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from apps.inference.models import TERMINAL_STATUSES, ChatRun
from apps.quotas import announcements, periods, rules, store, thresholds
from apps.quotas.models import Quota
from apps.usage.models import UsageRecord

logger = logging.getLogger(__name__)


def _ms(at) -> int:
    return int(at.timestamp() * 1000)


def release_stale(now=None) -> int:
    """Release reservations whose run never existed or ended without settling."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.QUOTA_RECONCILE_GRACE_SECONDS)
    cutoff = now - grace
    ids = store.live_reservations(_ms(cutoff))
    if not ids:
        return 0
    since = now - timedelta(seconds=settings.QUOTA_RESERVATION_TTL_SECONDS + 3600)
    runs = {
        run["quota_reservation"]["id"]: run
        for run in ChatRun.objects.filter(
            quota_reservation__id__in=ids, created_at__gte=since
        ).values("status", "finished_at", "quota_reservation")
    }
    released = 0
    for reservation_id in ids:
        run = runs.get(reservation_id)
        if run is not None and not (
            run["status"] in TERMINAL_STATUSES
            and run["finished_at"]
            and run["finished_at"] < cutoff
        ):
            continue  # still running, or just finished and about to settle
        raw = store.record(reservation_id)
        if raw is None:
            store.forget_index_entry(reservation_id)
            continue
        # A finished run's usage is counted from PostgreSQL by reconcile_quota.
        store.release(reservation_id)
        released += 1
    return released


def billed_usage(runs) -> tuple[int, Decimal]:
    """Tokens and cost the usage ledger billed for these runs' attempts: the same
    numbers settlement counted, at the prices in force when each attempt ended."""
    totals = UsageRecord.objects.filter(run__in=runs).aggregate(
        tokens=Sum("total_tokens"), cost=Sum("cost")
    )
    return totals["tokens"] or 0, totals["cost"] or Decimal(0)


def _recent(runs) -> list[dict]:
    """Each run that finished since the cutoff with what the ledger billed it, named
    as its settlement names it in the log (its reservation id) or by its own id."""
    billed = runs.annotate(
        tokens=Sum("usage_records__total_tokens"), cost=Sum("usage_records__cost")
    ).filter(tokens__isnull=False)
    recent = []
    for run_id, finished_at, reservation, tokens, cost in billed.values_list(
        "pk", "finished_at", "quota_reservation", "tokens", "cost"
    ):
        reserved_as = reservation.get("id") if isinstance(reservation, dict) else None
        recent.append(
            {
                "id": reserved_as or f"run-{run_id}",
                "t": tokens,
                "c": store.to_micros(cost or Decimal(0)),
                "f": _ms(finished_at),
            }
        )
    return recent


def reconcile_quota(quota: Quota, now=None, *, seed: bool = False) -> dict:
    """Correct one quota's counters for its current period; returns before/after.

    ``seed`` (a new quota, a period whose counters were never set, counters lost in
    a restart): runs that finished within the grace time are counted too, not left
    to the next pass, since none of them settled on counters that didn't exist."""
    now = now or timezone.now()
    window = periods.window(quota.period, quota.team.zone, now)
    cutoff = now - timedelta(seconds=settings.QUOTA_RECONCILE_GRACE_SECONDS)
    runs = ChatRun.objects.filter(
        team_id=quota.team_id, created_at__gte=window.start, created_at__lt=window.end
    )
    if quota.api_key_id:
        runs = runs.filter(api_key_id=quota.api_key_id)
    finished = runs.filter(status__in=TERMINAL_STATUSES, finished_at__lt=cutoff)
    pg_tokens, pg_cost = billed_usage(finished)
    recent = (
        _recent(runs.filter(status__in=TERMINAL_STATUSES, finished_at__gte=cutoff)) if seed else []
    )
    unfinished = runs.exclude(status__in=TERMINAL_STATUSES).filter(quota_reservation__isnull=False)
    restore = [
        {"id": record["id"], "rec": json.dumps(record)}
        for record in unfinished.values_list("quota_reservation", flat=True)
        if isinstance(record, dict) and "id" in record
    ]
    scope = rules.scope_rules(quota, quota.increases.all(), now)
    now_ms = _ms(now)
    expire_at = int(window.end.timestamp()) + settings.QUOTA_PERIOD_KEEP_SECONDS
    spec = {
        "pre": store.prefix(),
        "n": scope.name,
        "p": window.id,
        "bx": expire_at,
        "pg_tokens": pg_tokens,
        "pg_cost": store.to_micros(pg_cost),
        "cutoff": _ms(cutoff),
        "now": now_ms,
        "dl": now_ms + settings.QUOTA_RUN_DEADLINE_SECONDS * 1000,
        "rttl": settings.QUOTA_RESERVATION_TTL_SECONDS,
        "restore": restore,
        "recent": recent,
    }
    before, after = store.reconcile(json.dumps(spec))
    announcements.period_started(quota, scope, window, expire_at)
    thresholds.check(
        team_id=quota.team_id,
        scope=scope,
        window=window,
        tokens=after[0],
        cost_micros=after[1],
        expire_at=expire_at,
    )
    return {"scope": scope.name, "period": window.id, "before": before, "after": after}


def seed(quota_ids) -> None:
    """Set the counters of these quotas' current periods from the ledger (see
    ``reconcile_quota``); a quota deleted meanwhile has nothing to seed."""
    for quota in Quota.objects.filter(pk__in=[q for q in quota_ids if q]).select_related("team"):
        reconcile_quota(quota, seed=True)


def reconcile_all() -> dict:
    started = time.monotonic()
    result = defaultdict(int)
    result["released"] = release_stale()
    for quota in Quota.objects.select_related("team").order_by("pk").iterator():
        try:
            change = reconcile_quota(quota)
        except Exception:
            logger.exception("quota: reconciling failed", extra={"quota_id": quota.pk})
            result["failed"] += 1
            continue
        result["quotas"] += 1
        if change["before"] != change["after"]:
            result["corrected"] += 1
    result["seconds"] = round(time.monotonic() - started, 3)
    return dict(result)
