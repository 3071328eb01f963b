"""Hourly and daily sums kept current as ledger rows arrive, and percentiles from them.

Each ledger write adds its numbers to one hourly and one daily row per
combination of dimensions with ``INSERT ... ON CONFLICT DO UPDATE SET x = x +
EXCLUDED.x``: the database either inserts the row or locks the existing one
and adds to its latest committed values, so concurrent writers never lose an
increment. Rows are always taken in the same order (hourly before daily, then
by key) so two transactions touching the same rows can't deadlock. The
statement is the same on SQLite, which keeps the embedded default on this path.
"""

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection

from apps.usage.models import (
    DIMENSIONS,
    LATENCY_BOUNDS_MS,
    LATENCY_FIELDS,
    DailyRollup,
    HourlyRollup,
    UsageRecord,
)
from apps.usage.models import AttemptStatus as Status

COUNTERS = (
    "requests",
    "errors",
    "estimated",
    "unpriced",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cost",
    "latency_count",
    "latency_sum_ms",
    *LATENCY_FIELDS,
)


def hour_start(moment: datetime, zone: ZoneInfo) -> datetime:
    """The start of the hour on the team's clock, as an instant in UTC. Zones half an
    hour off UTC get buckets that still add up to their own days."""
    local = moment.astimezone(zone)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def latency_field(latency_ms: int) -> str:
    return LATENCY_FIELDS[bisect_left(LATENCY_BOUNDS_MS, latency_ms)]


@dataclass
class Sums:
    values: dict = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))

    def add(self, record: UsageRecord) -> None:
        v = self.values
        v["requests"] += 1
        v["errors"] += record.status == Status.FAILED
        v["estimated"] += record.usage_estimated
        v["unpriced"] += record.unpriced
        v["prompt_tokens"] += record.prompt_tokens
        v["completion_tokens"] += record.completion_tokens
        v["total_tokens"] += record.total_tokens
        v["cached_tokens"] += record.cached_tokens or 0
        v["cost"] += record.cost
        if record.latency_ms is not None:
            v["latency_count"] += 1
            v["latency_sum_ms"] += record.latency_ms
            v[latency_field(record.latency_ms)] += 1


def _key(record: UsageRecord) -> tuple:
    return (
        record.model,
        record.assistant_id or 0,
        record.prompt_version_id or 0,
        record.api_key_id or 0,
    )


def add_records(records: Iterable[UsageRecord], zone: ZoneInfo) -> None:
    """Add the records to their hourly and daily rows (in the caller's transaction)."""
    hourly: dict[tuple, Sums] = {}
    daily: dict[tuple, Sums] = {}
    for record in records:
        dims = _key(record)
        team = record.team_id
        hourly.setdefault((team, hour_start(record.occurred_at, zone), *dims), Sums()).add(record)
        daily.setdefault((team, local_date(record.occurred_at, zone), *dims), Sums()).add(record)
    _upsert(HourlyRollup, hourly)
    _upsert(DailyRollup, daily)


def _upsert(model, rows: Mapping[tuple, Sums]) -> None:
    if not rows:
        return
    keys = ("team", "bucket", *DIMENSIONS)
    fields = [model._meta.get_field(name) for name in (*keys, *COUNTERS)]
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    columns = ", ".join(q(f.column) for f in fields)
    one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    target = ", ".join(q(model._meta.get_field(name).column) for name in keys)
    updates = ", ".join(f"{q(c)} = {table}.{q(c)} + EXCLUDED.{q(c)}" for c in COUNTERS)
    params = []
    for key in sorted(rows):
        values = (*key, *(rows[key].values[name] for name in COUNTERS))
        params.extend(
            f.get_db_prep_value(value, connection) for f, value in zip(fields, values, strict=True)
        )
    # Only quoted model metadata is interpolated; every value is a parameter.
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES {', '.join([one_row] * len(rows))} "  # noqa: S608
        f"ON CONFLICT ({target}) DO UPDATE SET {updates}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def percentile(counts: list[int], fraction: float) -> int | None:
    """The latency (ms) under which ``fraction`` of the requests fall, interpolated
    inside its histogram bucket; None when nothing was measured. The open last
    bucket answers its lower bound (the histogram can't see further)."""
    total = sum(counts)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            low = LATENCY_BOUNDS_MS[index - 1] if index else 0
            if index >= len(LATENCY_BOUNDS_MS):
                return low
            high = LATENCY_BOUNDS_MS[index]
            return round(low + (high - low) * max(rank - seen, 0) / count)
        seen += count
    return LATENCY_BOUNDS_MS[-1]


def plain(value) -> Decimal:
    """A sum as an exact decimal without trailing zeros or exponent ("0.0002", "20")."""
    amount = value if isinstance(value, Decimal) else Decimal(str(value or 0))
    return Decimal(format(amount.normalize(), "f"))
