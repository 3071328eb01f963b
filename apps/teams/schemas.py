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


class RoleIn(Schema):
    role: str = Field(description="owner, admin, member or viewer.", examples=["member"])


class InvitationIn(Schema):
    role: str = Field("member", description="owner, admin, member or viewer.")
    email: str = Field("", max_length=254, description="Optional: e-mail the link there.")


class InvitationOut(Schema):
    id: int
    email: str
    role: str
    status: str
    expires_at: datetime
    url: str = Field(description="The link that joins the team; share it with the invitee.")
