import re

import pytest
from django.urls import reverse

from apps.accounts.tests.factories import UserFactory
from apps.teams import services
from apps.teams.models import Invitation, Membership, Role, Team
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db


def test_create_team_from_the_page(client):
    user = UserFactory()
    client.force_login(user)
    response = client.post(reverse("teams:create"), {"name": "Research"})
    team = Team.objects.get(name="Research")
    assert response.url == reverse("dashboard:team_home", args=[team.slug])
    assert Membership.objects.get(team=team, user=user).role == Role.OWNER


def test_create_team_with_empty_name_is_400(client):
    client.force_login(UserFactory())
    response = client.post(reverse("teams:create"), {"name": ""})
    assert response.status_code == 400
    assert not Team.objects.exists()


def team_urls(team, membership_id=1, invitation_id=1):
    return [
        ("get", reverse("dashboard:team_home", args=[team.slug])),
        ("get", reverse("teams:settings", args=[team.slug])),
        ("get", reverse("assistants:list", args=[team.slug])),
        ("get", reverse("dashboard:planned", args=[team.slug, "usage"])),
        ("post", reverse("teams:invite", args=[team.slug])),
        ("post", reverse("teams:events_content", args=[team.slug])),
        ("post", reverse("teams:member_role", args=[team.slug, membership_id])),
        ("post", reverse("teams:member_remove", args=[team.slug, membership_id])),
        ("post", reverse("teams:invitation_revoke", args=[team.slug, invitation_id])),
        ("post", reverse("teams:leave", args=[team.slug])),
    ]


def test_another_teams_urls_are_404_for_outsiders(client):
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    invitation = services.invitation_create(team=team, actor=owner, role="member")
    membership = Membership.objects.get(team=team, user=owner)
    outsider = member_of(TeamFactory(), Role.OWNER)
    client.force_login(outsider)
    for method, url in team_urls(team, membership.pk, invitation.pk):
        response = getattr(client, method)(url, {"role": "viewer"})
        assert response.status_code == 404, url
    assert Membership.objects.get(pk=membership.pk).role == Role.OWNER
    assert Invitation.objects.get(pk=invitation.pk).status == "pending"


def test_ids_from_another_team_in_my_teams_url_are_404(client):
    mine, theirs = TeamFactory(), TeamFactory()
    me = member_of(mine, Role.OWNER)
    their_owner = member_of(theirs, Role.OWNER)
    their_membership = Membership.objects.get(team=theirs, user=their_owner)
    their_invite = services.invitation_create(team=theirs, actor=their_owner, role="member")
    client.force_login(me)
    assert (
        client.post(
            reverse("teams:member_role", args=[mine.slug, their_membership.pk]), {"role": "viewer"}
        ).status_code
        == 404
    )
    assert (
        client.post(
            reverse("teams:member_remove", args=[mine.slug, their_membership.pk])
        ).status_code
        == 404
    )
    assert (
        client.post(
            reverse("teams:invitation_revoke", args=[mine.slug, their_invite.pk])
        ).status_code
        == 404
    )
    assert Membership.objects.get(pk=their_membership.pk).role == Role.OWNER


