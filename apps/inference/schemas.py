from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field

from apps.core.api_pagination import Ordering
from apps.inference.models import RunStatus

RUNS_ORDER = Ordering(
    "-created_at",
    created_at="created_at",
    finished_at="finished_at",
    latency_ms="latency_ms",
    total_tokens="total_tokens",
)


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
    kind: str = Field(description="openai, azure_openai, openai_compatible or local")
    kind_label: str = Field(examples=["OpenAI-compatible"])
    scope: str = Field(description='"team" or "global"')
    development_only: bool = Field(description="A kind meant for development, not production.")
    base_url: str
    azure_endpoint: str
    azure_deployment: str
    api_version: str
    has_api_key: bool = Field(description="Whether a key is stored; the key is never returned.")
    api_key_last4: str = Field(description="The key's last four characters, to recognise it.")
    models: list[str] = Field(examples=[["gpt-4o-mini", "gpt-4o"]])
    models_fetched_at: datetime | None = Field(
        description="When a worker last fetched the model list; null when entered by hand."
    )
    timeout_seconds: float
    max_retries: int
    enabled: bool


class FallbackIn(Schema):
    backend: int = Field(description="Id of a backend this team may use.")
    model: str


class RunIn(Schema):
    backend: int = Field(description="Id of a backend this team may use.")
    model: str = Field(examples=["gpt-4o-mini"])
    messages: list[dict[str, Any]] = Field(examples=[[{"role": "user", "content": "Say hello"}]])
    parameters: dict[str, Any] | None = Field(
        None, examples=[{"temperature": 0.2, "max_tokens": 64}]
    )
    fallbacks: list[FallbackIn] | None = Field(
        None, description="Tried in order when the backend fails."
    )


class RunListQuery(Schema):
    status: RunStatus | None = Field(None, description="Only runs in this state.")
    assistant: str | None = Field(None, description="Only runs of this assistant (its slug).")
    model: str | None = Field(None, description="Only runs that asked for this model id.")
    order: RUNS_ORDER.type = RUNS_ORDER.field("Newest first by default.")


class RemovedOut(Schema):
    result: str = Field(
        description="deleted, or disabled when runs still point at the backend.",
        examples=["deleted"],
    )


class QueuedOut(Schema):
    result: str = Field(description="Always queued: a worker does the rest.", examples=["queued"])


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
    status: str = Field(description="queued, running, succeeded, failed or cancelled.")
    assistant: str | None = Field(None, description="Slug of the assistant that ran, if any.")
    backend: int = Field(description="The backend asked for.")
    model: str = Field(description="The model asked for.", examples=["gpt-4o-mini"])
    served_backend: int | None = Field(description="The backend that answered (maybe a fallback).")
    served_model: str
    messages: list[dict[str, Any]]
    parameters: dict[str, Any]
    fallbacks: list[dict[str, Any]]
    output: str
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str
    usage: UsageOut
    latency_ms: int | None = Field(description="Milliseconds from start to finish.")
    ttft_ms: int | None = Field(description="Milliseconds to the first token.")
    error: str
    error_code: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: list[AttemptOut] | None = Field(
        None, description="Each call to a backend; only on the one-run endpoint."
    )
