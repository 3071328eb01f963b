"""``/favicon.ico`` answers (browsers and tools ask for it whatever the page links),
and every page links the icon."""

import pytest
from django.templatetags.static import static

from apps.teams.models import Role
from apps.teams.tests.factories import TeamFactory, member_of

pytestmark = pytest.mark.django_db


def test_favicon_ico_leads_to_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == static("favicon.svg")
    assert "max-age=86400" in response["Cache-Control"]
    icon = client.get(response["Location"])
    assert icon.status_code == 200
    assert icon["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in b"".join(icon.streaming_content if icon.streaming else [icon.content])


def test_pages_link_the_icon(client):
    link = f'<link rel="icon" href="{static("favicon.svg")}" type="image/svg+xml">'
    assert link in client.get("/accounts/login/").content.decode()
    team = TeamFactory()
    client.force_login(member_of(team, Role.VIEWER))
    assert link in client.get(f"/t/{team.slug}/").content.decode()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_browser_gets_the_icon(page, asgi_live_server):
    response = page.goto("/favicon.ico")
    assert response.status == 200 and response.url.endswith("/favicon.svg")
    assert response.headers["content-type"].startswith("image/svg+xml")
    page.goto("/accounts/login/")
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(href).status == 200
