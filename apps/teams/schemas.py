from datetime import datetime

from ninja import Schema
from pydantic import Field


class TeamIn(Schema):
    name: str = Field(min_length=1, max_length=100, examples=["Platform team"])


class TeamOut(Schema):
    slug: str
    name: str
    role: str | None = Field(None, description="Your role in this team.")
    created_at: datetime


class MemberOut(Schema):
    id: int
    email: str
    display_name: str
    role: str
    joined_at: datetime
