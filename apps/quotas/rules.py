"""The limits in force for a run or a request: quotas plus active increases.

Read on every gateway request, so each process keeps them for
``QUOTA_RULES_CACHE_SECONDS``; a change made in this process clears its copy at
once (``forget``), other processes see it within that time.
"""

import threading
import time
from dataclasses import dataclass, replace
from decimal import Decimal

from django.conf import settings
from django.db.models import Prefetch, Q
from django.utils import timezone

from apps.quotas.models import Quota, QuotaIncrease

_cache: dict[tuple[int, int | None], tuple[float, tuple]] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class ScopeRules:
    name: str  # t<team id> or k<key id>: the Redis scope
    scope: str  # team or key
    quota_id: int | None = None
    period: str | None = None  # day or month when a Quota row sets budgets
    token_budget: int | None = None
    cost_budget: Decimal | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent_runs: int | None = None
    thresholds: tuple[int, ...] = ()

    @property
    def key_id(self) -> int | None:
        """The API key a key scope limits (its name is ``k<id>``); None for the team."""
        return int(self.name[1:]) if self.scope == "key" else None


def _plus(value, extra):
    return None if value is None else value + extra


def scope_rules(quota: Quota, increases=(), at=None) -> ScopeRules:
    """A quota's limits with the increases active at ``at`` added."""
    at = at or timezone.now()
    active = [i for i in increases if i.is_active(at)]
    return ScopeRules(
        name=f"k{quota.api_key_id}" if quota.api_key_id else f"t{quota.team_id}",
        scope=quota.scope,
        quota_id=quota.pk,
        period=quota.period,
        token_budget=_plus(quota.token_budget, sum(i.extra_tokens for i in active)),
        cost_budget=_plus(quota.cost_budget, sum((i.extra_cost for i in active), Decimal(0))),
        requests_per_minute=_plus(
            quota.requests_per_minute, sum(i.extra_requests_per_minute for i in active)
        ),
        tokens_per_minute=_plus(
            quota.tokens_per_minute, sum(i.extra_tokens_per_minute for i in active)
        ),
        max_concurrent_runs=_plus(
            quota.max_concurrent_runs, sum(i.extra_concurrent_runs for i in active)
        ),
        thresholds=tuple(sorted({int(t) for t in quota.thresholds or ()})),
    )


def _load(team_id: int, key_id: int | None) -> tuple:
    now = timezone.now()
    which = Q(api_key__isnull=True)
    if key_id is not None:
        which |= Q(api_key_id=key_id)
    quotas = Quota.objects.filter(which, team_id=team_id).prefetch_related(
        Prefetch(
            "increases",
            queryset=QuotaIncrease.objects.filter(starts_at__lte=now, ends_at__gt=now),
            to_attr="active_increases",
        )
    )
    team_rules = key_rules = None
    for quota in quotas:
        rules = scope_rules(quota, quota.active_increases, now)
        if quota.api_key_id is None:
            team_rules = rules
        else:
            key_rules = rules
    return team_rules, key_rules


def _cached(team_id: int, key_id: int | None) -> tuple:
    ttl = settings.QUOTA_RULES_CACHE_SECONDS
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get((team_id, key_id))
    if hit is not None and hit[0] > now:
        return hit[1]
    value = _load(team_id, key_id)
    if ttl > 0:
        with _cache_lock:
            if len(_cache) > 10_000:
                _cache.clear()
            _cache[(team_id, key_id)] = (now + ttl, value)
    return value


def for_scope(team_id: int, name: str) -> ScopeRules | None:
    """The quota row's rules behind a Redis scope name (``t12``, ``k5``)."""
    key_id = int(name[1:]) if name.startswith("k") else None
    team_rules, key_rules = _cached(team_id, key_id)
    return key_rules if key_id is not None else team_rules


def forget() -> None:
    """Drop this process's cached rules after a quota changed."""
    with _cache_lock:
        _cache.clear()


def lower_of(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def for_key(key) -> ScopeRules | None:
    """The key's own limits: its quota row and the rates set on the key itself."""
    _team, quota_rules = _cached(key.team_id, key.pk)
    rpm, tpm = key.requests_per_minute, key.tokens_per_minute
    if quota_rules is None:
        if rpm is None and tpm is None:
            return None
        quota_rules = ScopeRules(name=f"k{key.pk}", scope="key")
    return replace(
        quota_rules,
        requests_per_minute=lower_of(quota_rules.requests_per_minute, rpm),
        tokens_per_minute=lower_of(quota_rules.tokens_per_minute, tpm),
    )


def for_run(team_id: int, key=None) -> list[ScopeRules]:
    """The scopes a run is held to: the team's quota, then the key's limits."""
    team_rules, _key = _cached(team_id, key.pk if key is not None else None)
    scopes = [team_rules] if team_rules is not None else []
    if key is not None:
        key_rules = for_key(key)
        if key_rules is not None:
            scopes.append(key_rules)
    return scopes
