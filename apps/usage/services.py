"""Writes for prices, folding the ledger into rollups, and pruning the ledger.

Billing itself is ``ledger.record``, called by the worker inside the run's
final transaction; everything here is what people and beat do.
"""

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict, ServiceError
from apps.inference.models import Backend
from apps.teams.models import Team
from apps.teams.permissions import Action, require, user_of
from apps.usage import folding
from apps.usage.models import PRICE_DIGITS, Price, UsageRecord

MAX_PRICE = Decimal(10) ** (PRICE_DIGITS["max_digits"] - PRICE_DIGITS["decimal_places"])
# A price may start a little in the past (clock skew, a slow form) but never be backdated.
BACKDATE_SLACK = timedelta(minutes=5)


def clean_price(value, param: str, *, required: bool = True) -> Decimal | None:
    """A price per 1M tokens: non-negative, at most 6 decimal places, no exponent tricks."""
    if value is None or value == "":
        if required:
            raise ServiceError(f"{param} is required.", param=param)
        return None
    try:
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ServiceError(f"{param} must be a decimal number.", param=param) from None
    if not price.is_finite() or price < 0 or price >= MAX_PRICE:
        raise ServiceError(f"{param} must be between 0 and {MAX_PRICE}.", param=param)
    places = -price.as_tuple().exponent if price.as_tuple().exponent < 0 else 0
    if places > PRICE_DIGITS["decimal_places"]:
        raise ServiceError(
            f"{param} has {places} decimal places; prices per 1M tokens take at most "
            f"{PRICE_DIGITS['decimal_places']}.",
            param=param,
            code="too_many_decimal_places",
        )
    return price


@transaction.atomic
def price_override_create(
    *,
    team: Team,
    actor,
    backend: Backend,
    model: str,
    input_per_million,
    output_per_million,
    cached_input_per_million=None,
    effective_from: datetime | None = None,
    note: str = "",
) -> Price:
    """A team's own price for a model on one of its backends, from now (or later) on.

    Past usage keeps the cost it was recorded with; a new price never rewrites it,
    which is also why a price can't be backdated.
    """
    require(actor, team, Action.MANAGE_BACKENDS)
    if backend.team_id != team.pk:
        raise ServiceError(
            "Teams set prices for their own backends only; global backends use global prices.",
            param="backend",
        )
    model = (model or "").strip()
    if not model or len(model) > 200:
        raise ServiceError("model must be 1 to 200 characters.", param="model")
    now = timezone.now()
    effective_from = effective_from or now
    if effective_from < now - BACKDATE_SLACK:
        raise ServiceError(
            "A price can't start in the past: recorded usage keeps its cost.",
            param="effective_from",
        )
    if Price.objects.filter(
        team=team, backend=backend, model=model, effective_from=effective_from
    ).exists():
        raise Conflict("A price for this model already starts at that time.", param="model")
    return Price.objects.create(
        team=team,
        backend=backend,
        model=model,
        input_per_million=clean_price(input_per_million, "input_per_million"),
        output_per_million=clean_price(output_per_million, "output_per_million"),
        cached_input_per_million=clean_price(
            cached_input_per_million, "cached_input_per_million", required=False
        ),
        effective_from=effective_from,
        note=(note or "")[:200],
        created_by=user_of(actor),
    )


def usage_rollups_fold(*, batch_size: int | None = None) -> int:
    """Add the ledger rows beyond the watermark to the rollups (beat, every couple
    of seconds); returns how many went. Safe to run in several places at once."""
    return folding.fold(batch_size=batch_size or folding.BATCH_SIZE)


def usage_rollups_catch_up() -> int:
    """Where nothing runs beat (the embedded default: tasks in-process), fold when
    usage is read, so the tail the reads add stays short. Elsewhere beat folds and
    reads don't write."""
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        return 0
    return usage_rollups_fold()


def usage_records_purge(*, older_than_days: int | None = None, batch_size: int | None = None):
    """Delete ledger rows older than the retention, a batch per statement (each its own
    transaction, so locks stay short and a large backlog never bloats one transaction).
    Rollups are kept; rows not folded into them yet are kept too, or their usage
    would vanish from every summary. Returns how many rows went."""
    days = older_than_days if older_than_days is not None else settings.USAGE_RETENTION_DAYS
    size = batch_size or settings.USAGE_RETENTION_BATCH_SIZE
    cutoff = timezone.now() - timedelta(days=days)
    done = folding.folded(folding.read_mark().position)
    deleted = 0
    while True:
        batch = UsageRecord.objects.filter(done, occurred_at__lt=cutoff).order_by("occurred_at")
        ids = list(batch.values_list("pk", flat=True)[:size])
        if not ids:
            return deleted
        deleted += UsageRecord.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < size:
            return deleted
