"""The playground as a newcomer meets it, in a real browser with a real worker and the
simulator: keyboard sending, a Stop button that looks disabled when it is, missing
prompt variables named before anything is sent, and the cost the usage ledger billed
shown beside the tokens of every answer and compare column."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from apps.accounts.tests.factories import PASSWORD
from apps.assistants.tests.factories import greeter_on_two_versions
from apps.conversations.models import Conversation, Message
from apps.inference.models import ChatRun
from apps.inference.tests.factories import simulator_backend, team_with_admin
from apps.usage.models import UsageRecord
from apps.usage.tests.factories import price

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
ANSWER_TIMEOUT = 20_000


def ledger_cost(run) -> str:
    """The run's cost as the usage page writes it: its attempts' ledger rows, summed."""
    total = sum((r.cost for r in UsageRecord.objects.filter(run=run)), Decimal(0))
    return f"${format(total.normalize(), 'f')}"


@pytest.fixture
def greeter(page, celery_worker, simulator):
    """Signed in on the playground of an assistant whose production prompt (v2) uses
    {{name}} and {{tone}}; v1 uses {{name}}. The model is priced."""
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    price(model="sim-small", inp="1", out="2")
    assistant, _prompt = greeter_on_two_versions(team, admin, backend, "sim-small")
    page.goto("/accounts/login/")
    page.get_by_label("E-mail address").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))
    url = f"/t/{team.slug}/assistants/{assistant.slug}/"
    open_playground(page, url)
    return {"team": team, "assistant": assistant, "url": url, "simulator": simulator}


def open_playground(page, url):
    page.goto(url)
    page.wait_for_function("() => document.getElementById('playground').dataset.connected")


def answers(page):
    return page.locator("#chat .bubble.assistant")


def wait_answer(page, count: int, status: str = "succeeded"):
    expect(answers(page)).to_have_count(count, timeout=ANSWER_TIMEOUT)
    answer = answers(page).nth(count - 1)
    expect(answer).to_have_attribute("data-status", status, timeout=ANSWER_TIMEOUT)
    return answer


def fill_variables(page, **values):
    for name, value in values.items():
        page.locator(f"[data-var={name}]").fill(value)


def style(locator, prop: str) -> str:
    return locator.evaluate(f"(el) => getComputedStyle(el).{prop}")


def test_keyboard_sends_and_each_answer_shows_its_ledger_cost(page, greeter):
    fill_variables(page, name="Ada", tone="warmly")
    expect(page.locator("#message-hint")).to_contain_text("Ctrl+Enter")
    box = page.get_by_label("Message", exact=True)
    box.click()
    box.press_sequentially("line one")
    box.press("Enter")  # a new line, not a send
    box.press_sequentially("line two")
    expect(box).to_have_value("line one\nline two")
    box.press("Control+Enter")
    first = wait_answer(page, 1)
    run = ChatRun.objects.get()  # the Enter before sent nothing
    assert run.messages[-1] == {"role": "user", "content": "line one\nline two"}
    assert run.messages[0]["content"] == "Greet Ada, warmly."
    expect(box).to_have_value("")
    expect(first.locator(".meta")).to_contain_text(f"{run.total_tokens} tokens")
    expect(first.locator(".cost")).to_have_text(ledger_cost(run))
    assert ledger_cost(run) != "$0"

    box.fill("Enter in a one-line box sends")
    page.locator("[data-var=tone]").press("Enter")
    second = wait_answer(page, 2)
    box.fill("Cmd+Enter sends too")
    box.press("Meta+Enter")
    third = wait_answer(page, 3)
    runs = list(ChatRun.objects.order_by("created_at"))
    assert [r.messages[-1]["content"] for r in runs[1:]] == [
        "Enter in a one-line box sends",
        "Cmd+Enter sends too",
    ]
    expect(second.locator(".cost")).to_have_text(ledger_cost(runs[1]))
    expect(third.locator(".cost")).to_have_text(ledger_cost(runs[2]))

    # the conversation read back from the server shows the same costs
    conversation = Conversation.objects.get()
    open_playground(page, f"{greeter['url']}?conversation={conversation.pk}")
    expect(answers(page)).to_have_count(3)
    for index, chat_run in enumerate(runs):
        expect(answers(page).nth(index).locator(".cost")).to_have_text(ledger_cost(chat_run))


def test_stop_looks_disabled_when_idle_and_nothing_sends_while_a_run_is_going(page, greeter):
    stop, send = page.locator("#stop"), page.locator("#send")
    expect(stop).to_be_disabled()
    idle_background = style(stop, "backgroundColor")
    assert style(stop, "cursor") == "not-allowed"
    assert idle_background != style(send, "backgroundColor")

    greeter["simulator"].config.tokens_per_second = 2  # a long answer, stopped below
    fill_variables(page, name="Ada", tone="warmly")
    box = page.get_by_label("Message", exact=True)
    box.fill("Tell me a long story")
    box.press("Control+Enter")
    expect(stop).to_be_enabled(timeout=ANSWER_TIMEOUT)
    expect(send).to_be_disabled()
    assert style(stop, "cursor") == "pointer"
    assert style(stop, "backgroundColor") == "rgb(180, 35, 24)"  # --danger
    assert style(stop, "backgroundColor") != idle_background

    box.fill("Not while the answer is running")
    box.press("Control+Enter")
    stop.click()
    wait_answer(page, 1, status="cancelled")
    expect(stop).to_be_disabled()
    assert style(stop, "cursor") == "not-allowed"
    assert ChatRun.objects.count() == 1
    expect(box).to_have_value("Not while the answer is running")
    expect(page.locator("#chat .bubble.user")).to_have_count(1)


def test_missing_variables_are_named_and_nothing_is_sent(page, greeter):
    box = page.get_by_label("Message", exact=True)
    box.fill("Hi")
    page.get_by_role("button", name="Send").click()
    error = page.locator("#pg-error")
    expect(error).to_have_text("Missing variables: name, tone")
    expect(page.locator("[data-var=name]")).to_have_attribute("aria-invalid", "true")
    fill_variables(page, name="Ada")
    box.press("Control+Enter")
    expect(error).to_have_text("Missing variable: tone")
    expect(page.locator("[data-var=name]")).not_to_have_attribute("aria-invalid", "true")
    expect(box).to_have_value("Hi")

    # Compare needs both versions' variables; it is checked before anything is sent too.
    page.locator("#compare-message").fill("Hi")
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#compare-error")).to_have_text("Missing variable: tone")

    # Unsaved instructions are checked by the server, with the API's own words, and the
    # refusal is shown on the page. The socket keeps order, so once this answer is back,
    # anything sent before it would have been handled.
    page.locator("#draft-box summary").click()
    page.get_by_label("Draft instructions").fill("Greet {{name}} from {{city}}.")
    box.press("Control+Enter")
    expect(error).to_have_text("Missing variable: city")
    expect(page.locator("#send")).to_be_enabled()
    assert not ChatRun.objects.exists()
    assert not Message.objects.exists() and not Conversation.objects.exists()
    expect(page.locator("#chat .bubble")).to_have_count(0)


def test_compare_columns_show_tokens_cost_and_a_failure(page, greeter):
    greeter["simulator"].inject("400")  # the first of the two calls is refused
    fill_variables(page, name="Ada", tone="warmly")
    page.locator("#compare-message").fill("Hi")
    page.locator("#compare-message").press("Enter")
    columns = page.locator("#compare > div")
    expect(columns).to_have_count(2)
    for index in range(2):
        expect(columns.nth(index).locator(".bubble")).to_have_attribute(
            "data-status", re.compile("succeeded|failed"), timeout=ANSWER_TIMEOUT
        )
    runs = {r.prompt_version.number: r for r in ChatRun.objects.select_related("prompt_version")}
    assert sorted(r.status for r in runs.values()) == ["failed", "succeeded"]
    for number, run in runs.items():
        column = page.get_by_test_id(f"compare-v{number}")
        expect(column.locator(".cost")).to_have_text(ledger_cost(run))
        if run.status == "failed":
            assert run.error
            expect(column.get_by_test_id("run-error")).to_have_text(run.error)
        else:
            expect(column.locator(".meta")).to_contain_text(f"{run.total_tokens} tokens")
            expect(column.get_by_test_id("run-error")).to_have_count(0)
    expect(page.get_by_role("button", name="Compare")).to_be_enabled()
