"""Reads for usage: summaries from the rollups, ledger rows for lists and exports.

Summaries read the rollups plus the ledger rows not folded into them yet (the
tail, a few seconds of traffic: ``folding``), so a month of ten million attempts
costs a scan of at most a few thousand rollup rows and the answer is still exact
to the ledger. Totals and top lists come from the daily rows; a chart of one or
two days from the hourly ones. Tail rows are summed and bucketed by the same
code the folder uses, on the team's clock.
"""

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from apps.assistants.models import Assistant
from apps.keys.models import ApiKey
from apps.usage import folding
from apps.usage.models import LATENCY_FIELDS, DailyRollup, HourlyRollup, Price, UsageRecord
from apps.usage.query import Filters, Window
from apps.usage.rollups import (
    COUNTERS,
    Sums,
    dimensions,
    hour_start,
    local_date,
    percentile,
    plain,
)

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


def _window_tail(team, window: Window, filters: Filters, position: int, **extra) -> list:
    return folding.tail(
        team, position, since=window.start_at, until=window.end_at, filters=filters, **extra
    )


def _grouped(tail, key) -> dict:
    groups: dict = defaultdict(Sums)
    for row in tail:
        groups[key(row)].add(row)
    return groups


def _series(team, window: Window, filters: Filters, tail) -> list[Point]:
    zone = window.zone
    if window.granularity == "hour":
        rows = hourly_rows(team, window, filters)
        starts = window.hours()
        several_days = window.days_count > 1

        def label(start):
            local = start.astimezone(zone)
            return local.strftime("%b %d %H:%M" if several_days else "%H:%M")

        def bucket(row):
            return hour_start(row.occurred_at, zone)
    else:
        rows = daily_rows(team, window, filters)
        starts = window.days()

        def label(start):
            return start.isoformat()

        def bucket(row):
            return local_date(row.occurred_at, zone)

    by_bucket = {
        row["bucket"]: row for row in rows.values("bucket").annotate(**_sums()).order_by("bucket")
    }
    for start, sums in _grouped(tail, bucket).items():
        by_bucket[start] = sums.added_to(by_bucket.get(start))
    return [
        Point(start, label(start), Totals.from_sums(by_bucket.get(start, {}))) for start in starts
    ]


DIMENSION_INDEX = {"model": 0, "assistant_id": 1, "prompt_version_id": 2, "api_key_id": 3}


def _top(rows: QuerySet, dimension: str, tail, *, skip_none: bool) -> list[tuple]:
    grouped = rows.values(dimension).annotate(**_sums())
    extra = _grouped(tail, lambda row: dimensions(row)[DIMENSION_INDEX[dimension]])
    if skip_none:
        grouped = grouped.exclude(**{dimension: 0})
        extra.pop(0, None)
    ordered = grouped.order_by("-s_cost", "-s_requests", dimension)[:TOP_LIMIT]
    if not extra:
        return [(row[dimension], Totals.from_sums(row)) for row in ordered]
    # The tail can lift any of its values into the top: their rollup sums too,
    # then rank again. Values outside both can't overtake the rollups' top ones.
    found = {row[dimension]: row for row in ordered}
    missing = [value for value in extra if value not in found]
    if missing:
        lookup = grouped.filter(**{f"{dimension}__in": missing})
        found.update({row[dimension]: row for row in lookup})
    merged = [
        (value, Totals.from_sums(extra[value].added_to(row) if value in extra else row))
        for value, row in found.items()
    ]
    merged += [
        (value, Totals.from_sums(sums.added_to()))
        for value, sums in extra.items()
        if value not in found
    ]
    merged.sort(key=lambda item: (-item[1].cost, -item[1].requests, item[0]))
    return merged[:TOP_LIMIT]


def _named(pairs, names: dict, missing: str) -> list[TopItem]:
    items = []
    for pk, totals in pairs:
        ident, name = names.get(pk, (None, missing if not pk else f"deleted #{pk}"))
        items.append(TopItem(ident, name, totals))
    return items


def usage_summary(team, window: Window, filters: Filters) -> Summary:
    """Totals, a time series and top lists for the window, from rollups and the tail."""

    def read(position):
        tail = _window_tail(team, window, filters, position)
        rows = daily_rows(team, window, filters)
        totals = Sums()
        for row in tail:
            totals.add(row)
        unpriced = rows.values("model").annotate(n=Sum("unpriced")).filter(n__gt=0)
        return {
            "totals": Totals.from_sums(totals.added_to(rows.aggregate(**_sums()))),
            "assistants": _top(rows, "assistant_id", tail, skip_none=False),
            "keys": _top(rows, "api_key_id", tail, skip_none=True),
            "models": _top(rows, "model", tail, skip_none=False),
            "unpriced": sorted(
                {row["model"] for row in unpriced} | {row.model for row in tail if row.unpriced}
            ),
            "series": _series(team, window, filters, tail),
        }

    found = folding.exact(read)
    assistants, keys = found["assistants"], found["keys"]
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
    return Summary(
        window=window,
        totals=found["totals"],
        series=found["series"],
        top_assistants=_named(assistants, assistant_names, "(no assistant)"),
        top_models=[TopItem(model, model, t) for model, t in found["models"]],
        top_keys=_named(keys, key_names, "(no key)"),
        unpriced_models=found["unpriced"],
    )


