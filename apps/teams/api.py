"""Teams, members and invitations over the REST API.

Anyone signed in may create a team; an API key belongs to one team and can
neither create nor see another. Member changes need the owner or admin role,
or a key with the ``admin`` scope (which never grants or takes the owner role).
"""

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Router, Status

from apps.core.api_errors import BODY_ERRORS, with_errors
from apps.core.api_pagination import Rows, paginated
from apps.teams import selectors, services
from apps.teams.models import Invitation, Membership, Team
from apps.teams.permissions import Action, api_key_of, role_in
from apps.teams.schemas import InvitationIn, InvitationOut, MemberOut, RoleIn, TeamIn, TeamOut

router = Router(tags=["teams"])

# Listing and creating teams names no team, so neither answers 404 for one.
NO_TEAM = (401, 422, 429)


def _team_out(team: Team, role: str | None) -> TeamOut:
    return TeamOut(slug=team.slug, name=team.name, role=role, created_at=team.created_at)


def _teams_out(user, teams: list[Team]) -> list[TeamOut]:
    """A page of teams with the caller's roles from one query (a key has no role)."""
    roles: dict[int, str] = {}
    if teams and api_key_of(user) is None:
        memberships = Membership.objects.filter(user=user, team__in=teams)
        roles = dict(memberships.values_list("team_id", "role"))
    return [_team_out(team, roles.get(team.pk)) for team in teams]


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


@router.get(
    "",
    response=with_errors(list[TeamOut], base=NO_TEAM),
    operation_id="teams_list",
    summary="Teams you belong to",
)
@paginated
def teams_list(request: HttpRequest):
    """Your teams by name, with your role in each. An API key sees only its own team
    (and has no role)."""
    teams = selectors.teams_for_user(request.user).order_by("name", "pk")
    return Rows(teams, batch=lambda page: _teams_out(request.user, page))


@router.post(
    "",
    response=with_errors({201: TeamOut}, 403, 413, base=NO_TEAM),
    operation_id="teams_create",
    summary="Create a team",
)
def teams_create(request: HttpRequest, payload: TeamIn):
    """Create a team with you as its owner. Needs a signed-in person: API keys
    can't create teams (403)."""
    if api_key_of(request.user) is not None:
        raise PermissionDenied("API keys can't create teams; sign in to do that.")
    team = services.team_create(name=payload.name, created_by=request.user)
    return Status(201, _team_out(team, role_in(request.user, team)))


@router.get(
    "/{team_slug}",
    response=with_errors(TeamOut),
    operation_id="teams_get",
    summary="One team",
)
def teams_get(request: HttpRequest, team_slug: str):
    """One of your teams by slug; a team you don't belong to is 404, as if it didn't exist."""
    team = selectors.team_for_request(request, team_slug)
    return _team_out(team, role_in(request.user, team))


@router.get(
    "/{team_slug}/members",
    response=with_errors(list[MemberOut]),
    operation_id="team_members_list",
    summary="Members of a team",
)
@paginated
def members_list(request: HttpRequest, team_slug: str):
    """Every member with their role, by e-mail address."""
    team = selectors.team_for_request(request, team_slug)
    return Rows(selectors.members(team).order_by("user__email", "pk"), each=member_out)


@router.put(
    "/{team_slug}/members/{member_id}/role",
    response=with_errors(MemberOut, *BODY_ERRORS, 409),
    operation_id="team_members_set_role",
    summary="Change a member's role",
)
def members_set_role(request: HttpRequest, team_slug: str, member_id: int, payload: RoleIn):
    """Needs the owner or admin role (or an ``admin`` key). Only owners make or
    unmake owners (400); the last owner can't step down (409)."""
    team = selectors.team_for_request(request, team_slug, Action.MANAGE_MEMBERS)
    membership = services.membership_change_role(
        membership=selectors.membership_in_team(team, member_id),
        actor=request.user,
        role=payload.role,
    )
    return member_out(membership)


@router.delete(
    "/{team_slug}/members/{member_id}",
    response=with_errors({204: None}, 400, 409),
    operation_id="team_members_remove",
    summary="Remove a member from the team",
)
def members_remove(request: HttpRequest, team_slug: str, member_id: int):
    """Needs the owner or admin role (or an ``admin`` key). Only owners remove owners
    (400); the last owner stays (409). Removing yourself is leaving the team."""
    team = selectors.team_for_request(request, team_slug, Action.MANAGE_MEMBERS)
    membership = selectors.membership_in_team(team, member_id)
    services.membership_remove(membership=membership, actor=request.user)
    return Status(204, None)


@router.get(
    "/{team_slug}/invitations",
    response=with_errors(list[InvitationOut]),
    operation_id="team_invitations_list",
    summary="Pending invitations",
)
@paginated
def invitations_list(request: HttpRequest, team_slug: str):
    """Invitations not yet accepted, revoked or expired, newest first. Needs the owner
    or admin role (or an ``admin`` key)."""
    team = selectors.team_for_request(request, team_slug, Action.MANAGE_MEMBERS)
    return Rows(selectors.pending_invitations(team), each=invitation_out)


@router.post(
    "/{team_slug}/invitations",
    response=with_errors({201: InvitationOut}, *BODY_ERRORS),
    operation_id="team_invitations_create",
    summary="Invite someone by link (and e-mail, when given)",
)
def invitations_create(request: HttpRequest, team_slug: str, payload: InvitationIn):
    """The answer's ``url`` joins the team with the role given; share it. With an
    ``email`` the link is also sent there. Only owners invite owners (400)."""
    team = selectors.team_for_request(request, team_slug, Action.MANAGE_MEMBERS)
    invitation = services.invitation_create(
        team=team, actor=request.user, role=payload.role, email=payload.email
    )
    return Status(201, invitation_out(invitation))


@router.delete(
    "/{team_slug}/invitations/{invitation_id}",
    response=with_errors(InvitationOut, 409),
    operation_id="team_invitations_revoke",
    summary="Withdraw an invitation",
)
def invitations_revoke(request: HttpRequest, team_slug: str, invitation_id: int):
    """The link stops working at once; the invitation is kept, revoked."""
    team = selectors.team_for_request(request, team_slug, Action.MANAGE_MEMBERS)
    invitation = services.invitation_revoke(
        invitation=selectors.invitation_in_team(team, invitation_id), actor=request.user
    )
    return invitation_out(invitation)
