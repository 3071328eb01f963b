"""CSV exports of ledger rows and of rollups, streamed a batch at a time.

A year of records can be millions of rows: they are read in keyset-paged
batches (never OFFSET, never all at once) and written as they come. Under ASGI
the body is an async generator, because Django would otherwise collect a sync
iterator into a list before sending the first byte.
"""

import csv
from collections.abc import Callable, Iterable
from datetime import datetime

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db.models import Q
from django.http import StreamingHttpResponse

from apps.assistants.models import Assistant
from apps.keys.models import ApiKey
from apps.prompts.models import PromptVersion
from apps.usage import selectors
from apps.usage.query import Filters, Window

BATCH_SIZE = 2000
RECORD_HEADER = [
    "time",
    "run_id",
    "status",
    "model",
    "backend",
    "assistant",
    "prompt_version",
    "api_key",
    "user",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "usage_estimated",
    "cost",
    "unpriced",
    "latency_ms",
    "ttft_ms",
    "http_status",
]
AGGREGATE_HEADER = [
    "bucket",
    "model",
    "assistant",
    "prompt_version",
    "api_key",
    "requests",
    "errors",
    "estimated_requests",
    "unpriced_requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cost",
    "latency_avg_ms",
    "latency_p50_ms",
    "latency_p95_ms",
]

Fetch = Callable[[tuple | None], tuple[list[list], tuple | None]]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _safe(value) -> str:
    """Text a spreadsheet won't run as a formula (names come from users)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in {"=", "+", "-", "@", "\t", "\r"} else text


def _csv(rows: Iterable[list]) -> str:
    writer = csv.writer(_Echo())
    return "".join(writer.writerow(row) for row in rows)


def streamed_csv(request, filename: str, header: list[str], fetch: Fetch) -> StreamingHttpResponse:
    """``fetch(after)`` returns one batch of rows and the cursor to continue after
    (None when that was the last batch)."""

    def sync_body():
        yield _csv([header])
        after = None
        while True:
            rows, after = fetch(after)
            if rows:
                yield _csv(rows)
            if after is None:
                return

    async def async_body():
        yield _csv([header])
        after = None
        while True:
            rows, after = await sync_to_async(fetch)(after)
            if rows:
                yield _csv(rows)
            if after is None:
                return

    body = async_body() if isinstance(request, ASGIRequest) else sync_body()
    response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _local(moment: datetime, window: Window) -> str:
    return moment.astimezone(window.zone).isoformat()


def records_fetch(team, window: Window, filters: Filters) -> Fetch:
    _count, days = selectors.records_span(team, window, filters)
    base = selectors.records_for(team, days or window, filters)
    if days is None:  # the rollups hold nothing for this question
        base = base.none()

    def fetch(after):
        rows = base
        if after is not None:
            at, pk = after
            rows = rows.filter(Q(occurred_at__lt=at) | Q(occurred_at=at, pk__lt=pk))
        batch = list(rows[:BATCH_SIZE])
        lines = [
            [
                _local(r.occurred_at, window),
                r.run_id,
                r.status,
                _safe(r.model),
                _safe(r.backend.name if r.backend else ""),
                _safe(r.assistant.slug if r.assistant else ""),
                _safe(r.prompt_version if r.prompt_version else ""),
                r.api_key.public_id if r.api_key else "",
                _safe(r.user.email if r.user else ""),
                r.prompt_tokens,
                r.completion_tokens,
                r.total_tokens,
                "" if r.cached_tokens is None else r.cached_tokens,
                str(r.usage_estimated).lower(),
                format(r.cost.normalize(), "f"),
                str(r.unpriced).lower(),
                r.latency_ms,
                r.ttft_ms,
                r.http_status,
            ]
            for r in batch
        ]
        more = len(batch) == BATCH_SIZE
        return lines, ((batch[-1].occurred_at, batch[-1].pk) if more else None)

    return fetch


def _names(model, ids, *values) -> dict:
    found = model.objects.filter(pk__in={i for i in ids if i}).values_list("pk", *values)
    return {row[0]: row[1:] for row in found}


def aggregates_fetch(team, window: Window, filters: Filters, granularity: str) -> Fetch:
    """Rollup rows with the ledger rows not folded yet merged in (so the file is
    exact to the ledger as of each batch), whole buckets per batch."""
    hourly = granularity == "hour"

    def fetch(after):
        batch, upper = selectors.aggregate_batch(
            team, window, filters, hourly=hourly, after=after, size=BATCH_SIZE
        )
        assistants = _names(Assistant, [r.assistant_id for r in batch], "slug")
        keys = _names(ApiKey, [r.api_key_id for r in batch], "public_id")
        versions = {
            pk: (f"{slug} v{number}",)
            for pk, slug, number in PromptVersion.objects.filter(
                pk__in={r.prompt_version_id for r in batch if r.prompt_version_id}
            ).values_list("pk", "prompt__slug", "number")
        }
        lines = []
        for r in batch:
            totals = r.totals
            lines.append(
                [
                    _local(r.bucket, window) if hourly else r.bucket.isoformat(),
                    _safe(r.model),
                    _safe(assistants.get(r.assistant_id, ("",))[0]),
                    _safe(versions.get(r.prompt_version_id, ("",))[0]),
                    keys.get(r.api_key_id, ("",))[0],
                    totals.requests,
                    totals.errors,
                    totals.estimated_requests,
                    totals.unpriced_requests,
                    totals.prompt_tokens,
                    totals.completion_tokens,
                    totals.total_tokens,
                    totals.cached_tokens,
                    format(totals.cost, "f"),
                    totals.latency_avg_ms,
                    totals.latency_p50_ms,
                    totals.latency_p95_ms,
                ]
            )
        return lines, upper

    return fetch
