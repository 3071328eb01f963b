"""Writes for quotas: set, change and remove them, temporary increases, the zone.

Pages, the API and the admin all come through here, so bad values get the same
clear error everywhere: negative numbers, values past any sane size, costs with
more than six decimals, thresholds outside 1-100, unknown time zones.
"""

import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict, NotFound, ServiceError
from apps.quotas import periods, reconcile, rules
from apps.quotas.models import Period, Quota, QuotaIncrease
from apps.teams.models import Team
from apps.teams.permissions import Action, require, user_of

logger = logging.getLogger(__name__)

MAX_TOKENS = 10**12  # a trillion tokens per period
MAX_COST = Decimal(10**9)
MAX_REQUESTS_PER_MINUTE = 1_000_000
MAX_TOKENS_PER_MINUTE = 10**10
MAX_CONCURRENT_RUNS = 100_000
MAX_THRESHOLDS = 5
MAX_INCREASE_DAYS = 366
COUNT_LIMITS = {
    "token_budget": MAX_TOKENS,
    "requests_per_minute": MAX_REQUESTS_PER_MINUTE,
    "tokens_per_minute": MAX_TOKENS_PER_MINUTE,
    "max_concurrent_runs": MAX_CONCURRENT_RUNS,
}
EXTRA_FIELDS = {
    "extra_tokens": ("token_budget", MAX_TOKENS),
    "extra_cost": ("cost_budget", MAX_COST),
    "extra_requests_per_minute": ("requests_per_minute", MAX_REQUESTS_PER_MINUTE),
    "extra_tokens_per_minute": ("tokens_per_minute", MAX_TOKENS_PER_MINUTE),
    "extra_concurrent_runs": ("max_concurrent_runs", MAX_CONCURRENT_RUNS),
}
QUOTA_FIELDS = (
    "period",
    "token_budget",
    "cost_budget",
    "requests_per_minute",
    "tokens_per_minute",
    "max_concurrent_runs",
    "thresholds",
)


