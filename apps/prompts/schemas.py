from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from apps.core.api_pagination import Ordering

PROMPTS_ORDER = Ordering("name", name="name", created_at="created_at", updated_at="updated_at")


class PromptListQuery(Schema):
    include_archived: bool = Field(False, description="true lists archived prompts too.")
    q: str = Field(
        "", max_length=200, description="Only prompts whose name, slug or description contain this."
    )
    order: PROMPTS_ORDER.type = PROMPTS_ORDER.field()


class LabelHistoryQuery(Schema):
    label: str | None = Field(None, description="Only the moves of this label.")


class MessageTemplate(Schema):
    role: Literal["system", "user", "assistant"]
    content: str = Field(examples=["Summarise this for {{ audience }}: {{ text }}"])


class PromptIn(Schema):
    name: str = Field(min_length=1, max_length=100, examples=["Support reply"])
    description: str = ""
    system: str = Field("", examples=["You answer customers of {{ company }} politely."])
    messages: list[MessageTemplate] | None = None
    parameters: dict[str, Any] | None = Field(None, examples=[{"temperature": 0.2}])
    commit_message: str = Field("Initial version", max_length=500)


class PromptPatch(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    description: str | None = None


class VersionIn(Schema):
    """The whole content of the new version, not a patch of the latest one."""

    system: str = ""
    messages: list[MessageTemplate] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    commit_message: str = Field("", max_length=500)


class UsageOut(Schema):
    runs: int = Field(description="Runs that used this version.")
    tokens: int = Field(description="Their total tokens.")


class VersionOut(Schema):
    number: int = Field(examples=[2])
    system: str = Field(description="The system message template.")
    messages: list[dict[str, Any]] = Field(description="Message templates after the system one.")
    variables: list[str] = Field(
        description="Variables the templates use.", examples=[["company", "question"]]
    )
    parameters: dict[str, Any]
    commit_message: str
    author: str | None = Field(None, description="E-mail of who saved it.")
    created_at: datetime
    labels: list[str] = Field(description="Labels pointing at this version now.")
    usage: UsageOut


class PromptOut(Schema):
    slug: str = Field(description="Its id in URLs; stays when renamed.", examples=["support-reply"])
    name: str
    description: str
    created_by: str | None = Field(description="E-mail of who created it.")
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    latest_version: int | None = Field(description="The newest version number.", examples=[3])
    labels: dict[str, int] = Field(description="Label name -> version number.")


class PromptDetailOut(PromptOut):
    latest: VersionOut | None


class DiffQuery(Schema):
    from_: int = Field(alias="from", description="The older version number.")
    to: int = Field(description="The newer version number.")


class DiffOut(Schema):
    from_version: int
    to_version: int
    system: list[str] = Field(description="Unified diff lines of the system template.")
    messages: list[str] = Field(description='Unified diff lines of the "role: content" lines.')
    parameters: dict[str, tuple[Any, Any]] = Field(description="Changed keys: [old, new].")


class LabelIn(Schema):
    version: int = Field(ge=1, description="The version number the label should point at.")


class LabelOut(Schema):
    name: str
    version: int
    updated_by: str | None
    updated_at: datetime


class LabelMoveOut(Schema):
    label: str
    from_version: int | None = Field(description="Empty when this move created the label.")
    to_version: int
    moved_by: str | None
    moved_at: datetime


class RenderIn(Schema):
    version: int | None = Field(None, description="A version number; or give label; or neither.")
    label: str | None = Field(None, description="Resolve the version through a label.")
    variables: dict[str, Any] = Field(default_factory=dict, examples=[{"company": "Acme"}])


class RenderedMessage(Schema):
    role: str
    content: str


class RenderOut(Schema):
    version: int
    messages: list[RenderedMessage]
    extra_variables: list[str] = Field(description="Given but used by no template.")
