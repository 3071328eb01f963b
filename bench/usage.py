"""Benchmark the usage page and API on ten million usage records; print tables.

``apps.usage`` promises that summaries never read the ledger: the page and
``GET /api/v1/teams/{slug}/usage`` sum hourly/daily rollup rows, so a month of
millions of attempts costs a few thousand rows. This checks the promise at
the size where it matters (the target: under 150 ms p50 for the 30-day view on
this machine), with the web process on its own, as in production (uvicorn
serving ``portal.asgi``; see ``stack.py``).

Driving millions of runs through workers would take days, so the ledger is
written with bulk SQL instead (``INSERT ... SELECT ... FROM generate_series``)
and the rollups are built from it with ``INSERT ... SELECT ... GROUP BY``,
using the same buckets (the team's hours and local dates), keys and latency
histogram as ``apps.usage.rollups``. A check then rebuilds the rollups of two
whole local days (yesterday, and the daylight-saving change when the data
covers one) with the ledger's own ``rollups.add_records`` in a rolled-back
transaction and compares the rows, so the bench measures what the ledger
would have written.

Then it times the page (logged in: a session), the summary API and the
records list (a ``read`` API key), sequentially and concurrently, prints
p50/p95/p99 next to the target, the ``EXPLAIN ANALYZE`` time of every query
behind a summary and a records page, and the tables' sizes.

Run: ``.venv/bin/python bench/usage.py --help``. It reports, never judges:
exit code 0 with misses or errors in the table, 1 only when it could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from gateway import closed_loop
from stack import (
    Stack,
    add_stack_arguments,
    fmt,
    int_list,
    pct,
    percentile,
    print_table,
    start_web,
)
from stack import run as stack_run

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_usage"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"
TARGET_P50_MS = 150.0
UNUSED_STACK_OPTIONS = {
    "worker_concurrency",
    "sim_ttft_ms",
    "sim_tokens",
    "sim_tps",
    "relay_interval_ms",
}
EMAIL = "usage-bench@example.com"
TEAM_NAME = "Usage bench"
HOSTED, SELF_HOSTED = "hosted", "self-hosted"

# The team's traffic, by weight. Assistants: (name, backend, model, prompt or None,
# weight); direct calls without an assistant, and fallbacks to a second backend, are
# (assistant name or None, backend, model, weight). The model without a seeded price
# (llama) is billed at 0 and flagged unpriced, as in production.
ASSISTANTS = [
    ("Support bot", HOSTED, "gpt-4o-mini", "support", 27),
    ("Code review", HOSTED, "gpt-4.1", "review", 13),
    ("Summarizer", HOSTED, "gpt-5-mini", "summary", 15),
    ("Sales writer", HOSTED, "gpt-4o", None, 8),
    ("Internal search", SELF_HOSTED, "llama-3.1-70b", None, 10),
    ("Translator", HOSTED, "gpt-4o-mini", "summary", 7),
]
OTHER_CALLS = [
    (None, HOSTED, "gpt-4o-mini", 6),
    (None, HOSTED, "gpt-4.1", 3),
    (None, SELF_HOSTED, "llama-3.1-70b", 2),
    ("Support bot", SELF_HOSTED, "llama-3.1-70b", 3),  # fallback
    ("Code review", HOSTED, "gpt-4o", 2),  # fallback
]
BACKEND_MODELS = {
    HOSTED: ["gpt-4.1", "gpt-4o", "gpt-4o-mini", "gpt-5-mini"],
    SELF_HOSTED: ["llama-3.1-70b"],
}
# Prompt slug: versions (each assistant on it moves through them over the period).
PROMPTS = {"support": 4, "review": 3, "summary": 2}
# Who calls: (key name or None for a logged-in user, weight).
CALLERS = [(None, 40), ("backend service", 30), ("batch jobs", 15), ("zapier", 10), ("ci", 5)]


# --- command line -------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load millions of usage records with bulk SQL, build their rollups, "
        "and time the usage page and API over them."
    )
    parser.add_argument(
        "--records", type=int, default=10_000_000, help="usage records (default 10,000,000)"
    )
    parser.add_argument("--days", type=int, default=90, help="spread over this many days")
    parser.add_argument(
        "--time-zone",
        default="America/New_York",
        help="the team's time zone (default America/New_York: a DST change in the data)",
    )
    load = parser.add_mutually_exclusive_group()
    load.add_argument(
        "--skip-load",
        action="store_true",
        help="measure what the database holds; never load",
    )
    load.add_argument(
        "--reload",
        action="store_true",
        help="load even when the database already holds --records records and their rollups",
    )
    parser.add_argument(
        "--no-verify",
        action="store_true",
        help="skip comparing two days of SQL-built rollups with what the ledger writes",
    )
    parser.add_argument("--requests", type=int, default=50, help="timed requests per row")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per endpoint")
    parser.add_argument(
        "--concurrency",
        type=int_list,
        default=[1, 5],
        help="comma-separated numbers of concurrent callers (default 1,5)",
    )
    add_stack_arguments(
        parser,
        default_database_url=DEFAULT_DATABASE_URL,
        default_redis_url=DEFAULT_REDIS_URL,
        timeout_help="seconds one request may take before it counts as an error",
    )
    for action in parser._actions:  # the worker and the simulator don't run here
        if action.dest in UNUSED_STACK_OPTIONS:
            action.help = argparse.SUPPRESS
    args = parser.parse_args(argv)
    if args.records < 1 or args.days < 1 or args.requests < 1:
        parser.error("--records, --days and --requests must be positive")
    return args


def load_average() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


# --- the team and what its records point at ---------------------------------------


@dataclass
class Fixtures:
    team: object
    user: object
    backends: dict[str, int]
    assistants: dict[str, object]  # name -> Assistant
    versions: dict[str, list[int]]  # prompt slug -> version ids, oldest first
    keys: dict[str, int]  # caller name -> ApiKey id
    prices: dict[str, object]  # model -> the global Price the ledger would apply
    zone_changed: bool = False


def fixtures(time_zone: str) -> Fixtures:
    """The team, its owner and everything records refer to; found again on later runs."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from apps.accounts.services import user_create
    from apps.assistants.models import Assistant
    from apps.assistants.services import assistant_create
    from apps.inference.models import Backend, BackendKind
    from apps.inference.services import backend_create
    from apps.keys.models import ApiKey
    from apps.keys.services import key_create
    from apps.prompts.models import Prompt
    from apps.prompts.services import prompt_create, version_create
    from apps.teams.models import Membership, Team
    from apps.teams.services import team_create
    from apps.usage import pricing

    user = get_user_model().objects.filter(email=EMAIL).first()
    if user is None:
        user = user_create(email=EMAIL, password=None, display_name="Usage bench")
    membership = Membership.objects.filter(user=user, team__name=TEAM_NAME).first()
    team = membership.team if membership else team_create(name=TEAM_NAME, created_by=user)
    moved = team.time_zone != time_zone  # the rollups' buckets are the old zone's
    if moved:
        Team.objects.filter(pk=team.pk).update(time_zone=time_zone)
        team.refresh_from_db()

    backends = {}
    for name, models in BACKEND_MODELS.items():
        backend = Backend.objects.filter(team=team, name=name).first() or backend_create(
            team=team,
            actor=user,
            kind=BackendKind.OPENAI_COMPATIBLE,
            name=name,
            base_url=f"http://{name}.invalid/v1",
            models=models,
        )
        backends[name] = backend.pk

    versions = {}
    for slug, count in PROMPTS.items():
        prompt = Prompt.objects.filter(team=team, slug=slug).first()
        if prompt is None:
            prompt = prompt_create(team=team, actor=user, name=slug, system=f"You are {slug} v1.")
        for number in range(prompt.versions.count() + 1, count + 1):
            version_create(
                prompt=prompt,
                actor=user,
                system=f"You are {slug} v{number}.",
                messages=None,
                parameters=None,
                commit_message=f"v{number}",
            )
        versions[slug] = list(
            prompt.versions.filter(number__lte=count)
            .order_by("number")
            .values_list("pk", flat=True)
        )

    assistants = {}
    for name, backend, model, _prompt, _weight in ASSISTANTS:
        assistants[name] = Assistant.objects.filter(team=team, name=name).first() or (
            assistant_create(
                team=team, actor=user, name=name, backend=backends[backend], model=model
            )
        )

    keys = {}
    for name, _weight in CALLERS:
        if name is not None:
            key = ApiKey.objects.filter(team=team, name=name).first()
            keys[name] = (
                key or key_create(team=team, actor=user, name=name, scopes=["chat"])[0]
            ).pk

    now = timezone.now()
    prices = {
        model: pricing.price_for(team=team.pk, backend=backends[backend], model=model, at=now)
        for backend, models in BACKEND_MODELS.items()
        for model in models
    }
    return Fixtures(team, user, backends, assistants, versions, keys, prices, moved)


