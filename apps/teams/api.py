"""Teams and members over the REST API (session auth; keys come with the API-key work)."""

from django.http import HttpRequest
from ninja import Router, Status

from apps.teams import selectors, services
from apps.teams.permissions import role_in
from apps.teams.schemas import MemberOut, TeamIn, TeamOut

router = Router(tags=["teams"])


def _team_out(team, user) -> TeamOut:
    return TeamOut(
        slug=team.slug, name=team.name, role=role_in(user, team), created_at=team.created_at
    )


@router.get("", response=list[TeamOut], operation_id="teams_list", summary="Teams you belong to")
def teams_list(request: HttpRequest):
    return [_team_out(team, request.user) for team in selectors.teams_for_user(request.user)]


@router.post("", response={201: TeamOut}, operation_id="teams_create", summary="Create a team")
def teams_create(request: HttpRequest, payload: TeamIn):
    team = services.team_create(name=payload.name, created_by=request.user)
    return Status(201, _team_out(team, request.user))


@router.get("/{team_slug}", response=TeamOut, operation_id="teams_get", summary="One team")
def teams_get(request: HttpRequest, team_slug: str):
    return _team_out(selectors.team_for_member(request.user, team_slug), request.user)


@router.get(
    "/{team_slug}/members",
    response=list[MemberOut],
    operation_id="team_members_list",
    summary="Members of a team",
)
def members_list(request: HttpRequest, team_slug: str):
    team = selectors.team_for_member(request.user, team_slug)
    return [
        MemberOut(
            id=m.pk,
            email=m.user.email,
            display_name=m.user.display_name,
            role=m.role,
            joined_at=m.created_at,
        )
        for m in selectors.members(team)
    ]
