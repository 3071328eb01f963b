from datetime import datetime

from ninja import Schema


class AssistantOut(Schema):
    slug: str
    name: str
    description: str
    instructions: str
    created_at: datetime
    updated_at: datetime