# --- bulk load --------------------------------------------------------------------


def who_rows(fx: Fixtures) -> list[tuple]:
    """One row per weight unit: (slot, assistant, backend, model, price, in, out, versions)."""
    prompt_of = {name: prompt for name, _b, _m, prompt, _w in ASSISTANTS}
    calls = [(name, backend, model, weight) for name, backend, model, _p, weight in ASSISTANTS]
    rows = []
    for name, backend, model, weight in [*calls, *OTHER_CALLS]:
        price = fx.prices[model]
        prompt = prompt_of.get(name)
        row = (
            fx.assistants[name].pk if name else None,
            fx.backends[backend],
            model,
            price.pk if price else None,
            price.input_per_million if price else None,
            price.output_per_million if price else None,
            fx.versions[prompt] if prompt else None,
        )
        base = len(rows)
        rows.extend((base + i, *row) for i in range(weight))
    return rows


def caller_rows(fx: Fixtures) -> list[tuple]:
    """One row per weight unit: (slot, api key, user); a key's calls name no user."""
    rows = []
    for name, weight in CALLERS:
        row = (fx.keys[name], None) if name else (None, fx.user.pk)
        base = len(rows)
        rows.extend((base + i, *row) for i in range(weight))
    return rows


# Layered so every random() is drawn once per row: ``r`` draws, ``s`` shapes an attempt
# (status, tokens, latency), the outer SELECT picks who called what and prices it.
RECORDS_SQL = """
INSERT INTO usage_usagerecord (
    team_id, user_id, api_key_id, assistant_id, prompt_version_id, backend_id, model,
    status, http_status, prompt_tokens, completion_tokens, total_tokens, cached_tokens,
    usage_estimated, cost, unpriced, price_id, latency_ms, ttft_ms, occurred_at
)
SELECT
    %(team)s, c.user_id, c.api_key_id, w.assistant_id,
    w.versions[1 + least(floor(s.frac * cardinality(w.versions))::int,
                         cardinality(w.versions) - 1)],
    w.backend_id, w.model,
    s.status,
    CASE s.status WHEN 'succeeded' THEN 200 WHEN 'failed' THEN s.fail_http END,
    s.prompt_tokens, s.completion_tokens, s.prompt_tokens + s.completion_tokens, NULL,
    s.estimated,
    CASE WHEN w.price_id IS NULL THEN 0
         ELSE (s.prompt_tokens * w.input + s.completion_tokens * w.output) / 1000000 END,
    w.price_id IS NULL, w.price_id,
    s.latency_ms,
    CASE WHEN s.status <> 'failed' THEN (s.latency_ms * (0.1 + 0.3 * s.r_ttft))::int END,
    s.occurred_at
FROM (
    SELECT
        r.*,
        CASE WHEN r.r_status < 0.02 THEN 'failed'
             WHEN r.r_status < 0.03 THEN 'cancelled'
             ELSE 'succeeded' END AS status,
        CASE WHEN r.r_http < 0.5 THEN 502 ELSE 429 END AS fail_http,
        CASE WHEN r.r_status < 0.02 THEN 0
             ELSE 50 + floor(r.r_prompt * r.r_prompt * 4000)::int END AS prompt_tokens,
        CASE WHEN r.r_status < 0.02 THEN 0
             WHEN r.r_status < 0.03 THEN floor(r.r_completion * 300)::int
             ELSE 10 + floor(r.r_completion * r.r_completion * 1500)::int END
            AS completion_tokens,
        r.r_status >= 0.02 AND (r.r_status < 0.03 OR r.r_estimated < 0.01) AS estimated,
        CASE WHEN r.r_status < 0.02 AND r.r_http < 0.3 THEN NULL
             ELSE least(120000, (exp(
                 ln(CASE WHEN r.r_status < 0.02 THEN 2000
                         WHEN r.r_status < 0.03 THEN 450 ELSE 900 END)
                 + 0.6 * sqrt(-2 * ln(1 - r.u1)) * cos(2 * pi() * r.u2)))::int) END
            AS latency_ms,
        %(start)s::timestamptz
            + make_interval(secs => (r.g - 1 + r.r_time) * %(step)s) AS occurred_at,
        (r.g - 1)::float8 / %(count)s AS frac
    FROM (
        SELECT g, random() AS r_who, random() AS r_caller, random() AS r_status,
               random() AS r_http, random() AS r_prompt, random() AS r_completion,
               random() AS r_estimated, random() AS u1, random() AS u2,
               random() AS r_ttft, random() AS r_time
        FROM generate_series(1, %(count)s) AS g
    ) AS r
) AS s
JOIN bench_who AS w ON w.slot = floor(s.r_who * %(who_slots)s)::int
JOIN bench_caller AS c ON c.slot = floor(s.r_caller * %(caller_slots)s)::int
"""


