"""Writes for assistants."""

from django.db import transaction
from django.utils.text import slugify

from apps.assistants.models import Assistant
from apps.core.errors import Conflict, ServiceError
from apps.teams.models import Team
from apps.teams.permissions import Action, require


@transaction.atomic
def assistant_create(
    *, team: Team, actor, name: str, description: str = "", instructions: str = ""
) -> Assistant:
    require(actor, team, Action.EDIT)
    name = name.strip()
    slug = slugify(name)[:60]
    if not slug:
        raise ServiceError("An assistant needs a name with letters or digits.", param="name")
    if Assistant.objects.filter(team=team, slug=slug).exists():
        raise Conflict(f"This team already has an assistant called {slug!r}.", param="name")
    return Assistant.objects.create(
        team=team,
        name=name,
        slug=slug,
        description=description,
        instructions=instructions,
        created_by=actor,
    )
