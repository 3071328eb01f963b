"""Reads for usage: summaries from the rollups, ledger rows for lists and exports.

Summaries never touch the ledger, so a month of ten million attempts costs a
scan of at most a few thousand rollup rows. Totals and top lists come from the
daily rows; a chart of one or two days from the hourly ones.
"""

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from apps.assistants.models import Assistant
from apps.keys.models import ApiKey
from apps.usage.models import LATENCY_FIELDS, DailyRollup, HourlyRollup, Price, UsageRecord
from apps.usage.query import Filters, Window
from apps.usage.rollups import COUNTERS, percentile, plain

TOP_LIMIT = 5


@dataclass
class Totals:
    requests: int = 0
    errors: int = 0
    estimated_requests: int = 0
    unpriced_requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    cost: Decimal = Decimal(0)
    latency_avg_ms: int | None = None
    latency_p50_ms: int | None = None
    latency_p95_ms: int | None = None

    @classmethod
    def from_sums(cls, sums: dict) -> "Totals":
        value = {name: sums.get(f"s_{name}") or 0 for name in COUNTERS}
        histogram = [int(value[name]) for name in LATENCY_FIELDS]
        measured = value["latency_count"]
        return cls(
            requests=value["requests"],
            errors=value["errors"],
            estimated_requests=value["estimated"],
            unpriced_requests=value["unpriced"],
            prompt_tokens=value["prompt_tokens"],
            completion_tokens=value["completion_tokens"],
            total_tokens=value["total_tokens"],
            cached_tokens=value["cached_tokens"],
            cost=plain(value["cost"]),
            latency_avg_ms=round(value["latency_sum_ms"] / measured) if measured else None,
            latency_p50_ms=percentile(histogram, 0.5),
            latency_p95_ms=percentile(histogram, 0.95),
        )


@dataclass
class Point:
    start: datetime | date
    label: str
    totals: Totals


@dataclass
class TopItem:
    id: str | None
    name: str
    totals: Totals


@dataclass
class Summary:
    window: Window
    totals: Totals
    series: list[Point]
    top_assistants: list[TopItem] = field(default_factory=list)
    top_models: list[TopItem] = field(default_factory=list)
    top_keys: list[TopItem] = field(default_factory=list)
    unpriced_models: list[str] = field(default_factory=list)


def _sums() -> dict:
    return {f"s_{name}": Sum(name) for name in COUNTERS}


def daily_rows(team, window: Window, filters: Filters) -> QuerySet[DailyRollup]:
    return DailyRollup.objects.filter(
        team=team, bucket__gte=window.start, bucket__lte=window.end, **filters.lookups()
    )


def hourly_rows(team, window: Window, filters: Filters) -> QuerySet[HourlyRollup]:
    return HourlyRollup.objects.filter(
        team=team, bucket__gte=window.start_at, bucket__lt=window.end_at, **filters.lookups()
    )


def _series(team, window: Window, filters: Filters) -> list[Point]:
    if window.granularity == "hour":
        rows = hourly_rows(team, window, filters)
        starts = window.hours()
        several_days = window.days_count > 1

        def label(start):
            local = start.astimezone(window.zone)
            return local.strftime("%b %d %H:%M" if several_days else "%H:%M")
    else:
        rows = daily_rows(team, window, filters)
        starts = window.days()

        def label(start):
            return start.isoformat()

    by_bucket = {
        row["bucket"]: row for row in rows.values("bucket").annotate(**_sums()).order_by("bucket")
    }
    return [
        Point(start, label(start), Totals.from_sums(by_bucket.get(start, {}))) for start in starts
    ]


def _top(rows: QuerySet, dimension: str, *, skip_none: bool) -> list[tuple]:
    grouped = rows.values(dimension).annotate(**_sums())
    if skip_none:
        grouped = grouped.exclude(**{dimension: 0})
    ordered = grouped.order_by("-s_cost", "-s_requests", dimension)[:TOP_LIMIT]
    return [(row[dimension], Totals.from_sums(row)) for row in ordered]