def clean_count(value, param: str, maximum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ServiceError(f"{param} must be a whole number.", param=param)
    if value < 0:
        raise ServiceError(f"{param} can't be negative.", param=param)
    if value > maximum:
        raise ServiceError(f"{param} can be at most {maximum:,}.", param=param)
    return value


def clean_cost(value, param: str = "cost_budget") -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ServiceError(f"{param} must be a decimal amount such as 25.50.", param=param)
    if isinstance(value, float):
        value = str(value)  # the shortest repr, not the binary approximation
    try:
        amount = Decimal(value) if not isinstance(value, Decimal) else value
    except (InvalidOperation, TypeError, ValueError):
        raise ServiceError(
            f"{param} must be a decimal amount such as 25.50.", param=param
        ) from None
    if not amount.is_finite():
        raise ServiceError(f"{param} must be a finite amount.", param=param)
    if amount < 0:
        raise ServiceError(f"{param} can't be negative.", param=param)
    if amount > MAX_COST:
        raise ServiceError(f"{param} can be at most {MAX_COST:,}.", param=param)
    if amount.as_tuple().exponent < -6 and amount != amount.quantize(Decimal("0.000001")):
        raise ServiceError(f"{param} can have at most 6 decimal places.", param=param)
    return amount.quantize(Decimal("0.000001"))


def clean_thresholds(value) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ServiceError("thresholds must be a list of percentages.", param="thresholds")
    cleaned = set()
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= 100:
            raise ServiceError(
                "Each threshold is a whole percentage from 1 to 100.", param="thresholds"
            )
        cleaned.add(item)
    if len(cleaned) > MAX_THRESHOLDS:
        raise ServiceError(f"At most {MAX_THRESHOLDS} thresholds.", param="thresholds")
    return sorted(cleaned)


def clean_period(value) -> str:
    if value not in Period.values:
        raise ServiceError("period must be day or month.", param="period")
    return value


def _clean(fields: dict) -> dict:
    cleaned = {}
    for name, value in fields.items():
        if name in COUNT_LIMITS:
            cleaned[name] = clean_count(value, name, COUNT_LIMITS[name])
        elif name == "cost_budget":
            cleaned[name] = clean_cost(value)
        elif name == "thresholds":
            cleaned[name] = clean_thresholds(value)
        elif name == "period":
            cleaned[name] = clean_period(value)
        else:
            raise ServiceError(f"Unknown quota field {name!r}.", param=name)
    return cleaned


def _forget_rules() -> None:
    rules.forget()
    transaction.on_commit(rules.forget)


def counters_refresh(quota: Quota) -> None:
    """After commit: this process forgets its cached rules and the counters of the
    quota's period are set from the database (a new quota counts what was already
    spent this period)."""

    rules.forget()  # this thread may read the new rows at once

    def refresh():
        rules.forget()
        try:
            reconcile.seed([quota.pk])
        except Exception:
            logger.exception("quota: refreshing counters failed", extra={"quota_id": quota.pk})

    transaction.on_commit(refresh)


@transaction.atomic
def quota_create(*, team: Team, actor, api_key=None, **fields) -> Quota:
    """The team's quota (no ``api_key``) or one key's; one of each at most."""
    require(actor, team, Action.MANAGE_QUOTAS)
    if api_key is not None and api_key.team_id != team.pk:
        raise NotFound("No such key in this team.", param="api_key")
    fields.setdefault("period", Period.MONTH)
    fields.setdefault("thresholds", [80, 100])
    cleaned = _clean(fields)
    if Quota.objects.filter(team=team, api_key=api_key).exists():
        whose = "this key" if api_key is not None else "the team"
        raise Conflict(f"There is already a quota for {whose}; change it instead.")
    quota = Quota.objects.create(team=team, api_key=api_key, created_by=user_of(actor), **cleaned)
    counters_refresh(quota)
    return quota


@transaction.atomic
def quota_update(*, quota: Quota, actor, **fields) -> Quota:
    """Change the given fields; ``None`` removes a limit."""
    require(actor, quota.team, Action.MANAGE_QUOTAS)
    cleaned = _clean(fields)
    quota = Quota.objects.select_for_update().get(pk=quota.pk)
    for name, value in cleaned.items():
        if name == "thresholds" and value is None:
            value = []
        setattr(quota, name, value)
    quota.save()
    counters_refresh(quota)
    return quota


@transaction.atomic
def quota_delete(*, quota: Quota, actor) -> None:
    require(actor, quota.team, Action.MANAGE_QUOTAS)
    quota.delete()
    _forget_rules()


@transaction.atomic
def increase_create(
    *, quota: Quota, actor, ends_at, starts_at=None, reason: str = "", **extras
) -> QuotaIncrease:
    """Raise some of the quota's limits until ``ends_at``; only limits the quota sets
    can be raised (an absent limit is already unlimited)."""
    require(actor, quota.team, Action.MANAGE_QUOTAS)
    now = timezone.now()
    starts_at = starts_at or now
    if ends_at is None or ends_at <= now:
        raise ServiceError("ends_at must be in the future.", param="ends_at")
    if ends_at <= starts_at:
        raise ServiceError("ends_at must be after starts_at.", param="ends_at")
    if ends_at > now + timedelta(days=MAX_INCREASE_DAYS):
        raise ServiceError(
            f"A temporary increase lasts at most {MAX_INCREASE_DAYS} days.", param="ends_at"
        )
    if len(reason or "") > 200:
        raise ServiceError("reason can be at most 200 characters.", param="reason")
    cleaned = {}
    for name, value in extras.items():
        if name not in EXTRA_FIELDS:
            raise ServiceError(f"Unknown increase field {name!r}.", param=name)
        base, maximum = EXTRA_FIELDS[name]
        if value in (None, 0):
            continue
        value = (
            clean_cost(value, name) if name == "extra_cost" else clean_count(value, name, maximum)
        )
        if getattr(quota, base) is None:
            raise ServiceError(f"The quota sets no {base.replace('_', ' ')} to raise.", param=name)
        cleaned[name] = value
    if not cleaned:
        raise ServiceError("An increase must raise at least one limit.", param="extra_tokens")
    increase = QuotaIncrease.objects.create(
        quota=quota,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=(reason or "").strip(),
        created_by=user_of(actor),
        **cleaned,
    )
    _forget_rules()
    return increase


@transaction.atomic
def increase_end(*, increase: QuotaIncrease, actor) -> None:
    """End it now (one that has not started yet is removed)."""
    require(actor, increase.quota.team, Action.MANAGE_QUOTAS)
    now = timezone.now()
    if increase.starts_at > now:
        increase.delete()
    elif increase.ends_at > now:
        QuotaIncrease.objects.filter(pk=increase.pk).update(ends_at=now)
    _forget_rules()


@transaction.atomic
def time_zone_set(*, team: Team, actor, time_zone: str) -> Team:
    """The zone days and months of quota periods (and usage days) follow."""
    require(actor, team, Action.MANAGE_QUOTAS)
    name = periods.clean_time_zone(time_zone)
    Team.objects.filter(pk=team.pk).update(time_zone=name)
    team.time_zone = name
    for quota in team.quotas.all():
        counters_refresh(quota)
    return team
