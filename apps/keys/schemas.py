from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

from apps.core.api_pagination import Ordering

KEYS_ORDER = Ordering(
    "-created_at",
    created_at="created_at",
    name="name",
    last_used_at="last_used_at",
    expires_at="expires_at",
)


class KeyListQuery(Schema):
    status: Literal["active", "expired", "revoked"] | None = Field(
        None, description="Only keys in this state."
    )
    order: KEYS_ORDER.type = KEYS_ORDER.field("Newest first by default.")


class KeyIn(Schema):
    name: str = Field(max_length=100, examples=["CI pipeline"])
    scopes: list[str] = Field(
        description="Any of chat, read, write, admin.", examples=[["chat", "read"]]
    )
    expires_at: datetime | None = Field(
        None, description="When the key stops working; the team's policy may require one."
    )
    assistant: str | None = Field(None, description="Slug of the one assistant the key may use.")
    allowed_models: list[str] = Field(
        default_factory=list, description="Assistant slugs and model ids; empty allows all."
    )
    requests_per_minute: int | None = Field(
        None,
        ge=1,
        description="Requests per minute; no limit of its own when left out.",
        examples=[60],
    )
    tokens_per_minute: int | None = Field(
        None,
        ge=1,
        description="Tokens per minute; no limit of its own when left out.",
        examples=[100000],
    )


class KeyOut(Schema):
    id: str = Field(description="The public id; the key's secret is never returned.")
    name: str
    prefix: str = Field(examples=["aip_abcdefgh2345_"])
    scopes: list[str]
    status: str = Field(description="active, expired or revoked.")
    assistant: str | None = Field(description="The one assistant the key may use, if bound.")
    allowed_models: list[str]
    requests_per_minute: int | None
    tokens_per_minute: int | None
    expires_at: datetime | None
    created_by: str | None = Field(description="E-mail of who issued it.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    previous_secret_valid_until: datetime | None = Field(
        description="After a rotation, until when the old secret still works."
    )


class NewKeyOut(Schema):
    key: KeyOut
    secret: str = Field(description="The raw key, shown this once: store it now.")


class RotateIn(Schema):
    grace_seconds: int = Field(
        0, ge=0, le=7 * 24 * 3600, description="How long the old secret keeps working."
    )


class PolicyIn(Schema):
    max_lifetime_days: int | None = Field(
        None,
        ge=1,
        le=3650,
        description="Longest lifetime of new keys in days; null lets keys live forever.",
        examples=[90],
    )


class PolicyOut(Schema):
    max_lifetime_days: int | None = Field(
        description="Longest lifetime of new keys in days; null when unlimited."
    )
