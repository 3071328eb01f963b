"""What a model costs at a moment, and what some tokens of it cost.

Used by the ledger when it bills an attempt and by quotas when they estimate a
reservation. The most specific price wins (the team's override for the
backend, then a global price for the backend, then the global price of the
model); within one level the latest ``effective_from`` not after ``at``.
"""

from datetime import datetime
from decimal import Decimal

from django.db.models import Case, Exists, IntegerField, Q, Value, When
from django.utils import timezone

from apps.inference.models import Backend, BackendKind
from apps.usage.models import Price

FREE_KINDS = (BackendKind.LOCAL,)

MILLION = Decimal(1_000_000)
ZERO = Decimal(0)


def price_for(*, team, backend, model: str, at: datetime | None = None) -> Price | None:
    """The price in force for ``model`` on ``backend`` for ``team`` at ``at`` (now if None)."""
    at = at or timezone.now()
    team_id = getattr(team, "pk", team)
    backend_id = getattr(backend, "pk", backend)
    levels = Q(team__isnull=True, backend__isnull=True)
    rank = [When(team__isnull=True, backend__isnull=True, then=Value(2))]
    if backend_id is not None:
        # A model's global price is what a provider charges for it; the local
        # development backend only borrows the name, so only a price set for that
        # backend itself applies (checked in the same query, no extra round trip).
        levels &= ~Exists(Backend.objects.filter(pk=backend_id, kind__in=FREE_KINDS))
        levels |= Q(team__isnull=True, backend_id=backend_id)
        rank.insert(0, When(team__isnull=True, backend_id=backend_id, then=Value(1)))
        if team_id is not None:
            levels |= Q(team_id=team_id, backend_id=backend_id)
            rank.insert(0, When(team_id=team_id, backend_id=backend_id, then=Value(0)))
    return (
        Price.objects.filter(levels, model=model, effective_from__lte=at)
        .annotate(level=Case(*rank, output_field=IntegerField()))
        .order_by("level", "-effective_from", "-pk")
        .first()
    )


def plain_amount(value) -> str:
    """A decimal without trailing zeros or exponent: 10.000000 -> 10, 0.150000 -> 0.15."""
    return format(Decimal(value).normalize(), "f")


def cost_at(
    price: Price | None, *, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0
) -> Decimal:
    """Exact cost of the tokens at ``price``; cached prompt tokens are part of
    ``prompt_tokens`` and billed at the cached price where there is one."""
    if price is None:
        return ZERO
    cached = min(max(cached_tokens or 0, 0), prompt_tokens)
    cached_price = (
        price.cached_input_per_million
        if price.cached_input_per_million is not None
        else price.input_per_million
    )
    amount = (
        (prompt_tokens - cached) * price.input_per_million
        + cached * cached_price
        + completion_tokens * price.output_per_million
    )
    return amount / MILLION


def cost_of(
    *,
    team,
    backend,
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
    at: datetime | None = None,
) -> tuple[Decimal, bool]:
    """(cost, priced): an unpriced model costs 0 and says so, never silently free."""
    price = price_for(team=team, backend=backend, model=model, at=at)
    cost = cost_at(
        price,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
    )
    return cost, price is not None
