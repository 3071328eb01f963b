"""Real Chromium against the real ASGI server (HTTP and WebSockets)."""

import re

import pytest
from playwright.sync_api import expect

from apps.teams import services
from apps.teams.models import Membership, Role, Team
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_up_create_a_team_and_see_the_dashboard(page):
    page.goto("/")
    expect(page).to_have_url("/accounts/login/?next=/")
    page.get_by_role("link", name="Create an account").click()
    # hx-boost swaps the page in place: wait for the new one, or "E-mail" would still
    # match the sign-in form's "E-mail address" field.
    expect(page.get_by_role("heading", name="Create your account")).to_be_visible()
    page.get_by_label("E-mail", exact=True).fill("ada@example.com")
    page.get_by_label("Your name").fill("Ada")
    page.get_by_label("Password", exact=True).fill("analytical-engine-1843")
    page.get_by_label("Password again").fill("analytical-engine-1843")
    page.get_by_role("button", name="Sign up").click()

    expect(page.get_by_role("heading", name="Create a team")).to_be_visible()
    page.get_by_label("Team name").fill("Engine Room")
    page.get_by_role("button", name="Create team").click()

    expect(page.get_by_test_id("dashboard-title")).to_have_text("Engine Room")
    expect(page.get_by_text("Team Engine Room created")).to_be_visible()
    for section in ("Assistants", "Prompts", "API keys", "Usage", "Events", "Team settings"):
        expect(
            page.get_by_role("navigation", name="Sections").get_by_role("link", name=section)
        ).to_be_visible()
    team = Team.objects.get(name="Engine Room")
    assert Membership.objects.get(team=team).role == Role.OWNER


def test_sign_up_with_a_weak_password_shows_why(page):
    page.goto("/accounts/signup/")
    page.get_by_label("E-mail", exact=True).fill("weak@example.com")
    page.get_by_label("Password", exact=True).fill("12345")
    page.get_by_label("Password again").fill("12345")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_text("too short")).to_be_visible()


def sign_in(page, email, password):
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))


def test_owner_sees_a_new_member_join_live(page, browser, asgi_live_server):
    from apps.accounts.tests.factories import PASSWORD, UserFactory

    team = TeamFactory(name="Live Team")
    owner = member_of(team, Role.OWNER, email="owner@example.com")
    invitation = services.invitation_create(team=team, actor=owner, role=Role.MEMBER)
    joiner = UserFactory(email="joiner@example.com", display_name="Jo")

    page.add_init_script(
        "document.addEventListener('htmx:wsOpen', () => { window.wsOpen = true; });"
    )
    sign_in(page, owner.email, PASSWORD)
    page.goto(f"/t/{team.slug}/settings/")
    expect(page.get_by_test_id("invitation-link")).to_have_value(
        f"{asgi_live_server.url}{services.invitation_path(invitation)}"
    )
    page.wait_for_function("() => window.wsOpen === true")

    other = browser.new_context(base_url=asgi_live_server.url).new_page()
    sign_in(other, joiner.email, PASSWORD)
    other.goto(services.invitation_path(invitation))
    other.get_by_role("button", name="Join as joiner@example.com").click()
    expect(other.get_by_test_id("dashboard-title")).to_have_text("Live Team")

    expect(page.locator("#team-notices")).to_contain_text("Jo joined as member.")
    other.context.close()
