"""Teams, members and invitations over the REST API.

Anyone signed in may create a team; an API key belongs to one team and can
neither create nor see another. Member changes need the owner or admin role,
or a key with the ``admin`` scope (which never grants or takes the owner role).
"""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Router, Status

from apps.teams import selectors, services
from apps.teams.models import Invitation, Membership
from apps.teams.permissions import Action, api_key_of, role_in
from apps.teams.schemas import InvitationIn, InvitationOut, MemberOut, RoleIn, TeamIn, TeamOut

router = Router(tags=["teams"])


def _team_out(team, user) -> TeamOut:
    return TeamOut(
        slug=team.slug, name=team.name, role=role_in(user, team), created_at=team.created_at
    )


def member_out(m: Membership) -> MemberOut:
    return MemberOut(
        id=m.pk,
        email=m.user.email,
        display_name=m.user.display_name,
        role=m.role,
        joined_at=m.created_at,
    )


def invitation_out(i: Invitation) -> InvitationOut:
    return InvitationOut(
        id=i.pk,
        email=i.email,
        role=i.role,
        status=i.status,
        expires_at=i.expires_at,
        url=services.invitation_url(i),
    )


@router.get("", response=list[TeamOut], operation_id="teams_list", summary="Teams you belong to")
def teams_list(request: HttpRequest):
    return [_team_out(team, request.user) for team in selectors.teams_for_user(request.user)]


@router.post("", response={201: TeamOut}, operation_id="teams_create", summary="Create a team")
def teams_create(request: HttpRequest, payload: TeamIn):
    if api_key_of(request.user) is not None:
        raise PermissionDenied("API keys can't create teams; sign in to do that.")
    team = services.team_create(name=payload.name, created_by=request.user)
    return Status(201, _team_out(team, request.user))


@router.get("/{team_slug}", response=TeamOut, operation_id="teams_get", summary="One team")
def teams_get(request: HttpRequest, team_slug: str):
    return _team_out(selectors.team_for_request(request, team_slug), request.user)


@router.get(
    "/{team_slug}/members",
    response=list[MemberOut],
    operation_id="team_members_list",
    summary="Members of a team",
)
def members_list(request: HttpRequest, team_slug: str):
    team = selectors.team_for_request(request, team_slug)
    return [member_out(m) for m in selectors.members(team)]


@router.put(
    "/{team_slug}/members/{member_id}/role",
    response=MemberOut,
    operation_id="team_members_set_role",
    summary="Change a member's role",
)
def members_set_role(request: HttpRequest, team_slug: str, member_id: int, payload: RoleIn):
    team = selectors.team_for_request(request, team_slug, Action.MANAGE_MEMBERS)
    membership = services.membership_change_role(
        membership=selectors.membership_in_team(team, member_id),
        actor=request.user,
        role=payload.role,
    )
    return member_out(membership)


@router.delete(
    "/{team_slug}/members/{member_id}",
    response={204: None},
    operation_id="team_members_remove",
    summary="Remove a member from the team",
)
def members_remove(request: HttpRequest, team_slug: str, member_id: int):
    team = selectors.team_for_request(request, team_slug, Action.MANAGE_MEMBERS)
    membership = selectors.membership_in_team(team, member_id)
    services.membership_remove(membership=membership, actor=request.user)
    return Status(204, None)


@router.get(
    "/{team_slug}/invitations",
    response=list[InvitationOut],
    operation_id="team_invitations_list",
    summary="Pending invitations",
)
def invitations_list(request: HttpRequest, team_slug: str):
    team = selectors.team_for_request(request, team_slug, Action.MANAGE_MEMBERS)
    return [invitation_out(i) for i in selectors.pending_invitations(team)]


@router.post(
    "/{team_slug}/invitations",
    response={201: InvitationOut},
    operation_id="team_invitations_create",
    summary="Invite someone by link (and e-mail, when given)",
)
def invitations_create(request: HttpRequest, team_slug: str, payload: InvitationIn):
    team = selectors.team_for_request(request, team_slug, Action.MANAGE_MEMBERS)
    invitation = services.invitation_create(
        team=team, actor=request.user, role=payload.role, email=payload.email
    )
    return Status(201, invitation_out(invitation))


@router.delete(
    "/{team_slug}/invitations/{invitation_id}",
    response=InvitationOut,
    operation_id="team_invitations_revoke",
    summary="Withdraw an invitation",
)
def invitations_revoke(request: HttpRequest, team_slug: str, invitation_id: int):
    team = selectors.team_for_request(request, team_slug, Action.MANAGE_MEMBERS)
    invitation = services.invitation_revoke(
        invitation=selectors.invitation_in_team(team, invitation_id), actor=request.user
    )
    return invitation_out(invitation)