@dataclass
class Aggregate:
    """One line of the aggregates export: a bucket and a combination of dimensions."""

    bucket: datetime | date
    model: str
    assistant_id: int
    prompt_version_id: int
    api_key_id: int
    totals: Totals


def aggregate_batch(
    team, window: Window, filters: Filters, *, hourly: bool, after=None, size: int
) -> tuple[list[Aggregate], datetime | date | None]:
    """The export's next lines after bucket ``after``, in bucket order (rollup rows
    in their order, then combinations only the tail has), and the last bucket they
    cover (None when nothing follows).

    Whole buckets only (a single bucket bigger than ``size`` comes whole), so each
    combination's rollup row and tail rows are merged in the same batch whatever
    order the database sorts model names in."""
    zone = window.zone
    rows_of = hourly_rows if hourly else daily_rows

    def bucket_of(row):
        return hour_start(row.occurred_at, zone) if hourly else local_date(row.occurred_at, zone)

    def read(position):
        base = rows_of(team, window, filters)
        if after is not None:
            base = base.filter(bucket__gt=after)
        probe = list(base.order_by("bucket", "pk")[: size + 1])
        upper = None
        if len(probe) > size:
            last = probe[-1].bucket
            if probe[0].bucket == last:
                probe = list(base.filter(bucket=last).order_by("pk"))
            else:
                probe = [row for row in probe if row.bucket != last]
            upper = probe[-1].bucket
        return probe, upper, _window_tail(team, window, filters, position)

    batch, upper, tail = folding.exact(read)
    extra = {
        key: sums
        for key, sums in _grouped(tail, lambda row: (bucket_of(row), *dimensions(row))).items()
        if (after is None or key[0] > after) and (upper is None or key[0] <= upper)
    }
    lines: dict = defaultdict(list)
    for row in batch:
        key = (row.bucket, row.model, row.assistant_id, row.prompt_version_id, row.api_key_id)
        sums = {f"s_{name}": getattr(row, name) for name in COUNTERS}
        found = extra.pop(key, None)
        lines[row.bucket].append((key, found.added_to(sums) if found else sums))
    for key in sorted(extra):
        lines[key[0]].append((key, extra[key].added_to()))
    return [
        Aggregate(*key, totals=Totals.from_sums(sums))
        for bucket in sorted(lines)
        for key, sums in lines[bucket]
    ], upper


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
    old rows are gone. Ledger rows not folded yet count from the tail."""

    def read(position):
        days = daily_rows(team, window, filters).aggregate(
            n=Sum("requests"), first=Min("bucket"), last=Max("bucket")
        )
        return days, _window_tail(team, window, filters, position, fields=("occurred_at",))

    days, tail = folding.exact(read)
    dates = [local_date(row.occurred_at, window.zone) for row in tail]
    if days["first"] is not None:
        dates += [days["first"], days["last"]]
    if not dates:
        return 0, None
    cut = replace(window, start=min(dates), end=max(dates))
    cutoff = timezone.now() - timedelta(days=settings.USAGE_RETENTION_DAYS)
    if window.start_at <= cutoff:
        return records_for(team, cut, filters).count(), cut
    return (days["n"] or 0) + len(tail), cut


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
    start = datetime.combine(since, time(), team.zone)

    def read(position):
        rollups = (
            DailyRollup.objects.filter(team=team, bucket__gte=since, unpriced__gt=0)
            .values("model")
            .annotate(requests=Sum("unpriced"))
        )
        tail = folding.tail(team, position, since=start, fields=("model", "unpriced"))
        return list(rollups), tail

    rollups, tail = folding.exact(read)
    counts = {row["model"]: row["requests"] for row in rollups}
    for row in tail:
        if row.unpriced:
            counts[row.model] = counts.get(row.model, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"model": model, "requests": requests} for model, requests in ordered]


def recent_dimensions(team, since: date) -> tuple[set[str], set[int]]:
    """Models and prompt versions used since ``since`` (the filter bar's choices):
    the tail first, then the rollups, so a fold in between loses no name."""
    position = folding.read_mark().position
    tail = folding.tail(team, position, fields=("model", "prompt_version_id"))
    recent = DailyRollup.objects.filter(team=team, bucket__gte=since)
    models = set(recent.values_list("model", flat=True).distinct())
    versions = set(
        recent.exclude(prompt_version_id=0).values_list("prompt_version_id", flat=True).distinct()
    )
    models.update(row.model for row in tail)
    versions.update(row.prompt_version_id for row in tail if row.prompt_version_id)
    return models, versions
