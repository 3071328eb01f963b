from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field


class AssistantIn(Schema):
    name: str = Field(max_length=100, examples=["Support bot"])
    description: str = ""
    backend: int = Field(description="Id of a backend this team may use.")
    model: str = Field(examples=["gpt-4o-mini"])
    fallbacks: list[dict[str, Any]] = Field(default_factory=list)
    instructions_source: str = Field("inline", description="inline, label or pinned")
    instructions: str = ""
    prompt: str | None = Field(None, description="Prompt slug (for label or pinned).")
    prompt_label: str = Field("", examples=["production"])
    prompt_version: int | None = Field(None, description="Version number to pin.")
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = Field(default_factory=list)
    memory_messages: int = 20
    tools: list[dict[str, Any]] = Field(default_factory=list)


class AssistantPatch(Schema):
    name: str | None = None
    description: str | None = None
    backend: int | None = None
    model: str | None = None
    fallbacks: list[dict[str, Any]] | None = None
    instructions_source: str | None = None
    instructions: str | None = None
    prompt: str | None = None
    prompt_label: str | None = None
    prompt_version: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    memory_messages: int | None = None
    tools: list[dict[str, Any]] | None = None


class AssistantOut(Schema):
    slug: str
    name: str
    description: str
    backend: int | None
    model: str
    fallbacks: list[dict[str, Any]]
    instructions_source: str
    instructions: str
    prompt: str | None
    prompt_label: str
    prompt_version: int | None
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    stop: list[str]
    memory_messages: int
    tools: list[dict[str, Any]]
    archived: bool
    created_at: datetime
    updated_at: datetime


class DuplicateIn(Schema):
    name: str | None = None
