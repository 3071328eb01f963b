"""Writes for teams, memberships and invitations.

Every function here checks permission through :mod:`apps.teams.permissions`
and runs in a transaction; membership changes lock the team row so the
"at least one owner" rule holds under concurrent requests.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.core.errors import Conflict, NotFound, ServiceError
from apps.events.outbox import actor_ref, emit
from apps.teams import realtime
from apps.teams.models import Invitation, Membership, Role, Team
from apps.teams.permissions import (
    Action,
    acting_role,
    forget_cached_roles,
    may_assign,
    require,
    user_of,
)

logger = logging.getLogger(__name__)
_INVITE_SALT = "teams.invitation"
RESERVED_SLUGS = {"new", "admin", "api", "static", "settings"}


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "team"
    if base in RESERVED_SLUGS:
        base = f"{base}-team"
    slug, n = base, 2
    while Team.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _exact_slug(slug: str) -> str:
    slug = slug.strip()
    if not slug or len(slug) > 60 or slugify(slug) != slug:
        raise ServiceError(
            "A team slug is 1 to 60 lowercase letters, digits, hyphens or underscores.",
            param="slug",
        )
    if slug in RESERVED_SLUGS:
        raise ServiceError(f"The slug {slug!r} is reserved.", param="slug")
    if Team.objects.filter(slug=slug).exists():
        raise _slug_taken(slug)
    return slug


def _slug_taken(slug: str) -> Conflict:
    return Conflict(f"There is already a team with the slug {slug!r}.", param="slug")


@transaction.atomic
def team_create(*, name: str, created_by, slug: str = "") -> Team:
    """``slug`` asks for exactly that slug (a Conflict when taken, for scripts that
    refer to the team by it); without one a free slug is made from the name."""
    name = name.strip()
    if not name:
        raise ServiceError("A team needs a name.", param="name")
    if len(name) > 100:
        raise ServiceError("Team names are at most 100 characters.", param="name")
    if slug:
        slug = _exact_slug(slug)
        try:
            with transaction.atomic():
                team = Team.objects.create(name=name, slug=slug)
        except IntegrityError:  # a concurrent create took it between check and insert
            raise _slug_taken(slug) from None
    else:
        try:
            with transaction.atomic():
                team = Team.objects.create(name=name, slug=_unique_slug(name))
        except IntegrityError:  # a concurrent create took the slug between check and insert
            stamped = f"{name}-{timezone.now():%H%M%S}"
            team = Team.objects.create(name=name, slug=_unique_slug(stamped))
    Membership.objects.create(team=team, user=created_by, role=Role.OWNER)
    forget_cached_roles(created_by)
    _member_event(team, "member.joined", created_by, Role.OWNER, actor=created_by)
    return team


# Putting prompts and answers in the events decides who reads them (every member and
# key with read access, and every consumer of the Kafka topic), so it sits with the
# people who decide who is in the team: owners and admins.
EVENTS_CONTENT_ACTION = Action.MANAGE_MEMBERS


@transaction.atomic
def team_events_content_set(*, team: Team, actor, enabled: bool) -> Team:
    """Turn prompt and answer content in the team's events on or off.

    It applies to events emitted from now on; events already written keep what
    they had. The catalogue has no team-settings event type, so the change is
    logged and announced to the team's settings page rather than emitted.
    """
    locked = _lock_team(team)
    require(actor, locked, EVENTS_CONTENT_ACTION)
    enabled = bool(enabled)
    if locked.events_include_content != enabled:
        locked.events_include_content = enabled
        locked.save(update_fields=["events_include_content"])
        logger.info(
            "team events content changed",
            extra={
                "team_id": locked.pk,
                "actor": actor_ref(actor)[0],
                "events_include_content": enabled,
            },
        )
        state = "now include prompts and answers" if enabled else "no longer include content"
        who = getattr(actor, "label", "") or "Someone"
        realtime.team_notice_on_commit(team_id=locked.pk, text=f"{who}: events {state}.")
    team.events_include_content = enabled  # the caller's copy emits accordingly too
    return locked
    locked.events_include_content = enabled
    locked.save(update_fields=["events_include_content"])
    actor_label = getattr(actor, "label", "") or str(actor)
    logger.info(
        "team events content changed",
        extra={"team_id": team.pk, "actor": actor_label, "events_include_content": enabled},
    )
    state = "now include prompts and answers" if enabled else "no longer include prompts or answers"
    realtime.team_notice_on_commit(team_id=team.pk, text=f"{actor_label}: events {state}.")
    return locked


def _member_event(team: Team, type_: str, user, role: str, *, actor, **extra) -> None:
    data = {"user_id": user.pk, "user": user.label, "role": role, **extra}
    emit(team, type_, subject=f"member/{user.pk}", data=data, actor=actor)


def _lock_team(team: Team) -> Team:
    return Team.objects.select_for_update().get(pk=team.pk)


def _owner_count(team: Team) -> int:
    return Membership.objects.filter(team=team, role=Role.OWNER).count()


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ServiceError(
            f"Unknown role {role!r}; use one of {', '.join(Role.values)}.", param="role"
        )


# --- Invitations -------------------------------------------------------------


def _signer() -> signing.Signer:
    return signing.Signer(salt=_INVITE_SALT)


def invitation_token(invitation: Invitation) -> str:
    """The same token every time for one invitation; expiry lives in the row, not the link."""
    return _signer().sign_object({"i": invitation.pk, "n": invitation.nonce}, compress=True)


def invitation_path(invitation: Invitation) -> str:
    return f"/invitations/{invitation_token(invitation)}/"


def invitation_url(invitation: Invitation) -> str:
    """The absolute link for e-mails, which have no request to take the host from."""
    return f"{settings.SITE_URL}{invitation_path(invitation)}"


@transaction.atomic
def invitation_create(*, team: Team, actor, role: str, email: str = "") -> Invitation:
    require(actor, team, Action.MANAGE_MEMBERS)
    _check_role(role)
    if not may_assign(acting_role(actor, team), current_role=None, new_role=role):
        raise ServiceError("Only owners can invite owners.", code="forbidden_role", param="role")
    email = email.strip().lower()
    if email and Membership.objects.filter(team=team, user__email__iexact=email).exists():
        raise Conflict(f"{email} is already a member of {team.name}.", param="email")
    invitation = Invitation.objects.create(
        team=team,
        email=email,
        role=role,
        invited_by=user_of(actor),
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    if email:
        from apps.teams.tasks import send_invitation_email

        transaction.on_commit(lambda: send_invitation_email.delay(invitation.pk))
    return invitation


def invitation_for_token(token: str) -> Invitation:
    """The invitation a link points at, whatever its state; NotFound for a forged link."""
    try:
        payload = _signer().unsign_object(token)
        invitation = Invitation.objects.select_related("team", "invited_by").get(pk=payload["i"])
    except (signing.BadSignature, KeyError, TypeError, Invitation.DoesNotExist):
        raise NotFound("This invitation link is not valid.") from None
    if not signing.constant_time_compare(invitation.nonce, str(payload.get("n", ""))):
        raise NotFound("This invitation link is not valid.")
    return invitation


UNUSABLE_REASONS = {
    "accepted": "This invitation has already been used.",
    "revoked": "This invitation was withdrawn by the team.",
    "expired": "This invitation has expired. Ask the team for a new one.",
}


@transaction.atomic
def invitation_accept(*, token: str, user) -> Membership:
    invitation = invitation_for_token(token)
    invitation = Invitation.objects.select_for_update().select_related("team").get(pk=invitation.pk)
    if invitation.status != "pending":
        raise Conflict(UNUSABLE_REASONS[invitation.status], code=f"invitation_{invitation.status}")
    team = _lock_team(invitation.team)
    if Membership.objects.filter(team=team, user=user).exists():
        raise Conflict(f"You are already a member of {team.name}.", code="already_member")
    membership = Membership.objects.create(team=team, user=user, role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    forget_cached_roles(user)
    _member_event(team, "member.joined", user, membership.role, actor=user)
    realtime.team_notice_on_commit(
        team_id=team.pk, text=f"{user.label} joined as {membership.role}."
    )
    return membership


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor) -> Invitation:
    require(actor, invitation.team, Action.MANAGE_MEMBERS)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.status != "pending":
        raise Conflict(f"This invitation is already {invitation.status}.")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    return invitation


# --- Memberships -------------------------------------------------------------


@transaction.atomic
def membership_change_role(*, membership: Membership, actor, role: str) -> Membership:
    _check_role(role)
    team = _lock_team(membership.team)
    require(actor, team, Action.MANAGE_MEMBERS)
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if not may_assign(acting_role(actor, team), current_role=membership.role, new_role=role):
        raise ServiceError("Only owners can grant or take the owner role.", code="forbidden_role")
    if membership.role == Role.OWNER and role != Role.OWNER and _owner_count(team) == 1:
        raise Conflict(
            "A team needs at least one owner; make someone else owner first.", code="last_owner"
        )
    previous = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    forget_cached_roles(membership.user)
    forget_cached_roles(actor)
    _member_event(
        team, "member.role_changed", membership.user, role, actor=actor, previous_role=previous
    )
    realtime.team_notice_on_commit(
        team_id=team.pk, text=f"{membership.user.label} is now {role} (was {previous})."
    )
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor) -> None:
    """Remove someone else from the team; leaving is :func:`membership_leave`."""
    team = _lock_team(membership.team)
    if membership.user_id == actor.pk:
        membership_leave(team=team, user=actor)
        return
    require(actor, team, Action.MANAGE_MEMBERS)
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if not may_assign(
        acting_role(actor, team), current_role=membership.role, new_role=membership.role
    ):
        raise ServiceError("Only owners can remove an owner.", code="forbidden_role")
    if membership.role == Role.OWNER and _owner_count(team) == 1:
        raise Conflict("The last owner can't be removed.", code="last_owner")
    label = membership.user.label
    _member_event(team, "member.left", membership.user, membership.role, actor=actor, removed=True)
    membership.delete()
    realtime.team_notice_on_commit(team_id=team.pk, text=f"{label} was removed from the team.")


@transaction.atomic
def membership_leave(*, team: Team, user) -> None:
    team = _lock_team(team)
    membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if membership is None:
        raise NotFound("You are not a member of this team.")
    if membership.role == Role.OWNER and _owner_count(team) == 1:
        raise Conflict(
            "You are the last owner: make someone else owner before leaving.", code="last_owner"
        )
    _member_event(team, "member.left", user, membership.role, actor=user, removed=False)
    membership.delete()
    forget_cached_roles(user)
    realtime.team_notice_on_commit(team_id=team.pk, text=f"{user.label} left the team.")