def record_sums() -> dict[str, str]:
    """SQL for each rollup counter over ledger rows, as ``rollups.Sums.add`` adds them."""
    from apps.usage.models import LATENCY_BOUNDS_MS, LATENCY_FIELDS, AttemptStatus
    from apps.usage.rollups import COUNTERS

    sums = {
        "requests": "count(*)",
        "errors": f"count(*) FILTER (WHERE status = '{AttemptStatus.FAILED.value}')",
        "estimated": "count(*) FILTER (WHERE usage_estimated)",
        "unpriced": "count(*) FILTER (WHERE unpriced)",
        "prompt_tokens": "sum(prompt_tokens)",
        "completion_tokens": "sum(completion_tokens)",
        "total_tokens": "sum(total_tokens)",
        "cached_tokens": "coalesce(sum(cached_tokens), 0)",
        "cost": "sum(cost)",
        "latency_count": "count(latency_ms)",
        "latency_sum_ms": "coalesce(sum(latency_ms), 0)",
    }
    # bisect_left: bucket i holds bounds[i-1] < latency <= bounds[i]; the last is open.
    lows = (None, *LATENCY_BOUNDS_MS)
    highs = (*LATENCY_BOUNDS_MS, None)
    for name, low, high in zip(LATENCY_FIELDS, lows, highs, strict=True):
        parts = []
        if low is not None:
            parts.append(f"latency_ms > {low}")
        if high is not None:
            parts.append(f"latency_ms <= {high}")
        sums[name] = f"count(*) FILTER (WHERE {' AND '.join(parts)})"
    missing = set(COUNTERS) ^ set(sums)
    assert not missing, f"rollup counters changed, update record_sums(): {missing}"
    return {name: sums[name] for name in COUNTERS}


