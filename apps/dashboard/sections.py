"""What the team home shows beyond its tiles: the newcomer's first steps, and
sections that are planned but not built yet.

Planned sections appear in the navigation so the shape of the product is visible;
their pages say plainly that they are not there yet instead of showing made-up data.
"""

from dataclasses import dataclass

from django.db.models import Count, Q
from django.urls import reverse

from apps.teams.permissions import Action, can

PLANNED_SECTIONS: dict[str, tuple[str, str]] = {}


@dataclass(frozen=True)
class Step:
    slug: str
    label: str
    done: bool
    url: str | None  # None: the viewer's role can't do this step
    who: str  # who can, said when the viewer can't


def getting_started(user, team, *, assistant_count: int) -> list[Step]:
    """Prompt -> assistant -> key -> a call through the gateway, each ticked from what the
    team has. Two queries (prompts, keys); the assistant count comes from the page.

    The call counts as made once any of the team's keys has been used: the key's
    ``last_used_at``, which authentication keeps, not a scan of the team's runs."""
    from apps.keys.models import ApiKey
    from apps.prompts.models import Prompt

    slug = team.slug
    keys = ApiKey.objects.filter(team=team).aggregate(
        live=Count("pk", filter=Q(revoked_at__isnull=True)),
        used=Count("pk", filter=Q(last_used_at__isnull=False)),
    )
    may_edit = can(user, team, Action.EDIT)
    may_keys = can(user, team, Action.MANAGE_KEYS)
    return [
        Step(
            "prompt",
            "Create a prompt",
            Prompt.objects.filter(team=team).exists(),
            reverse("prompts:list", args=[slug]) + "#new-prompt" if may_edit else None,
            "members, admins and owners create prompts",
        ),
        Step(
            "assistant",
            "Create an assistant",
            assistant_count > 0,
            reverse("assistants:list", args=[slug]) if may_edit else None,
            "members, admins and owners create assistants",
        ),
        Step(
            "key",
            "Create an API key",
            keys["live"] > 0,
            reverse("keys:list", args=[slug]) + "#create-key" if may_keys else None,
            "admins and owners create API keys",
        ),
        Step(
            "call",
            "Call it with the openai SDK",
            keys["used"] > 0,
            reverse("keys:list", args=[slug]) + "#call" if can(user, team, Action.USE) else None,
            "members, admins and owners call the gateway",
        ),
    ]