def test_anonymous_is_sent_to_login(client):
    team = TeamFactory()
    response = client.get(reverse("teams:settings", args=[team.slug]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login"))


def test_viewer_trying_an_owners_action_gets_403(client):
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    viewer = member_of(team, Role.VIEWER)
    client.force_login(viewer)
    owner_membership = Membership.objects.get(team=team, user=owner)
    response = client.post(
        reverse("teams:member_role", args=[team.slug, owner_membership.pk]), {"role": "viewer"}
    )
    assert response.status_code == 403
    assert "does not allow" in response.content.decode()
    assert (
        client.post(reverse("teams:invite", args=[team.slug]), {"role": "owner"}).status_code == 403
    )
    assert Membership.objects.get(pk=owner_membership.pk).role == Role.OWNER


def test_settings_page_shows_members_and_invitation_links_to_admins(client):
    team = TeamFactory()
    owner = member_of(team, Role.OWNER, email="owner@example.com")
    client.force_login(owner)
    response = client.post(
        reverse("teams:invite", args=[team.slug]), {"role": "member", "email": ""}
    )
    assert response.status_code == 302
    page = client.get(reverse("teams:settings", args=[team.slug])).content.decode()
    assert "owner@example.com" in page
    link = re.search(r'value="(http://testserver/invitations/[^"]+/)"', page)
    assert link, "the pending invitation's link is shown"


def test_viewer_sees_no_invitation_links(client):
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    services.invitation_create(team=team, actor=owner, role="member")
    client.force_login(member_of(team, Role.VIEWER))
    page = client.get(reverse("teams:settings", args=[team.slug])).content.decode()
    assert "/invitations/" not in page
    assert "Invite someone" not in page


def test_invalid_role_in_form_is_a_message_not_a_crash(client):
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    member = member_of(team, Role.MEMBER)
    client.force_login(owner)
    membership = Membership.objects.get(team=team, user=member)
    response = client.post(
        reverse("teams:member_role", args=[team.slug, membership.pk]),
        {"role": "emperor"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Pick one of the listed roles" in response.content.decode()


def test_last_owner_leaving_gets_a_message(client):
    team = TeamFactory()
    owner = member_of(team, Role.OWNER)
    client.force_login(owner)
    response = client.post(reverse("teams:leave", args=[team.slug]), follow=True)
    assert "last owner" in response.content.decode()
    assert Membership.objects.filter(team=team, user=owner).exists()


def test_accept_invitation_page(client):
    team = TeamFactory(name="Acme")
    invitation = services.invitation_create(
        team=team, actor=member_of(team, Role.OWNER), role="viewer"
    )
    url = services.invitation_path(invitation)
    anonymous = client.get(url)
    assert anonymous.status_code == 200
    assert "Join Acme" in anonymous.content.decode()
    joiner = UserFactory()
    client.force_login(joiner)
    response = client.post(url)
    assert response.url == reverse("dashboard:team_home", args=[team.slug])
    assert Membership.objects.get(team=team, user=joiner).role == Role.VIEWER
    reused = client.get(url)
    assert reused.status_code == 410
    assert "already been used" in reused.content.decode()


def test_forged_invitation_link_is_404(client):
    response = client.get("/invitations/not-a-real-token/")
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_team_switcher_lists_only_my_teams(client):
    mine, also_mine, not_mine = (
        TeamFactory(name="Alpha"),
        TeamFactory(name="Beta"),
        TeamFactory(name="Gamma"),
    )
    user = member_of(mine, Role.MEMBER)
    Membership.objects.create(team=also_mine, user=user, role=Role.VIEWER)
    member_of(not_mine, Role.OWNER)
    client.force_login(user)
    page = client.get(reverse("dashboard:team_home", args=[mine.slug])).content.decode()
    assert "Alpha" in page and "Beta" in page and "Gamma" not in page
    client.get(reverse("dashboard:team_home", args=[also_mine.slug]))
    assert client.get(reverse("dashboard:home")).url == reverse(
        "dashboard:team_home", args=[also_mine.slug]
    )


# --- event content ------------------------------------------------------------


def test_admin_turns_event_content_on_and_off_from_the_settings_page(client):
    team = TeamFactory()
    admin = member_of(team, Role.ADMIN)
    client.force_login(admin)
    url = reverse("teams:events_content", args=[team.slug])
    page = client.get(reverse("teams:settings", args=[team.slug])).content.decode()
    assert f'action="{url}"' in page
    assert "Kafka events topic" in page, "the page says where the content goes"
    assert 'name="events_include_content"' in page

    response = client.post(url, {"events_include_content": "on"}, follow=True)
    assert response.status_code == 200
    assert "Events now include prompts and answers." in response.content.decode()
    assert Team.objects.get(pk=team.pk).events_include_content is True

    response = client.post(url, {}, follow=True)  # the box unchecked
    assert "Events no longer include prompts and answers." in response.content.decode()
    assert Team.objects.get(pk=team.pk).events_include_content is False


def test_owner_may_change_event_content(client):
    team = TeamFactory()
    client.force_login(member_of(team, Role.OWNER))
    client.post(reverse("teams:events_content", args=[team.slug]), {"events_include_content": "on"})
    assert Team.objects.get(pk=team.pk).events_include_content is True


@pytest.mark.parametrize("role", [Role.MEMBER, Role.VIEWER])
def test_members_and_viewers_see_event_content_but_cannot_change_it(client, role):
    team = TeamFactory(events_include_content=True)
    client.force_login(member_of(team, role))
    url = reverse("teams:events_content", args=[team.slug])
    page = client.get(reverse("teams:settings", args=[team.slug])).content.decode()
    assert 'data-testid="events-content-state">prompts and answers<' in page
    assert f'action="{url}"' not in page
    assert "Owners and admins can change this." in page

    response = client.post(url, {})
    assert response.status_code == 403
    assert Team.objects.get(pk=team.pk).events_include_content is True


def test_another_teams_admin_cannot_change_event_content(client):
    team = TeamFactory()
    member_of(team, Role.OWNER)
    client.force_login(member_of(TeamFactory(), Role.ADMIN))
    response = client.post(
        reverse("teams:events_content", args=[team.slug]), {"events_include_content": "on"}
    )
    assert response.status_code == 404
    assert Team.objects.get(pk=team.pk).events_include_content is False


def test_event_content_needs_a_post(client):
    team = TeamFactory()
    client.force_login(member_of(team, Role.ADMIN))
    assert client.get(reverse("teams:events_content", args=[team.slug])).status_code == 405
