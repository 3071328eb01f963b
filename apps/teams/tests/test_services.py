from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from apps.accounts.tests.factories import UserFactory
from apps.core.errors import Conflict, NotFound, ServiceError
from apps.events import envelope
from apps.events.models import OutboxEvent
from apps.inference import services as inference_services
from apps.inference.tests.factories import local_backend
from apps.teams import services
from apps.teams.models import Invitation, Membership, Role, Team
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db


def test_team_create_makes_the_creator_owner_and_a_unique_slug():
    user = UserFactory()
    first = services.team_create(name="Platform", created_by=user)
    second = services.team_create(name="Platform", created_by=user)
    assert (first.slug, second.slug) == ("platform", "platform-2")
    assert Membership.objects.get(team=first, user=user).role == Role.OWNER


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_team_create_rejects_bad_names(name):
    with pytest.raises(ServiceError):
        services.team_create(name=name, created_by=UserFactory())


def test_reserved_slug_is_avoided():
    team = services.team_create(name="New", created_by=UserFactory())
    assert team.slug == "new-team"


def test_invitation_round_trip():
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    invitation = services.invitation_create(team=team, actor=owner, role=Role.ADMIN)
    token = services.invitation_token(invitation)
    joiner = UserFactory()
    membership = services.invitation_accept(token=token, user=joiner)
    assert membership.role == Role.ADMIN
    invitation.refresh_from_db()
    assert invitation.status == "accepted"
    assert invitation.accepted_by == joiner


def test_invitation_token_cannot_be_reused():
    team = TeamFactory()
    invitation = services.invitation_create(
        team=team, actor=member_of(team, Role.OWNER), role="member"
    )
    token = services.invitation_token(invitation)
    services.invitation_accept(token=token, user=UserFactory())
    with pytest.raises(Conflict, match="already been used"):
        services.invitation_accept(token=token, user=UserFactory())
    assert Membership.objects.filter(team=team).count() == 2


def test_expired_invitation_is_refused():
    team = TeamFactory()
    invitation = services.invitation_create(
        team=team, actor=member_of(team, Role.OWNER), role="member"
    )
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(Conflict, match="expired"):
        services.invitation_accept(token=services.invitation_token(invitation), user=UserFactory())


def test_revoked_invitation_is_refused():
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    invitation = services.invitation_create(team=team, actor=owner, role="member")
    services.invitation_revoke(invitation=invitation, actor=owner)
    with pytest.raises(Conflict, match="withdrawn"):
        services.invitation_accept(token=services.invitation_token(invitation), user=UserFactory())


@pytest.mark.parametrize("token", ["garbage", "", "a" * 500])
def test_forged_token_is_not_found(token):
    with pytest.raises(NotFound):
        services.invitation_accept(token=token, user=UserFactory())


def test_token_with_stale_nonce_is_not_found():
    team = TeamFactory()
    invitation = services.invitation_create(
        team=team, actor=member_of(team, Role.OWNER), role="member"
    )
    token = services.invitation_token(invitation)
    Invitation.objects.filter(pk=invitation.pk).update(nonce="0" * 32)
    with pytest.raises(NotFound):
        services.invitation_accept(token=token, user=UserFactory())


def test_existing_member_cannot_accept_again():
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    invitation = services.invitation_create(team=team, actor=owner, role="viewer")
    with pytest.raises(Conflict, match="already a member"):
        services.invitation_accept(token=services.invitation_token(invitation), user=owner)
    assert Membership.objects.get(team=team, user=owner).role == Role.OWNER


def test_inviting_an_existing_member_by_email_is_a_conflict():
    team = TeamFactory()
    owner = member_of(team, Role.OWNER, email="boss@example.com")
    with pytest.raises(Conflict):
        services.invitation_create(team=team, actor=owner, role="member", email="BOSS@example.com")


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MEMBER])
def test_members_and_viewers_cannot_invite(role):
    team = TeamFactory()
    with pytest.raises(PermissionDenied):
        services.invitation_create(team=team, actor=member_of(team, role), role="member")
    assert not Invitation.objects.exists()


def test_admin_cannot_invite_an_owner():
    team = TeamFactory()
    with pytest.raises(ServiceError, match="Only owners"):
        services.invitation_create(team=team, actor=member_of(team, Role.ADMIN), role=Role.OWNER)


def test_unknown_role_is_refused():
    team = TeamFactory()
    with pytest.raises(ServiceError, match="Unknown role"):
        services.invitation_create(team=team, actor=member_of(team, Role.OWNER), role="emperor")


def test_outsider_cannot_invite():
    team = TeamFactory()
    outsider = member_of(TeamFactory(), Role.OWNER)
    with pytest.raises(PermissionDenied):
        services.invitation_create(team=team, actor=outsider, role="member")