def rollup_sql() -> tuple[str, str]:
    """(hourly, daily) ``INSERT ... SELECT ... GROUP BY`` for one team (parameters ``team``
    and ``zone``, its time zone).

    Hourly buckets are the instants the team's clock shows hh:00 (``rollups.hour_start``:
    the instant minus the minutes and seconds of its local time); daily buckets are local
    dates. Every local hour lies inside one local date, so the daily rows are the hourly
    ones summed by the date their hour starts on.
    """
    from django.db import connection

    from apps.usage.models import DIMENSIONS, DailyRollup, HourlyRollup
    from apps.usage.rollups import COUNTERS

    q = connection.ops.quote_name
    local = "(occurred_at AT TIME ZONE %(zone)s)"
    dims_from_records = "model, coalesce(assistant_id, 0), coalesce(prompt_version_id, 0), "
    dims_from_records += "coalesce(api_key_id, 0)"
    columns = ", ".join(q(c) for c in ("team_id", "bucket", *DIMENSIONS, *COUNTERS))
    group = "GROUP BY 1, 2, 3, 4, 5, 6"
    hourly = (
        f"INSERT INTO {q(HourlyRollup._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT team_id, occurred_at - ({local} - date_trunc('hour', {local})), "
        f"{dims_from_records}, {', '.join(record_sums().values())} "
        f"FROM usage_usagerecord WHERE team_id = %(team)s {group}"
    )
    dims = ", ".join(q(d) for d in DIMENSIONS)
    daily = (
        f"INSERT INTO {q(DailyRollup._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT team_id, (bucket AT TIME ZONE %(zone)s)::date, {dims}, "
        f"{', '.join(f'sum({q(c)})' for c in COUNTERS)} "
        f"FROM {q(HourlyRollup._meta.db_table)} WHERE team_id = %(team)s {group}"
    )
    return hourly, daily


def loaded(team) -> tuple[int, int]:
    """(records of the team, requests its daily rollups count)."""
    from django.db.models import Sum

    from apps.usage.models import DailyRollup, UsageRecord

    records = UsageRecord.objects.filter(team=team).count()
    summed = DailyRollup.objects.filter(team=team).aggregate(n=Sum("requests"))["n"] or 0
    return records, summed


def secondary_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's indexes that back no constraint."""
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        [table, table],
    )
    return cursor.fetchall()


