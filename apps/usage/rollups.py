"""Hourly and daily sums of ledger rows, and percentiles from them.

The folder (``folding.fold``) adds a batch of ledger rows to one hourly and one
daily row per combination of dimensions with ``INSERT ... ON CONFLICT DO UPDATE
SET x = x + EXCLUDED.x``: the database either inserts the row or locks the
existing one and adds to its latest committed values, so another writer (a
second folder, the bench) never loses an increment. Rows are always taken in
the same order (hourly before daily, then by key) so two transactions touching
the same rows can't deadlock. The statement is the same on SQLite, which keeps
the embedded default on this path. Readers add the rows not folded yet with the
same ``Sums`` and buckets, so both halves count alike.
"""

from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
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

    def add(self, record: UsageRecord) -> None:  # or a row with the same attributes
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

    def added_to(self, sums: Mapping | None = None) -> dict:
        """``sums`` (aggregates named ``s_<counter>``, as the selectors read
        rollups) plus these, under the same names."""
        out = dict(sums or {})
        for name, value in self.values.items():
            out[f"s_{name}"] = (out.get(f"s_{name}") or 0) + value
        return out


def dimensions(record) -> tuple:
    """(model, assistant, prompt version, key) as rollups key them: 0 for none."""
    return (
        record.model,
        record.assistant_id or 0,
        record.prompt_version_id or 0,
        record.api_key_id or 0,
    )


def add_records(records: Iterable, zone: ZoneInfo | Mapping[int, ZoneInfo]) -> None:
    """Add the records (ledger rows, or rows with the same attributes) to their
    hourly and daily rows, in the caller's transaction. ``zone`` is one zone for
    all, or each team's zone by team id."""
    hourly: dict[tuple, Sums] = {}
    daily: dict[tuple, Sums] = {}
    for record in records:
        team = record.team_id
        at = zone if isinstance(zone, ZoneInfo) else zone[team]
        dims = dimensions(record)
        hourly.setdefault((team, hour_start(record.occurred_at, at), *dims), Sums()).add(record)
        daily.setdefault((team, local_date(record.occurred_at, at), *dims), Sums()).add(record)
    _upsert(HourlyRollup, hourly)
    _upsert(DailyRollup, daily)


# Rows per INSERT: 34 parameters each stays far below PostgreSQL's 65535 and
# SQLite's 32766 bound parameters, for a fold batch of any size.
UPSERT_ROWS = 500


def _upsert(model, rows: Mapping[tuple, Sums]) -> None:
    if not rows:
        return
    keys = ("team", "bucket", *DIMENSIONS)
    fields = [model._meta.get_field(name) for name in (*keys, *COUNTERS)]
    ordered = sorted(rows)
    for start in range(0, len(ordered), UPSERT_ROWS):
        chunk = ordered[start : start + UPSERT_ROWS]
        _upsert_rows(model, fields, keys, [(key, rows[key]) for key in chunk])


def _upsert_rows(model, fields, keys, rows: Sequence[tuple[tuple, Sums]]) -> None:
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    columns = ", ".join(q(f.column) for f in fields)
    one_row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    target = ", ".join(q(model._meta.get_field(name).column) for name in keys)
    updates = ", ".join(f"{q(c)} = {table}.{q(c)} + EXCLUDED.{q(c)}" for c in COUNTERS)
    params = []
    for key, sums in rows:
        values = (*key, *(sums.values[name] for name in COUNTERS))
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
