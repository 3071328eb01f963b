from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field

from apps.core.api_pagination import Ordering

CONVERSATIONS_ORDER = Ordering(
    "-updated_at", updated_at="updated_at", created_at="created_at", title="title"
)


class ConversationListQuery(Schema):
    q: str = Field("", description="Only conversations whose title or messages contain this text.")
    assistant: str | None = Field(None, description="Only conversations with this assistant.")
    order: CONVERSATIONS_ORDER.type = CONVERSATIONS_ORDER.field(
        "Most recently active first by default."
    )


class ConversationIn(Schema):
    assistant: str = Field(description="Assistant slug.", examples=["support-bot"])
    title: str = Field("", examples=["Rotating keys"])


class ConversationOut(Schema):
    id: int
    assistant: str = Field(description="Assistant slug.")
    title: str
    created_at: datetime
    updated_at: datetime = Field(description="When the last message was sent.")


class MessageIn(Schema):
    content: str = Field(examples=["How do I rotate a key?"])
    variables: dict[str, Any] | None = Field(
        None,
        description="Values for the assistant's instruction template.",
        examples=[{"customer": "Acme"}],
    )
    draft: str | None = Field(None, description="Try unsaved instructions for this message.")


class MessageOut(Schema):
    id: int
    role: str = Field(description="user or assistant.")
    content: str = Field(description="The text; for the assistant, what the run produced so far.")
    run_id: int | None = Field(description="The run answering, for assistant messages.")
    status: str | None = Field(None, description="The run's status for assistant messages.")
    model: str | None = None
    prompt_version: int | None = None
    total_tokens: int | None = None
    latency_ms: int | None = None
    created_at: datetime


class TurnOut(Schema):
    conversation: int
    user_message: MessageOut
    assistant_message: MessageOut = Field(description="Queued: follow its run for the answer.")
    extra_variables: list[str] = Field(description="Given but used by no template.")
