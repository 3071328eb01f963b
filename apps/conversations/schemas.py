from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field


class ConversationIn(Schema):
    assistant: str = Field(description="Assistant slug.")
    title: str = ""


class ConversationOut(Schema):
    id: int
    assistant: str
    title: str
    created_at: datetime
    updated_at: datetime


class MessageIn(Schema):
    content: str = Field(examples=["How do I rotate a key?"])
    variables: dict[str, Any] | None = None
    draft: str | None = Field(None, description="Try unsaved instructions for this message.")


class MessageOut(Schema):
    id: int
    role: str
    content: str
    run_id: int | None
    status: str | None = Field(None, description="The run's status for assistant messages.")
    model: str | None = None
    prompt_version: int | None = None
    total_tokens: int | None = None
    latency_ms: int | None = None
    created_at: datetime


class TurnOut(Schema):
    conversation: int
    user_message: MessageOut
    assistant_message: MessageOut
    extra_variables: list[str]
