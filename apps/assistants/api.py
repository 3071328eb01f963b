from django.http import HttpRequest
from ninja import Router

from apps.assistants.schemas import AssistantOut
from apps.assistants.selectors import assistants_for_team
from apps.teams.selectors import team_for_member

router = Router(tags=["assistants"])


@router.get(
    "/{team_slug}/assistants",
    response=list[AssistantOut],
    operation_id="assistants_list",
    summary="Assistants of a team",
)
def assistants_list(request: HttpRequest, team_slug: str):
    return list(assistants_for_team(team_for_member(request.user, team_slug)))
