"""Reads for quotas: the rows, and where each limit stands right now.

Consumption comes from the Redis counters every process shares (what the next
request is judged by); without Redis it is summed from PostgreSQL instead.
"""

import time
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from django.db.models import F, Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone

from apps.quotas import periods, rules, store
from apps.quotas.models import Quota, QuotaIncrease
from apps.teams.models import Team

LABELS = {
    "token_budget": ("Token budget", "tokens"),
    "cost_budget": ("Cost budget", "cost"),
    "requests_per_minute": ("Requests per minute", "requests"),
    "tokens_per_minute": ("Tokens per minute", "tokens"),
    "concurrent_runs": ("Concurrent runs", "runs"),
}


def quotas_of(team: Team) -> QuerySet[Quota]:
    now = timezone.now()
    return (
        Quota.objects.filter(team=team)
        .select_related("api_key", "team")
        .prefetch_related(
            Prefetch(
                "increases",
                queryset=QuotaIncrease.objects.filter(ends_at__gt=now).order_by("starts_at"),
                to_attr="current_increases",
            )
        )
        .order_by(F("api_key_id").asc(nulls_first=True), "pk")
    )


def quota_in_team(team: Team, quota_id: int) -> Quota:
    quota = quotas_of(team).filter(pk=quota_id).first()
    if quota is None:
        raise Http404("No such quota in this team.")
    return quota


def increase_in_quota(quota: Quota, increase_id: int) -> QuotaIncrease:
    increase = quota.increases.filter(pk=increase_id).first()
    if increase is None:
        raise Http404("No such increase of this quota.")
    return increase


@dataclass(frozen=True)
class LimitUse:
    """One limit of one quota and where it stands."""

    quota_id: int
    scope: str  # team or key
    key_name: str | None
    key_prefix: str | None
    name: str  # token_budget, cost_budget, requests_per_minute, tokens_per_minute, ...
    label: str
    unit: str
    consumed: int | Decimal  # settled usage (budgets), or in the last minute, or running now
    reserved: int | Decimal  # held by runs in flight (budgets)
    limit: int | Decimal
    period: str  # the period id, "minute" (rolling 60 s) or "now"
    resets_at: datetime | None  # the next period start; None for rolling and concurrency

    @property
    def percent(self) -> int:
        if not self.limit:
            return 100 if (self.consumed or self.reserved) else 0
        return min(100, int((self.consumed + self.reserved) * 100 / self.limit))

    @property
    def resets_in_seconds(self) -> int | None:
        if self.resets_at is None:
            return None
        return max(0, int((self.resets_at - timezone.now()).total_seconds()))


def _budget_from_database(quota: Quota, window: periods.Window) -> store.Budget:
    from apps.inference.models import TERMINAL_STATUSES, ChatRun
    from apps.quotas.reconcile import billed_usage

    runs = ChatRun.objects.filter(
        team_id=quota.team_id, created_at__gte=window.start, created_at__lt=window.end
    )
    if quota.api_key_id:
        runs = runs.filter(api_key_id=quota.api_key_id)
    tokens, cost = billed_usage(runs.filter(status__in=TERMINAL_STATUSES))
    return store.Budget(tokens=tokens, cost=store.to_micros(cost))


def _effective(quota: Quota) -> rules.ScopeRules:
    increases = getattr(quota, "current_increases", None)
    scope = rules.scope_rules(quota, quota.increases.all() if increases is None else increases)
    if quota.api_key is not None:
        key = quota.api_key
        scope = replace(
            scope,
            requests_per_minute=rules.lower_of(scope.requests_per_minute, key.requests_per_minute),
            tokens_per_minute=rules.lower_of(scope.tokens_per_minute, key.tokens_per_minute),
        )
    return scope


def quota_status(quota: Quota, now=None) -> list[LimitUse]:
    """Every limit the quota sets, with its consumption and reset time."""
    now = now or timezone.now()
    now_ms = int(time.time() * 1000)
    scope = _effective(quota)
    window = periods.window(quota.period, quota.team.zone, now)
    live = True
    budget = store.Budget()
    requests = tokens = running = 0
    if live:
        try:
            budget = store.budget(scope.name, window.id)
            requests, tokens = store.minute(scope.name, now_ms)
            running = store.running(scope.name, now_ms)
        except Exception:
            live = False
    # Counters never set from the ledger this period (nothing reserved on them yet, or
    # lost in a restart) would undercount: the ledger says what was spent.
    if (not live or not budget.seeded) and (
        scope.token_budget is not None or scope.cost_budget is not None
    ):
        budget = _budget_from_database(quota, window)
    key = quota.api_key
    rows = []

    def add(name, consumed, reserved, limit, period, resets_at):
        if limit is None:
            return
        label, unit = LABELS[name]
        rows.append(
            LimitUse(
                quota_id=quota.pk,
                scope=quota.scope,
                key_name=key.name if key else None,
                key_prefix=key.prefix if key else None,
                name=name,
                label=f"{label} per {window.kind}" if period == window.id else label,
                unit=unit,
                consumed=consumed,
                reserved=reserved,
                limit=limit,
                period=period,
                resets_at=resets_at,
            )
        )

    add(
        "token_budget",
        budget.tokens,
        budget.reserved_tokens,
        scope.token_budget,
        window.id,
        window.end,
    )
    add(
        "cost_budget",
        store.from_micros(budget.cost),
        store.from_micros(budget.reserved_cost),
        scope.cost_budget,
        window.id,
        window.end,
    )
    add("requests_per_minute", requests, 0, scope.requests_per_minute, "minute", None)
    add("tokens_per_minute", tokens, 0, scope.tokens_per_minute, "minute", None)
    add("concurrent_runs", running, 0, scope.max_concurrent_runs, "now", None)
    return rows


def quota_status_for(team: Team) -> list[LimitUse]:
    """Each limit of each of the team's quotas: consumed, reserved, limit, resets_at.

    For the quotas page and the usage dashboard; the team's own quota first, then
    the keys' quotas."""
    return [use for quota in quotas_of(team) for use in quota_status(quota)]