def load(fx: Fixtures, args) -> None:
    """Replace the ledger and the rollups with ``--records`` generated records, atomically.

    The benchmark's database is its own: the three tables are truncated. Inside the one
    transaction the ledger's secondary indexes are dropped and rebuilt after the insert
    (much faster than maintaining 10 of them row by row) and foreign-key triggers are
    off (``session_replication_role``; every id comes from the fixtures), so an
    interrupted load leaves the previous state, never a half-indexed table.
    """
    from django.db import connection, transaction

    from apps.usage.models import DailyRollup, HourlyRollup, UsageRecord

    team = fx.team
    who, callers = who_rows(fx), caller_rows(fx)
    now = datetime.now(UTC)
    params = {
        "team": team.pk,
        "count": args.records,
        "start": now - timedelta(days=args.days),
        "step": args.days * 86400 / args.records,
        "who_slots": len(who),
        "caller_slots": len(callers),
        "zone": str(team.zone),
    }
    hourly_sql, daily_sql = rollup_sql()
    timings: list[tuple[str, float, int | None]] = []
    started = time.monotonic()

    def step(label: str, sql: str, values=None) -> None:
        began = time.monotonic()
        cursor.execute(sql, values)
        timings.append((label, time.monotonic() - began, cursor.rowcount))
        print(f"  {label}: {time.monotonic() - began:.1f}s", flush=True)

    print(f"loading {args.records:,} records over {args.days} days (load {load_average()})")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if cursor.fetchone()[0]:
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        cursor.execute("SET LOCAL work_mem = '256MB'")
        tables = [m._meta.db_table for m in (UsageRecord, HourlyRollup, DailyRollup)]
        cursor.execute(f"TRUNCATE {', '.join(tables)}")
        indexes = secondary_indexes(cursor, UsageRecord._meta.db_table)
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
        cursor.execute(
            "CREATE TEMP TABLE bench_who (slot int PRIMARY KEY, assistant_id bigint, "
            "backend_id bigint, model text, price_id bigint, input numeric, output numeric, "
            "versions bigint[]) ON COMMIT DROP"
        )
        cursor.executemany("INSERT INTO bench_who VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", who)
        cursor.execute(
            "CREATE TEMP TABLE bench_caller (slot int PRIMARY KEY, api_key_id bigint, "
            "user_id bigint) ON COMMIT DROP"
        )
        cursor.executemany("INSERT INTO bench_caller VALUES (%s, %s, %s)", callers)
        cursor.execute("SELECT setseed(0.42)")
        step("records (INSERT ... SELECT FROM generate_series)", RECORDS_SQL, params)
        began = time.monotonic()
        for _name, definition in indexes:
            cursor.execute(definition)
        timings.append((f"{len(indexes)} ledger indexes", time.monotonic() - began, None))
        print(f"  {len(indexes)} ledger indexes: {time.monotonic() - began:.1f}s", flush=True)
        step("hourly rollups (GROUP BY over the records)", hourly_sql, params)
        step("daily rollups (GROUP BY over the hourly rows)", daily_sql, params)
        began = time.monotonic()
    commit_s = time.monotonic() - began
    began = time.monotonic()
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    vacuum_s = time.monotonic() - began
    total = time.monotonic() - started
    print()
    rows = [
        [label, fmt(seconds), f"{n:,}" if n is not None else "-"] for label, seconds, n in timings
    ]
    rows.append(["commit", fmt(commit_s), "-"])
    rows.append(["VACUUM (ANALYZE) the three tables", fmt(vacuum_s), "-"])
    rows.append(["total", fmt(total), f"{args.records / total:,.0f} records/s"])
    print_table(["load step", "seconds", "rows"], rows, align_left=1)


# --- the ledger's own rollups for a day, against the SQL-built ones -----------------------


def check_days(window_start: date, window_end: date, zone) -> list[date]:
    """The most recent whole day, and a day whose length isn't 24 h if there is one."""
    from apps.usage.query import Window

    days = [window_end - timedelta(days=1)]
    day = window_start + timedelta(days=1)
    while day < window_end - timedelta(days=1):
        if len(Window(day, day, zone).hours()) != 24:
            days.insert(0, day)
            break
        day += timedelta(days=1)
    return days


def rollup_rows(model, team, **lookups) -> dict[tuple, dict]:
    from apps.usage.models import DIMENSIONS

    rows = {}
    for row in model.objects.filter(team=team, **lookups).values():
        row.pop("id")
        rows[(row["bucket"], *(row[d] for d in DIMENSIONS))] = row
    return rows


def verify(fx: Fixtures, days: int) -> bool:
    """Rebuild each check day's rows with ``rollups.add_records`` and compare; roll back."""
    from django.db import transaction

    from apps.usage import rollups
    from apps.usage.models import DailyRollup, HourlyRollup, UsageRecord
    from apps.usage.query import Window

    team, zone = fx.team, fx.team.zone
    today = datetime.now(zone).date()
    ok = True
    for day in check_days(today - timedelta(days=days - 1), today, zone):
        window = Window(day, day, zone)
        hours = {"bucket__gte": window.start_at, "bucket__lt": window.end_at}
        began = time.monotonic()
        with transaction.atomic():
            built = (
                rollup_rows(HourlyRollup, team, **hours),
                rollup_rows(DailyRollup, team, bucket=day),
            )
            HourlyRollup.objects.filter(team=team, **hours).delete()
            DailyRollup.objects.filter(team=team, bucket=day).delete()
            records = UsageRecord.objects.filter(
                team=team, occurred_at__gte=window.start_at, occurred_at__lt=window.end_at
            ).order_by("occurred_at")
            batch, count = [], 0
            for record in records.iterator(chunk_size=5000):
                batch.append(record)
                if len(batch) == 5000:
                    rollups.add_records(batch, zone)
                    count, batch = count + len(batch), []
            rollups.add_records(batch, zone)
            count += len(batch)
            ledger = (
                rollup_rows(HourlyRollup, team, **hours),
                rollup_rows(DailyRollup, team, bucket=day),
            )
            transaction.set_rollback(True)
        same = built == ledger
        ok = ok and same
        print(
            f"check {day} ({len(window.hours())} h): {count:,} records through "
            f"rollups.add_records -> {len(ledger[0]):,} hourly and {len(ledger[1])} daily rows, "
            f"{'identical to' if same else 'DIFFERENT from'} the SQL-built ones "
            f"({time.monotonic() - began:.1f}s)"
        )
        if not same:
            for name, mine, theirs in zip(("hourly", "daily"), built, ledger, strict=True):
                for key in sorted(set(mine) | set(theirs), key=str)[:200]:
                    if mine.get(key) != theirs.get(key):
                        print(f"  {name} {key}: SQL {mine.get(key)} ledger {theirs.get(key)}")
                        break
    return ok


