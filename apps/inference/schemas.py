from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field


class BackendIn(Schema):
    kind: str = Field(
        description="openai, azure_openai, openai_compatible or local",
        examples=["openai_compatible"],
    )
    name: str = Field(max_length=100, examples=["vLLM on the GPU box"])
    base_url: str = Field("", examples=["http://vllm.internal:8000/v1"])
    api_key: str = Field("", description="Write-only; stored encrypted, never returned.")
    azure_endpoint: str = ""
    azure_deployment: str = ""
    api_version: str = ""
    models: list[str] | None = Field(None, description="Leave out to fetch from /v1/models.")
    timeout_seconds: float = 60
    max_retries: int = 3
    enabled: bool = True


class BackendPatch(Schema):
    name: str | None = None
    base_url: str | None = None
    api_key: str | None = Field(None, description="Send to replace the key; empty string clears.")
    azure_endpoint: str | None = None
    azure_deployment: str | None = None
    api_version: str | None = None
    models: list[str] | None = None
    timeout_seconds: float | None = None
    max_retries: int | None = None
    enabled: bool | None = None


class BackendOut(Schema):
    id: int
    name: str
    kind: str
    kind_label: str
    scope: str = Field(description='"team" or "global"')
    development_only: bool
    base_url: str
    azure_endpoint: str
    azure_deployment: str
    api_version: str
    has_api_key: bool
    api_key_last4: str
    models: list[str]
    models_fetched_at: datetime | None
    timeout_seconds: float
    max_retries: int
    enabled: bool


class FallbackIn(Schema):
    backend: int
    model: str


class RunIn(Schema):
    backend: int = Field(description="Id of a backend this team may use.")
    model: str = Field(examples=["gpt-4o-mini"])
    messages: list[dict[str, Any]] = Field(examples=[[{"role": "user", "content": "Say hello"}]])
    parameters: dict[str, Any] | None = Field(
        None, examples=[{"temperature": 0.2, "max_tokens": 64}]
    )
    fallbacks: list[FallbackIn] | None = None


class UsageOut(Schema):
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    estimated: bool


class AttemptOut(Schema):
    number: int
    backend: int | None
    model: str
    succeeded: bool
    error: str
    http_status: int | None
    prompt_tokens: int
    completion_tokens: int
    usage_estimated: bool
    latency_ms: int | None
    ttft_ms: int | None
    started_at: datetime


class RunOut(Schema):
    id: int
    status: str
    backend: int
    model: str
    served_backend: int | None
    served_model: str
    messages: list[dict[str, Any]]
    parameters: dict[str, Any]
    fallbacks: list[dict[str, Any]]
    output: str
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str
    usage: UsageOut
    latency_ms: int | None
    ttft_ms: int | None
    error: str
    error_code: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: list[AttemptOut] | None = None


class RunPage(Schema):
    items: list[RunOut]
    limit: int
    offset: int
    has_more: bool
