import pytest

from apps.teams.models import Role
from apps.teams.permissions import Action, can, may_assign
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db

EXPECTED = {
    Role.VIEWER: {Action.VIEW},
    Role.MEMBER: {Action.VIEW, Action.USE, Action.EDIT},
    Role.ADMIN: {
        Action.VIEW,
        Action.USE,
        Action.EDIT,
        Action.MANAGE_MEMBERS,
        Action.MANAGE_KEYS,
        Action.MANAGE_BACKENDS,
        Action.MANAGE_QUOTAS,
    },
    Role.OWNER: set(Action),
}


@pytest.mark.parametrize("role", list(Role))
def test_role_grants_exactly_its_actions(role):
    team = TeamFactory()
    user = member_of(team, role)
    assert {action for action in Action if can(user, team, action)} == EXPECTED[role]


def test_membership_in_another_team_grants_nothing():
    team, other = TeamFactory(), TeamFactory()
    owner_elsewhere = member_of(other, Role.OWNER)
    assert not any(can(owner_elsewhere, team, action) for action in Action)


def test_staff_outside_the_team_gets_nothing_through_the_helper():
    team = TeamFactory()
    staff = member_of(TeamFactory(), Role.MEMBER, is_staff=True)
    assert not can(staff, team, Action.VIEW)


def test_anonymous_and_inactive_users_get_nothing(django_user_model):
    from django.contrib.auth.models import AnonymousUser

    team = TeamFactory()
    inactive = member_of(team, Role.OWNER)
    inactive.is_active = False
    assert not can(AnonymousUser(), team, Action.VIEW)
    assert not can(inactive, team, Action.VIEW)


@pytest.mark.parametrize(
    ("actor", "current", "new", "allowed"),
    [
        (Role.OWNER, Role.OWNER, Role.MEMBER, True),
        (Role.OWNER, None, Role.OWNER, True),
        (Role.ADMIN, Role.MEMBER, Role.ADMIN, True),
        (Role.ADMIN, None, Role.VIEWER, True),
        (Role.ADMIN, Role.OWNER, Role.MEMBER, False),
        (Role.ADMIN, Role.MEMBER, Role.OWNER, False),
        (Role.MEMBER, Role.VIEWER, Role.MEMBER, False),
        (Role.VIEWER, None, Role.VIEWER, False),
    ],
)
def test_may_assign(actor, current, new, allowed):
    assert may_assign(actor, current_role=current, new_role=new) is allowed