# --- over HTTP -----------------------------------------------------------------------


@dataclass
class Endpoint:
    label: str
    path: str
    auth: str  # "session" or "key"


@dataclass
class Level:
    endpoint: Endpoint
    n: int
    ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    load: str = ""


def endpoints(fx: Fixtures) -> list[Endpoint]:
    slug = fx.team.slug
    assistant = fx.assistants[ASSISTANTS[0][0]].slug
    version = fx.versions[ASSISTANTS[0][3]][-2]
    api = f"/api/v1/teams/{slug}/usage"
    return [
        Endpoint("page 30d", f"/t/{slug}/usage/?range=30d", "session"),
        Endpoint(
            f"page 30d assistant={assistant}",
            f"/t/{slug}/usage/?range=30d&assistant={assistant}",
            "session",
        ),
        Endpoint("API summary 30d", f"{api}?range=30d", "key"),
        Endpoint(
            f"API summary 30d assistant={assistant}",
            f"{api}?range=30d&assistant={assistant}",
            "key",
        ),
        Endpoint("API records 30d limit=50", f"{api}/records?range=30d&limit=50", "key"),
        Endpoint(
            f"API records 30d assistant={assistant} limit=50",
            f"{api}/records?range=30d&assistant={assistant}&limit=50",
            "key",
        ),
        # a version used for part of the window only: rows are sparse in the time index
        Endpoint(
            f"API records 30d prompt_version={version} limit=50",
            f"{api}/records?range=30d&prompt_version={version}&limit=50",
            "key",
        ),
    ]


def credentials(fx: Fixtures) -> tuple[str, str]:
    """(session cookie value, raw read key): a login without the form, and a fresh key."""
    from django.conf import settings
    from django.test import Client

    from apps.keys.services import key_create

    client = Client()
    client.force_login(fx.user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    _key, raw = key_create(
        team=fx.team,
        actor=fx.user,
        name=f"usage bench reader {time.strftime('%H%M%S')}",
        scopes=["read"],
    )
    return session, raw


async def measure(
    args, web_url: str, fx: Fixtures, session: str, raw_key: str
) -> tuple[list[Level], dict]:
    import httpx2 as httpx
    from django.conf import settings

    n_max = max(args.concurrency)
    limits = httpx.Limits(max_connections=n_max + 5, max_keepalive_connections=n_max)
    clients = {
        "session": httpx.AsyncClient(
            base_url=web_url,
            limits=limits,
            timeout=args.timeout,
            cookies={settings.SESSION_COOKIE_NAME: session},
        ),
        "key": httpx.AsyncClient(
            base_url=web_url,
            limits=limits,
            timeout=args.timeout,
            headers={"Authorization": f"Bearer {raw_key}"},
        ),
    }
    levels: list[Level] = []
    answers: dict[str, dict] = {}
    try:
        for endpoint in endpoints(fx):
            http = clients[endpoint.auth]

            async def one(_i, http=http, endpoint=endpoint) -> tuple[float, str]:
                began = time.perf_counter()
                try:
                    answer = await http.get(endpoint.path)
                except httpx.HTTPError as problem:
                    ms = (time.perf_counter() - began) * 1000
                    return ms, f"{type(problem).__name__}: {problem}"
                ms = (time.perf_counter() - began) * 1000
                if answer.status_code != 200:
                    return ms, f"{answer.status_code} {answer.text[:200]}"
                if endpoint.auth == "key":
                    answers[endpoint.label] = answer.json()
                return ms, ""

            for i in range(args.warmup):
                await one(i)
            for n in args.concurrency:
                level = Level(endpoint, n, load=load_average())
                results, level.wall_s = await closed_loop(n, args.requests, one)
                level.ms = [ms for ms, error in results if not error]
                level.errors = [error for _ms, error in results if error]
                levels.append(level)
                print(
                    f"  {endpoint.label} N={n}: p50 {pct(level.ms, 50)} ms, "
                    f"{len(level.errors)} errors",
                    flush=True,
                )
    finally:
        for client in clients.values():
            await client.aclose()
    return levels, answers


def report_http(levels: list[Level], args) -> None:
    print()
    print(
        f"response times, ms ({args.requests} requests per row after {args.warmup} warm-up; "
        f"N = concurrent callers; target p50 < {TARGET_P50_MS:.0f} ms)"
    )
    rows = []
    for level in levels:
        p50 = percentile(level.ms, 50)
        verdict = "-" if p50 is None else "PASS" if p50 < TARGET_P50_MS else "MISS"
        rows.append(
            [
                level.endpoint.label,
                str(level.n),
                str(len(level.ms)),
                str(len(level.errors)),
                pct(level.ms, 50),
                pct(level.ms, 95),
                pct(level.ms, 99),
                fmt(max(level.ms) if level.ms else None),
                fmt(len(level.ms) / level.wall_s if level.wall_s else None),
                verdict,
                level.load,
            ]
        )
    headers = [
        "endpoint",
        "N",
        "ok",
        "err",
        "p50",
        "p95",
        "p99",
        "max",
        "req/s",
        "p50<150",
        "load 1/5/15m",
    ]
    print_table(headers, rows, align_left=1)
    errors = [(level, error) for level in levels for error in level.errors]
    for level, error in errors[:5]:
        print(f"  error, {level.endpoint.label} N={level.n}: {error}")


def report_answers(answers: dict) -> None:
    """The summary's request count against the ledger's count for the same window."""
    summary = answers.get("API summary 30d")
    records = answers.get("API records 30d limit=50")
    if not summary or not records:
        return
    totals = summary["totals"]
    print()
    print(
        f"API 30d ({summary['start']}..{summary['end']}, {summary['time_zone']}): "
        f"{totals['requests']:,} requests from rollups, {records['count']:,} records in the "
        f"ledger ({'equal' if totals['requests'] == records['count'] else 'DIFFERENT'}); "
        f"{len(summary['series'])} points, cost {totals['cost']}, errors {totals['errors']:,}, "
        f"p50/p95 {totals['latency_p50_ms']}/{totals['latency_p95_ms']} ms, "
        f"unpriced models {summary['unpriced_models']}"
    )


# --- in the database -------------------------------------------------------------------


def in_process(fx: Fixtures, raw_key: str, calls: int = 10) -> None:
    """Each endpoint through Django's test client in this process: where the time goes.

    No HTTP, no event loop, no thread hop: the whole request minus the time its SQL took
    (as the client sees it: round trip and fetch included) is Python, middleware and
    rendering.
    """
    import statistics

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    browser = Client()
    browser.force_login(fx.user)
    rows = []
    for endpoint in endpoints(fx):
        http = browser if endpoint.auth == "session" else client
        totals, sql_ms, counts = [], [], []
        for i in range(calls + 2):
            with CaptureQueriesContext(connection) as captured:
                began = time.perf_counter()
                answer = http.get(endpoint.path)
                elapsed = (time.perf_counter() - began) * 1000
            if answer.status_code != 200:
                raise RuntimeError(f"{endpoint.path}: {answer.status_code}")
            if i >= 2:  # the first two warm caches up
                totals.append(elapsed)
                sql_ms.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
                counts.append(len(captured.captured_queries))
        total, db = statistics.median(totals), statistics.median(sql_ms)
        rows.append([endpoint.label, fmt(total), str(max(counts)), fmt(db), fmt(total - db)])
    print()
    print(f"in process (Django test client, median of {calls}; load {load_average()})")
    print_table(["endpoint", "ms", "queries", "SQL ms", "rest ms"], rows, align_left=1)


def explain(sql: str, text: bool = False):
    """``EXPLAIN ANALYZE`` of ``sql``: the JSON plan, or the text one with ``text``."""
    from django.db import connection

    with connection.cursor() as cursor:
        if text:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]


