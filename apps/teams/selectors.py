"""Reads for teams; no side effects."""

from django.db.models import QuerySet
from django.http import Http404

from apps.teams.models import Invitation, Membership, Team


def teams_for_user(user) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    key = getattr(user, "api_key", None)
    if key is not None:  # an API key sees its own team only
        return Team.objects.filter(pk=key.team_id)
    return Team.objects.filter(memberships__user=user).order_by("name")


def team_for_member(user, slug: str) -> Team:
    """The team with this slug if the user belongs to it. Others get 404, not 403,
    so a team's existence is not revealed to outsiders."""
    team = teams_for_user(user).filter(slug=slug).first()
    if team is None:
        raise Http404("No such team.")
    return team


def members(team: Team) -> QuerySet[Membership]:
    return team.memberships.select_related("user").order_by("user__email")


def membership_in_team(team: Team, membership_id: int) -> Membership:
    membership = members(team).filter(pk=membership_id).first()
    if membership is None:
        raise Http404("No such member in this team.")
    return membership


def pending_invitations(team: Team) -> list[Invitation]:
    candidates = team.invitations.filter(accepted_at__isnull=True, revoked_at__isnull=True)
    return [i for i in candidates.select_related("invited_by") if i.status == "pending"]


def invitation_in_team(team: Team, invitation_id: int) -> Invitation:
    invitation = team.invitations.filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation in this team.")
    return invitation


IMPLIED_TEAM_HELP = "Team slug; an API key implies its own team."


def implied_team_slug(request, team: str | None) -> str:
    """The team of a call that doesn't name one in its path (``/api/v1/usage``,
    ``/api/v1/events``): an API key's own team, or the ``team`` a signed-in user
    passes. A key asking for another team's slug gets the 404 any stranger gets."""
    from apps.core.errors import NotFound, ServiceError
    from apps.teams.permissions import api_key_of

    key = api_key_of(request.user)
    if key is not None:
        if team and team != key.team.slug:
            raise NotFound("No such team.", param="team")
        return key.team.slug
    if not team:
        raise ServiceError(
            "Name the team with ?team=<slug> (an API key implies its own team).", param="team"
        )
    return team


def team_for_request(request, slug: str, action=None) -> Team:
    """The team an API call names, if the caller belongs to it and may do ``action``.

    One door for every router, so the way a caller is identified (session today,
    API keys next) changes in one place.
    """
    from apps.teams.permissions import Action, require

    team = team_for_member(request.user, slug)
    require(request.user, team, action or Action.VIEW)
    return team