def _named(pairs, names: dict, missing: str) -> list[TopItem]:
    items = []
    for pk, totals in pairs:
        ident, name = names.get(pk, (None, missing if not pk else f"deleted #{pk}"))
        items.append(TopItem(ident, name, totals))
    return items


def usage_summary(team, window: Window, filters: Filters) -> Summary:
    """Totals, a time series and top lists for the window, all from rollups."""
    rows = daily_rows(team, window, filters)
    totals = Totals.from_sums(rows.aggregate(**_sums()))
    assistants = _top(rows, "assistant_id", skip_none=False)
    keys = _top(rows, "api_key_id", skip_none=True)
    models = _top(rows, "model", skip_none=False)
    assistant_names = {
        a["pk"]: (a["slug"], a["name"])
        for a in Assistant.objects.filter(pk__in=[pk for pk, _ in assistants]).values(
            "pk", "slug", "name"
        )
    }
    key_names = {
        k["pk"]: (k["public_id"], k["name"])
        for k in ApiKey.objects.filter(pk__in=[pk for pk, _ in keys]).values(
            "pk", "public_id", "name"
        )
    }
    unpriced = rows.values("model").annotate(n=Sum("unpriced")).filter(n__gt=0).order_by("model")
    return Summary(
        window=window,
        totals=totals,
        series=_series(team, window, filters),
        top_assistants=_named(assistants, assistant_names, "(no assistant)"),
        top_models=[TopItem(model, model, t) for model, t in models],
        top_keys=_named(keys, key_names, "(no key)"),
        unpriced_models=[row["model"] for row in unpriced],
    )


def records_for(team, window: Window, filters: Filters) -> QuerySet[UsageRecord]:
    """Ledger rows in the window, newest first (only as far back as retention keeps)."""
    return (
        UsageRecord.objects.filter(
            team=team,
            occurred_at__gte=window.start_at,
            occurred_at__lt=window.end_at,
            **filters.lookups(),
        )
        .select_related("assistant", "api_key", "prompt_version__prompt", "backend", "user")
        .order_by("-occurred_at", "-pk")
    )


def records_span(team, window: Window, filters: Filters) -> tuple[int, Window | None]:
    """How many ledger rows the window holds, and the window cut down to the days
    that have any, both read from the daily rollups (each attempt is one request
    there).

    Counting 3.3 million raw rows for a 30-day page took 400-800 ms
    (bench/usage.py); the rollups answer in a few. The cut matters for filters:
    PostgreSQL pages newest-first along the time index, and for a prompt version
    last used three weeks ago it walked three weeks of other rows (330 ms) before
    finding one. Windows reaching past retention count the ledger itself, whose
    old rows are gone."""
    days = daily_rows(team, window, filters).aggregate(
        n=Sum("requests"), first=Min("bucket"), last=Max("bucket")
    )
    if days["first"] is None:
        return 0, None
    cut = replace(window, start=days["first"], end=days["last"])
    cutoff = timezone.now() - timedelta(days=settings.USAGE_RETENTION_DAYS)
    if window.start_at <= cutoff:
        return records_for(team, cut, filters).count(), cut
    return days["n"] or 0, cut


def prices_for_team(team) -> QuerySet[Price]:
    """Global prices and the team's own overrides, newest first per model."""
    return (
        Price.objects.filter(Q(team__isnull=True) | Q(team=team))
        .select_related("backend")
        .order_by("model", "-effective_from", "-pk")
    )


def unpriced_models_recently(team, days: int = 30) -> list[dict]:
    """Models billed at 0 for lack of a price lately, with how many requests."""
    since = timezone.now().astimezone(team.zone).date() - timedelta(days=days)
    return list(
        DailyRollup.objects.filter(team=team, bucket__gte=since, unpriced__gt=0)
        .values("model")
        .annotate(requests=Sum("unpriced"))
        .order_by("-requests", "model")
    )