# Nodes above the scan that drives a plan; for a join, its first (outer) input drives it.
WRAPPERS = {
    "Limit",
    "Aggregate",
    "Sort",
    "Incremental Sort",
    "Gather",
    "Gather Merge",
    "Nested Loop",
    "Hash Join",
    "Merge Join",
}


def first_scan(plan: dict) -> str:
    """The scan that drives the plan (under its Limit, Aggregate, Sort, Gather, joins)."""
    node = plan["Plan"]
    while node.get("Plans") and node["Node Type"] in WRAPPERS:
        node = node["Plans"][0]
    scan = node["Node Type"]
    if node.get("Scan Direction") == "Backward":
        scan += " Backward"
    if "Index Name" in node:
        scan += f" {node['Index Name']}"
    elif "Relation Name" in node:
        scan += f" {node['Relation Name']}"
    return scan


def describe(sql: str) -> str:
    """A query in a few words: its table, what it groups by, whether it counts or pages."""
    table = re.search(r' FROM "(\w+)"', sql)
    name = table.group(1).removeprefix("usage_") if table else "?"
    if " GROUP BY " in sql:
        first = re.match(r'SELECT (?:DISTINCT )?"\w+"\."(\w+)"', sql)
        return f"{name} by {first.group(1) if first else '?'}"
    if "COUNT(*)" in sql:
        return f"{name} COUNT(*)"
    if " LIMIT " in sql:
        return f"{name} page (LIMIT {sql.rsplit(' LIMIT ', 1)[1].split()[0]})"
    return f"{name} {'totals' if 'SUM(' in sql else 'rows'}"


