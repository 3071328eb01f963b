from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from apps.core.api_pagination import Ordering

ASSISTANTS_ORDER = Ordering("name", name="name", created_at="created_at", updated_at="updated_at")


class AssistantListQuery(Schema):
    archived: bool = Field(
        False, description="true lists archived assistants only; false (default) active ones."
    )
    include_archived: bool = Field(
        False, description="true lists active and archived ones together (overrides `archived`)."
    )
    q: str = Field(
        "", max_length=200, description="Only those whose name or description contains this."
    )
    model: str | None = Field(None, description="Only those that call this model id.")
    order: ASSISTANTS_ORDER.type = ASSISTANTS_ORDER.field()


class AssistantIn(Schema):
    name: str = Field(max_length=100, examples=["Support bot"])
    description: str = Field("", examples=["Answers questions about our product."])
    backend: int = Field(description="Id of a backend this team may use.", examples=[1])
    model: str = Field(description="A model id the backend serves.", examples=["gpt-4o-mini"])
    fallbacks: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Tried in order when the backend fails: backend id and model.",
        examples=[[{"backend": 2, "model": "llama-3.1-8b"}]],
    )
    instructions_source: str = Field(
        "inline",
        description="Where the system instructions come from: inline (the `instructions` "
        "text), label (a prompt's label, followed as it moves) or pinned (a prompt version).",
        examples=["inline"],
    )
    instructions: str = Field(
        "", description="Template text for inline instructions.", examples=["Be brief."]
    )
    prompt: str | None = Field(None, description="Prompt slug (for label or pinned).")
    prompt_label: str = Field("", description="Label to follow.", examples=["production"])
    prompt_version: int | None = Field(None, description="Version number to pin.")
    temperature: float | None = Field(None, examples=[0.2])
    top_p: float | None = None
    max_tokens: int | None = Field(None, examples=[512])
    stop: list[str] = Field(default_factory=list, description="Stop sequences.")
    memory_messages: int = Field(
        20, description="How many earlier messages of a conversation the model sees."
    )
    tools: list[dict[str, Any]] = Field(
        default_factory=list, description="Tool definitions in OpenAI's format."
    )


class AssistantPatch(Schema):
    """Only the fields sent change; see AssistantIn for what each means."""

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
    slug: str = Field(description="Its id in URLs, unique in the team.", examples=["support-bot"])
    name: str
    description: str
    backend: int | None = Field(description="Backend id; null when the backend was deleted.")
    model: str
    fallbacks: list[dict[str, Any]]
    instructions_source: str = Field(description="inline, label or pinned.")
    instructions: str
    prompt: str | None = Field(description="Prompt slug, for label or pinned.")
    prompt_label: str
    prompt_version: int | None = Field(description="The pinned version number.")
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    stop: list[str]
    memory_messages: int
    tools: list[dict[str, Any]]
    archived: bool = Field(description="Archived ones are left out of lists unless asked for.")
    created_at: datetime
    updated_at: datetime


class DuplicateIn(Schema):
    name: str | None = Field(None, description='Name of the copy; default "<name> (copy)".')


class RemovedOut(Schema):
    result: Literal["deleted", "archived"] = Field(
        description="deleted, or archived when it has conversations or runs to keep."
    )
