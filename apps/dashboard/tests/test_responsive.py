"""Every page at phone width (390 px, an iPhone 12-15): wide tables scroll inside
their card, the page itself never scrolls sideways."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from apps.dashboard.tests.helpers import set_up_team, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
# What sticks out past the viewport, for the failure message.
OVERFLOW = """() => {
  const width = window.innerWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.right > width + 0.5 && box.width > 0 && !el.closest("[data-scrolls]")) {
      let parent = el.parentElement, clipped = false;
      while (parent && parent !== document.body) {
        const style = getComputedStyle(parent);
        if (style.overflowX !== "visible") { clipped = true; break; }
        parent = parent.parentElement;
      }
      if (!clipped) wide.push(el.tagName.toLowerCase() + (el.className ? "." + String(el.className).replace(/ /g, ".") : "") + " right=" + Math.round(box.right));
    }
  }
  return {scroll: document.documentElement.scrollWidth, inner: width, wide: wide.slice(0, 8)};
}"""


def _pages(setup) -> dict[str, str]:
    slug = setup["team"].slug
    a, p = setup["assistant"].slug, setup["prompt"].slug
    return {
        "dashboard": reverse("dashboard:team_home", args=[slug]),
        "assistants": reverse("assistants:list", args=[slug]),
        "playground": reverse("assistants:playground", args=[slug, a]),
        "assistant settings": reverse("assistants:settings", args=[slug, a]),
        "conversations": reverse("conversations:list", args=[slug]),
        "prompts": reverse("prompts:list", args=[slug]),
        "prompt": reverse("prompts:detail", args=[slug, p]),
        "prompt diff": reverse("prompts:diff", args=[slug, p]) + "?from=1&to=6",
        "backends": reverse("inference:backends", args=[slug]),
        "backend": reverse("inference:backend", args=[slug, setup["backend"].pk]),
        "run": reverse("inference:run", args=[slug, setup["run"].pk]),
        "keys": reverse("keys:list", args=[slug]),
        "quotas": reverse("quotas:list", args=[slug]),
        "usage": reverse("usage:dashboard", args=[slug]),
        "prices": reverse("usage:prices", args=[slug]),
        "events": reverse("events:page", args=[slug]),
        "team settings": reverse("teams:settings", args=[slug]),
        "new team": reverse("teams:create"),
        "password": reverse("accounts:password_change"),
    }


def _measure(page) -> dict:
    page.wait_for_load_state("load")
    return page.evaluate(OVERFLOW)


def test_no_page_scrolls_sideways_at_phone_width(browser, asgi_live_server):
    setup = set_up_team()
    context = browser.new_context(base_url=asgi_live_server.url, viewport=PHONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        failures = {}
        for path in ("/accounts/login/", "/accounts/signup/"):
            page.goto(path)
            result = _measure(page)
            if result["scroll"] > result["inner"]:
                failures[path] = result
        sign_in(page, asgi_live_server.url, setup["owner"])
        pages = _pages(setup)
        for name, path in pages.items():
            response = page.goto(path)
            assert response.status == 200, (name, response.status)
            result = _measure(page)
            if result["scroll"] > result["inner"]:
                failures[name] = result

        # the page that shows a new key and its snippets, reached the way people do
        page.goto(pages["keys"])
        form = page.locator("#create-key form")
        form.get_by_label("Name").fill("phone-key-with-a-long-name")
        form.get_by_role("button", name="Create key").click()
        expect(page.get_by_test_id("snippet-python")).to_be_visible()
        result = _measure(page)
        if result["scroll"] > result["inner"]:
            failures["new key"] = result

        assert not failures, "\n".join(
            f"{name}: {r['scroll']} > {r['inner']} px: {r['wide']}" for name, r in failures.items()
        )
        # the tables are still there, scrolling inside their card
        page.goto(pages["prompt"])
        versions = page.get_by_test_id("versions")
        expect(versions.locator("[data-testid=version-row]")).to_have_count(6)
        box = page.evaluate(
            "() => { const t = document.querySelector('[data-testid=versions]');"
            " const s = t.closest('.table-scroll');"
            " return {table: t.scrollWidth, box: s.clientWidth, overflow: getComputedStyle(s).overflowX}; }"
        )
        assert box["overflow"] == "auto" and box["table"] > box["box"]
    finally:
        context.close()
