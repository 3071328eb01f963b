from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from ninja import Schema
from pydantic import Field

from apps.usage.models import PRICE_DIGITS
from apps.usage.query import RANGES

RangeName = Literal[tuple(RANGES)]
COST = "USD as an exact decimal string."


class UsageQuery(Schema):
    range: RangeName = Field(
        "7d",
        description="today, 7d, 30d, month (this month so far) or custom (give start and end). "
        "Days are the team's, in its time zone.",
    )
    start: date | None = Field(None, description="First day of a custom range.")
    end: date | None = Field(
        None, description="Last day of a custom range (inclusive); at most 366 days."
    )
    assistant: str | None = Field(None, description="Only this assistant (slug).")
    model: str | None = Field(None, max_length=200, description="Only this model id.")
    key: str | None = Field(None, max_length=12, description="Only this API key (public id).")
    prompt_version: int | None = Field(None, ge=1, description="Only this prompt version (id).")


class AggregatesQuery(UsageQuery):
    granularity: Literal["day", "hour"] = Field("day", description="One row per day or per hour.")


class TotalsOut(Schema):
    requests: int = Field(description="Backend attempts (retries and fallbacks count).")
    errors: int = Field(description="Attempts that failed (cancelled ones are not errors).")
    estimated_requests: int = Field(description="Attempts whose tokens were estimated.")
    unpriced_requests: int = Field(description="Attempts of models without a price, at 0.")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int
    cost: Decimal = Field(description=COST, examples=["0.0425"])
    latency_avg_ms: int | None
    latency_p50_ms: int | None = Field(description="From a bucketed histogram: an estimate.")
    latency_p95_ms: int | None = Field(description="From a bucketed histogram: an estimate.")


class PointOut(TotalsOut):
    start: datetime | date = Field(description="Start of the hour (an instant) or the day.")
    label: str = Field(description="The bucket on the team's clock, for charts.")


class TopOut(TotalsOut):
    id: str | None = Field(
        description="Assistant slug, model id or key public id; null for none or deleted."
    )
    name: str


class UsageOut(Schema):
    time_zone: str = Field(description="The team's time zone; days and hours follow it.")
    range: str
    start: date
    end: date = Field(description="Last day, inclusive.")
    granularity: Literal["hour", "day"] = Field(description="Of `series`.")
    totals: TotalsOut
    series: list[PointOut]
    top_assistants: list[TopOut]
    top_models: list[TopOut]
    top_keys: list[TopOut]
    unpriced_models: list[str] = Field(
        description="Models used in the range without a price: recorded at 0, not free."
    )


class UsageRecordOut(Schema):
    id: int
    time: datetime = Field(description="When the attempt ended.")
    run_id: int | None
    status: str = Field(description="succeeded, failed or cancelled.")
    model: str
    backend: int | None
    assistant: str | None
    prompt_version: int | None
    api_key: str | None = Field(description="Public id of the key that asked, if one did.")
    user: str | None = Field(description="E-mail of the person who asked, if one did.")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int | None = Field(description="Null when the backend doesn't report it.")
    usage_estimated: bool
    cost: Decimal = Field(description=COST)
    unpriced: bool = Field(description="No price applied; cost is 0 until one is set.")
    latency_ms: int | None
    ttft_ms: int | None
    http_status: int | None


PRICE = {
    "ge": 0,
    "max_digits": PRICE_DIGITS["max_digits"],
    "decimal_places": PRICE_DIGITS["decimal_places"],
}


class PriceIn(Schema):
    backend: int = Field(description="One of the team's own backends.")
    model: str = Field(min_length=1, max_length=200, examples=["gpt-4o-mini"])
    input_per_million: Decimal = Field(
        **PRICE, description="USD per 1M prompt tokens, at most 6 decimals.", examples=["0.15"]
    )
    output_per_million: Decimal = Field(**PRICE, description="USD per 1M completion tokens.")
    cached_input_per_million: Decimal | None = Field(
        None, **PRICE, description="USD per 1M cached prompt tokens; null bills the input price."
    )
    effective_from: datetime | None = Field(
        None, description="When it starts (now if left out); never in the past."
    )
    note: str = Field("", max_length=200)


class PriceOut(Schema):
    id: int
    scope: Literal["global", "team"]
    backend: int | None
    model: str
    input_per_million: Decimal
    output_per_million: Decimal
    cached_input_per_million: Decimal | None
    effective_from: datetime
    note: str


class PriceListQuery(Schema):
    model: str | None = Field(None, max_length=200, description="Only prices of this model.")
    scope: Literal["global", "team"] | None = Field(None, description="Only global or own.")