def test_last_owner_cannot_leave_be_demoted_or_removed():
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    membership = Membership.objects.get(team=team, user=owner)
    with pytest.raises(Conflict, match="last owner"):
        services.membership_leave(team=team, user=owner)
    with pytest.raises(Conflict, match="at least one owner"):
        services.membership_change_role(membership=membership, actor=owner, role=Role.ADMIN)
    with pytest.raises(Conflict, match="last owner"):
        services.membership_remove(membership=membership, actor=owner)
    assert Membership.objects.get(pk=membership.pk).role == Role.OWNER


def test_owner_can_leave_once_another_owner_exists():
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    other = member_of(team, Role.MEMBER)
    services.membership_change_role(
        membership=Membership.objects.get(team=team, user=other), actor=owner, role=Role.OWNER
    )
    services.membership_leave(team=team, user=owner)
    assert list(Membership.objects.filter(team=team).values_list("role", flat=True)) == [Role.OWNER]


def test_admin_cannot_touch_owners():
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    member_of(team, Role.OWNER)
    admin = member_of(team, Role.ADMIN)
    owner_membership = Membership.objects.get(team=team, user=owner)
    with pytest.raises(ServiceError, match="Only owners"):
        services.membership_change_role(membership=owner_membership, actor=admin, role=Role.VIEWER)
    with pytest.raises(ServiceError, match="Only owners"):
        services.membership_remove(membership=owner_membership, actor=admin)


def test_admin_manages_members():
    team = TeamFactory()
    member_of(team, Role.OWNER)
    admin = member_of(team, Role.ADMIN)
    member = member_of(team, Role.MEMBER)
    membership = Membership.objects.get(team=team, user=member)
    services.membership_change_role(membership=membership, actor=admin, role=Role.VIEWER)
    assert Membership.objects.get(pk=membership.pk).role == Role.VIEWER
    services.membership_remove(membership=membership, actor=admin)
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_viewer_cannot_change_roles():
    team = TeamFactory()
    viewer = member_of(team, Role.VIEWER)
    member = member_of(team, Role.MEMBER)
    with pytest.raises(PermissionDenied):
        services.membership_change_role(
            membership=Membership.objects.get(team=team, user=member), actor=viewer, role=Role.ADMIN
        )


def test_anyone_can_leave():
    team = TeamFactory()
    member_of(team, Role.OWNER)
    viewer = member_of(team, Role.VIEWER)
    services.membership_leave(team=team, user=viewer)
    assert not Membership.objects.filter(team=team, user=viewer).exists()
    with pytest.raises(NotFound):
        services.membership_leave(team=team, user=viewer)


# --- event content ------------------------------------------------------------

HELLO = [{"role": "user", "content": "Secret question 42"}]


def _queue_a_run(team, actor, backend):
    run = inference_services.run_create(
        team=team, actor=actor, backend_id=backend.pk, model="local-echo", messages=HELLO
    )
    return OutboxEvent.objects.get(team_id=team.pk, type="run.queued", subject=f"run/{run.pk}")


def test_run_queued_carries_messages_only_once_the_team_turns_content_on():
    team = TeamFactory()
    admin = member_of(team, Role.ADMIN)
    backend = local_backend(team, admin)
    before = _queue_a_run(team, admin, backend)
    assert "messages" not in before.data
    assert "Secret question" not in envelope.dumps(envelope.build(before)).decode()

    services.team_events_content_set(team=team, actor=admin, enabled=True)
    fresh = Team.objects.get(pk=team.pk)  # what a worker or another request loads
    assert fresh.events_include_content is True
    after = _queue_a_run(fresh, admin, backend)
    assert after.data["messages"] == HELLO
    envelope.validate(envelope.build(after))

    services.team_events_content_set(team=fresh, actor=admin, enabled=False)
    off_again = _queue_a_run(Team.objects.get(pk=team.pk), admin, backend)
    assert "messages" not in off_again.data


def test_changing_event_content_emits_no_event_and_tells_the_team_once(
    django_capture_on_commit_callbacks,
):
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    with django_capture_on_commit_callbacks() as callbacks:
        returned = services.team_events_content_set(team=team, actor=owner, enabled=True)
    assert returned.events_include_content is True
    assert team.events_include_content is True, "the caller's copy follows"
    assert len(callbacks) == 1  # the settings page's live notice
    with django_capture_on_commit_callbacks() as callbacks:
        services.team_events_content_set(team=team, actor=owner, enabled=True)
    assert callbacks == [], "no change, no notice"
    assert not OutboxEvent.objects.filter(team_id=team.pk).exclude(type="member.joined").exists()


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_members_and_viewers_may_not_change_event_content(role):
    team = TeamFactory()
    with pytest.raises(PermissionDenied):
        services.team_events_content_set(team=team, actor=member_of(team, role), enabled=True)
    assert Team.objects.get(pk=team.pk).events_include_content is False


def test_another_teams_admin_may_not_change_event_content():
    team = TeamFactory()
    outsider = member_of(TeamFactory(), Role.ADMIN)
    with pytest.raises(PermissionDenied):
        services.team_events_content_set(team=team, actor=outsider, enabled=True)
    assert Team.objects.get(pk=team.pk).events_include_content is False
