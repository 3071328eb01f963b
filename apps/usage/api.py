"""Usage, cost and prices over the REST API, under a team.

The summary reads rollups only, like the usage page, so both show the same
numbers; records and CSV exports read the ledger (as far back as retention).
"""

from django.http import HttpRequest
from ninja import Query, Router, Status

from apps.core.api_errors import BODY_ERRORS, with_errors
from apps.core.api_pagination import Rows, paginated
from apps.inference.selectors import backend_available_to
from apps.teams.selectors import IMPLIED_TEAM_HELP, implied_team_slug, team_for_request
from apps.usage import export, selectors, services
from apps.usage.models import Price, UsageRecord
from apps.usage.query import filters_for, window_for
from apps.usage.schemas import (
    AggregatesQuery,
    PointOut,
    PriceIn,
    PriceListQuery,
    PriceOut,
    TopOut,
    TotalsOut,
    UsageOut,
    UsageQuery,
    UsageRecordOut,
)

router = Router(tags=["usage"])
# The same answers without the team in the path: an API key's team, or ?team=<slug>.
implied_router = Router(tags=["usage"])

CSV_DOC = {
    "responses": {
        200: {
            "description": "`text/csv`, streamed; the first line names the columns.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    }
}


def _question(request, team_slug: str, query: UsageQuery):
    team = team_for_request(request, team_slug)
    window = window_for(team.zone, query.range, query.start, query.end)
    filters = filters_for(
        team,
        assistant=query.assistant,
        model=query.model,
        key=query.key,
        prompt_version=query.prompt_version,
    )
    services.usage_rollups_catch_up()
    return team, window, filters


def totals_dict(totals) -> dict:
    return dict(totals.__dict__)


def _tops(items) -> list[TopOut]:
    return [TopOut(id=t.id, name=t.name, **totals_dict(t.totals)) for t in items]


def summary_out(team, summary) -> UsageOut:
    window = summary.window
    return UsageOut(
        time_zone=str(window.zone),
        range=window.name,
        start=window.start,
        end=window.end,
        granularity=window.granularity,
        totals=TotalsOut(**totals_dict(summary.totals)),
        series=[
            PointOut(start=p.start, label=p.label, **totals_dict(p.totals)) for p in summary.series
        ],
        top_assistants=_tops(summary.top_assistants),
        top_models=_tops(summary.top_models),
        top_keys=_tops(summary.top_keys),
        unpriced_models=summary.unpriced_models,
    )


def record_out(record: UsageRecord) -> UsageRecordOut:
    return UsageRecordOut(
        id=record.pk,
        time=record.occurred_at,
        run_id=record.run_id,
        status=record.status,
        model=record.model,
        backend=record.backend_id,
        assistant=record.assistant.slug if record.assistant else None,
        prompt_version=record.prompt_version_id,
        api_key=record.api_key.public_id if record.api_key else None,
        user=record.user.email if record.user else None,
        prompt_tokens=record.prompt_tokens,
        completion_tokens=record.completion_tokens,
        total_tokens=record.total_tokens,
        cached_tokens=record.cached_tokens,
        usage_estimated=record.usage_estimated,
        cost=format(record.cost.normalize(), "f"),
        unpriced=record.unpriced,
        latency_ms=record.latency_ms,
        ttft_ms=record.ttft_ms,
        http_status=record.http_status,
    )


def price_out(price: Price) -> PriceOut:
    return PriceOut(
        id=price.pk,
        scope=price.scope,
        backend=price.backend_id,
        model=price.model,
        input_per_million=price.input_per_million,
        output_per_million=price.output_per_million,
        cached_input_per_million=price.cached_input_per_million,
        effective_from=price.effective_from,
        note=price.note,
    )


@router.get(
    "/{team_slug}/usage",
    response=with_errors(UsageOut, 400),
    operation_id="usage_summary",
    summary="Requests, tokens, cost, errors and latency over a range, with top lists",
)
def usage_summary(request: HttpRequest, team_slug: str, query: Query[UsageQuery]):
    """The same numbers as the usage page: totals, a series (hourly for a day or two,
    daily beyond), the top assistants, models and keys by cost, and the models used
    without a price (recorded at 0, not free). Read from rollups, so fast for any
    range up to 366 days; a longer or reversed range is 400."""
    team, window, filters = _question(request, team_slug, query)
    return summary_out(team, selectors.usage_summary(team, window, filters))


@router.get(
    "/{team_slug}/usage/records",
    response=with_errors(list[UsageRecordOut], 400),
    operation_id="usage_records_list",
    summary="Billed attempts, newest first",
)
@paginated
def usage_records_list(request: HttpRequest, team_slug: str, query: Query[UsageQuery]):
    """One row per backend attempt with its tokens, cost and flags. Rows older than the
    retention period are gone; the summary still counts them."""
    return _records(request, team_slug, query)


def _records(request, team_slug: str, query: UsageQuery) -> Rows:
    team, window, filters = _question(request, team_slug, query)
    total, days = selectors.records_span(team, window, filters)
    # only the days the rollups say hold rows; none: don't walk the ledger at all
    records = selectors.records_for(team, days, filters) if days else []
    return Rows(records, each=record_out, total=total)


@router.get(
    "/{team_slug}/usage/records/export",
    response=with_errors({}, 400),
    operation_id="usage_records_export",
    summary="The filtered attempts as CSV",
    openapi_extra=CSV_DOC,
)
def usage_records_export(request: HttpRequest, team_slug: str, query: Query[UsageQuery]):
    """Streamed in batches, so a year of rows never sits in memory; times are in the
    team's time zone. Ranges are capped at 366 days."""
    team, window, filters = _question(request, team_slug, query)
    name = f"usage-records-{team.slug}-{window.start}-{window.end}.csv"
    fetch = export.records_fetch(team, window, filters)
    return export.streamed_csv(request, name, export.RECORD_HEADER, fetch)


@router.get(
    "/{team_slug}/usage/aggregates/export",
    response=with_errors({}, 400),
    operation_id="usage_aggregates_export",
    summary="Hourly or daily aggregates as CSV",
    openapi_extra=CSV_DOC,
)
def usage_aggregates_export(request: HttpRequest, team_slug: str, query: Query[AggregatesQuery]):
    """One row per bucket and combination of model, assistant, prompt version and key,
    from the rollups (so older than retention too)."""
    team, window, filters = _question(request, team_slug, query)
    name = f"usage-{query.granularity}-{team.slug}-{window.start}-{window.end}.csv"
    fetch = export.aggregates_fetch(team, window, filters, query.granularity)
    return export.streamed_csv(request, name, export.AGGREGATE_HEADER, fetch)


@router.get(
    "/{team_slug}/prices",
    response=with_errors(list[PriceOut]),
    operation_id="prices_list",
    summary="Prices that apply to the team: global ones and its own overrides",
)
@paginated
def prices_list(request: HttpRequest, team_slug: str, filters: Query[PriceListQuery]):
    """Every row, newest first per model: a price applies from `effective_from` until a
    newer one of the same scope. A team's override for its backend beats the global one."""
    prices = selectors.prices_for_team(team_for_request(request, team_slug))
    if filters.model:
        prices = prices.filter(model=filters.model)
    if filters.scope:
        prices = prices.filter(team__isnull=filters.scope == "global")
    return Rows(prices, each=price_out)


@router.post(
    "/{team_slug}/prices",
    response=with_errors({201: PriceOut}, *BODY_ERRORS, 409),
    operation_id="prices_create",
    summary="Set the team's price for a model on one of its backends",
)
def prices_create(request: HttpRequest, team_slug: str, payload: PriceIn):
    """Needs the owner or admin role (or a key with the admin scope). It applies from
    `effective_from` on; usage already recorded keeps its cost. More than 6 decimal
    places is 422."""
    team = team_for_request(request, team_slug)
    backend = backend_available_to(team, payload.backend, param="backend")
    data = payload.dict(exclude={"backend"})
    price = services.price_override_create(team=team, actor=request.user, backend=backend, **data)
    return Status(201, price_out(price))


@implied_router.get(
    "/usage",
    response=with_errors(UsageOut, 400),
    operation_id="usage_summary_of_caller",
    summary="The usage summary of the caller's team",
)
def usage_summary_of_caller(
    request: HttpRequest,
    query: Query[UsageQuery],
    team: str | None = Query(None, description=IMPLIED_TEAM_HELP),
):
    """`GET /teams/{slug}/usage` for the key's team (or `?team=` when signed in)."""
    return usage_summary(request, implied_team_slug(request, team), query)


@implied_router.get(
    "/usage/records",
    response=with_errors(list[UsageRecordOut], 400),
    operation_id="usage_records_of_caller",
    summary="Billed attempts of the caller's team, newest first",
)
@paginated
def usage_records_of_caller(
    request: HttpRequest,
    query: Query[UsageQuery],
    team: str | None = Query(None, description=IMPLIED_TEAM_HELP),
):
    """`GET /teams/{slug}/usage/records` for the key's team (or `?team=`)."""
    return _records(request, implied_team_slug(request, team), query)