def explain_queries(fx: Fixtures) -> None:
    """Every query a 30-day summary and a records page run, with ``EXPLAIN ANALYZE``."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.usage import selectors
    from apps.usage.query import Filters, window_for

    team = fx.team
    window = window_for(team.zone, "30d")
    assistant = Filters(assistant_id=fx.assistants[ASSISTANTS[0][0]].pk)
    # The oldest version of the busiest prompt: used only early in the period, so no
    # record in the window matches it (a filter someone might well try).
    old_version = Filters(prompt_version_id=fx.versions[ASSISTANTS[0][3]][0])
    # one used only in the window's first week: newest-first paging must skip the rest
    early_version = Filters(prompt_version_id=fx.versions[ASSISTANTS[0][3]][-2])
    cases = [
        ("summary", lambda: selectors.usage_summary(team, window, Filters())),
        ("summary assistant", lambda: selectors.usage_summary(team, window, assistant)),
    ]
    records_cases = (
        ("records", Filters()),
        ("records assistant", assistant),
        (f"records prompt_version={old_version.prompt_version_id}", old_version),
        (f"records prompt_version={early_version.prompt_version_id}", early_version),
    )
    for label, filters in records_cases:

        def page(filters=filters):
            # what the API runs: the count from the rollups, then one page of the ledger
            _count, days = selectors.records_span(team, window, filters)
            if days:
                list(selectors.records_for(team, days, filters)[:50])

        cases.append((label, page))

    print()
    print(
        f"EXPLAIN ANALYZE of the queries of a 30-day summary and a records page "
        f"({window.start}..{window.end}; in process, load {load_average()})"
    )
    rows, plans = [], []
    for label, call in cases:
        with CaptureQueriesContext(connection) as captured:
            call()
        for i, query in enumerate(captured.captured_queries, 1):
            sql = " ".join(query["sql"].split())
            plan = explain(sql)
            execution = plan["Execution Time"]
            rows.append(
                [
                    label,
                    str(i),
                    describe(sql),
                    first_scan(plan),
                    fmt(plan["Planning Time"], 2),
                    fmt(execution, 2),
                ]
            )
            plans.append((label, i, execution, sql))
    print_table(["call", "#", "query", "first scan", "plan ms", "exec ms"], rows, align_left=4)
    # The main rollup query (the summary's totals) and the slowest one, in full.
    slowest = max(plans, key=lambda p: p[2])
    for title, (label, i, _ms, sql) in (("main rollup query", plans[0]), ("slowest", slowest)):
        print()
        print(f"{title}: {label} #{i}")
        print(f"  {sql[:700]}{' ...' if len(sql) > 700 else ''}")
        print("\n".join(f"  {line}" for line in explain(sql, text=True).splitlines()))


def report_tables(team) -> None:
    from django.db import connection

    from apps.usage.models import DailyRollup, HourlyRollup, UsageRecord

    rows = []
    with connection.cursor() as cursor:
        for model in (UsageRecord, HourlyRollup, DailyRollup):
            table = model._meta.db_table
            cursor.execute(
                "SELECT pg_size_pretty(pg_relation_size(%s)), pg_size_pretty(pg_indexes_size(%s))",
                [table, table],
            )
            heap, indexes = cursor.fetchone()
            total = model.objects.count()
            mine = model.objects.filter(team=team).count()
            rows.append([table, f"{total:,}", f"{mine:,}", heap, indexes])
    print()
    print_table(["table", "rows", "of the team", "heap", "indexes"], rows, align_left=1)


# --- main -----------------------------------------------------------------------------------


def bench(args: argparse.Namespace, stack: Stack) -> bool:
    from django.db import connection

    logging.getLogger("apps.keys").setLevel(logging.WARNING)  # "api key created"
    print(f"{os.cpu_count()} CPUs, load average {load_average()}")
    fx = fixtures(args.time_zone)
    records, summed = loaded(fx.team)
    print(
        f"team {fx.team.slug!r} ({fx.team.time_zone}): {records:,} records, "
        f"their rollups count {summed:,}"
    )
    ok = True
    if args.skip_load:
        if not records:
            raise RuntimeError("--skip-load, but the team has no usage records yet")
    elif args.reload or fx.zone_changed or records != args.records or summed != records:
        load(fx, args)
    else:
        print("already loaded (--reload to load again)")
    if not args.no_verify:
        ok = verify(fx, args.days)
    report_tables(fx.team)
    session, raw_key = credentials(fx)
    connection.close()  # no connection held idle while the requests run
    web_url = start_web(stack.procs)
    print()
    print(f"web {web_url}, logs in {stack.log_dir}; timing (load {load_average()})")
    started = time.monotonic()
    levels, answers = asyncio.run(measure(args, web_url, fx, session, raw_key))
    print(f"measured in {time.monotonic() - started:.0f}s")
    report_http(levels, args)
    report_answers(answers)
    in_process(fx, raw_key)
    explain_queries(fx)
    print()
    print(f"load average at the end {load_average()}")
    return ok and not any(level.errors for level in levels)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stack_run(args, lambda stack: bench(args, stack))


if __name__ == "__main__":
    sys.exit(main())
