from datetime import datetime
from decimal import Decimal
from typing import Literal

from ninja import Schema
from pydantic import Field

from apps.quotas import services

COST_HELP = 'A decimal amount in the price list\'s currency (at most 6 decimals), e.g. "25.50".'


class QuotaFields(Schema):
    token_budget: int | None = Field(
        None,
        ge=0,
        le=services.MAX_TOKENS,
        description="Tokens per period (prompt + completion); null: no token budget.",
        examples=[2_000_000],
    )
    cost_budget: Decimal | None = Field(
        None,
        ge=0,
        le=services.MAX_COST,
        decimal_places=6,
        description=f"Cost per period; null: no cost budget. {COST_HELP}",
        examples=["250.00"],
    )
    requests_per_minute: int | None = Field(
        None,
        ge=0,
        le=services.MAX_REQUESTS_PER_MINUTE,
        description="Requests in any 60 seconds; null: no limit.",
        examples=[600],
    )
    tokens_per_minute: int | None = Field(
        None,
        ge=0,
        le=services.MAX_TOKENS_PER_MINUTE,
        description="Tokens (reserved worst case, then actual) in any 60 seconds; null: no limit.",
        examples=[200_000],
    )
    max_concurrent_runs: int | None = Field(
        None,
        ge=0,
        le=services.MAX_CONCURRENT_RUNS,
        description="Runs queued or running at once; null: no limit.",
        examples=[20],
    )


class QuotaIn(QuotaFields):
    api_key: str | None = Field(
        None, description="Public id of the key this quota is for; null: the whole team."
    )
    period: Literal["day", "month"] = Field(
        "month", description="Budgets reset at each local midnight or first of the month."
    )
    thresholds: list[int] = Field(
        default_factory=lambda: [80, 100],
        max_length=services.MAX_THRESHOLDS,
        description="Percentages of a budget that e-mail the team's admins once per period.",
        examples=[[80, 100]],
    )


class QuotaPatch(QuotaFields):
    """Only the fields sent change; null removes a limit."""

    period: Literal["day", "month"] | None = Field(None, description="day or month.")
    thresholds: list[int] | None = Field(
        None, max_length=services.MAX_THRESHOLDS, description="Percentages from 1 to 100."
    )


class IncreaseIn(Schema):
    extra_tokens: int = Field(
        0, ge=0, le=services.MAX_TOKENS, description="Added to the token budget."
    )
    extra_cost: Decimal = Field(
        Decimal(0),
        ge=0,
        le=services.MAX_COST,
        decimal_places=6,
        description="Added to the cost budget.",
    )
    extra_requests_per_minute: int = Field(0, ge=0, le=services.MAX_REQUESTS_PER_MINUTE)
    extra_tokens_per_minute: int = Field(0, ge=0, le=services.MAX_TOKENS_PER_MINUTE)
    extra_concurrent_runs: int = Field(0, ge=0, le=services.MAX_CONCURRENT_RUNS)
    starts_at: datetime | None = Field(None, description="Default: now.")
    ends_at: datetime = Field(description="When the increase stops; at most a year ahead.")
    reason: str = Field("", max_length=200, examples=["Launch week"])


class IncreaseOut(Schema):
    id: int
    extra_tokens: int
    extra_cost: Decimal
    extra_requests_per_minute: int
    extra_tokens_per_minute: int
    extra_concurrent_runs: int
    starts_at: datetime
    ends_at: datetime
    reason: str
    active: bool = Field(description="Whether it applies right now.")


class LimitUseOut(Schema):
    name: str = Field(
        description="token_budget, cost_budget, requests_per_minute, tokens_per_minute or "
        "concurrent_runs."
    )
    unit: str = Field(description="tokens, cost, requests or runs.")
    limit: Decimal = Field(description="The limit in force, increases included.")
    consumed: Decimal = Field(
        description="Settled usage this period, or in the last 60 s, or running now."
    )
    reserved: Decimal = Field(description="Held by runs in flight (budgets only).")
    period: str = Field(description="The period id (2025-06, 2025-06-14), minute or now.")
    resets_at: datetime | None = Field(
        description="When the budget resets; null for rolling limits."
    )


class PeriodOut(Schema):
    id: str = Field(examples=["2025-06"])
    start: datetime
    end: datetime


class QuotaOut(Schema):
    id: int
    scope: str = Field(description="team or key.")
    api_key: str | None = Field(description="The key's public id for a key quota.")
    period: str
    token_budget: int | None
    cost_budget: Decimal | None
    requests_per_minute: int | None
    tokens_per_minute: int | None
    max_concurrent_runs: int | None
    thresholds: list[int]
    time_zone: str = Field(description="The team's zone periods follow.")
    current_period: PeriodOut
    usage: list[LimitUseOut]
    increases: list[IncreaseOut] = Field(description="Current and future increases.")
    created_at: datetime
    updated_at: datetime


class TimeZoneIn(Schema):
    time_zone: str = Field(max_length=64, description="An IANA zone.", examples=["Europe/Paris"])


class TimeZoneOut(Schema):
    time_zone: str
