"""The gateway on the embedded default (``make run``: SQLite, tasks in the web
process, no Redis or Kafka), called with the official ``openai`` SDK the way a
newcomer calls it first: raw models, unknown ones, assistants, streams, several
calls at once, and a quota set after the team already spent some tokens."""

import json
import sqlite3
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

HELLO = [{"role": "user", "content": "Hello there"}]


def sdk(portal, key, **options):
    options.setdefault("max_retries", 0)
    return openai.OpenAI(base_url=f"{portal.url}/v1", api_key=key, timeout=30, **options)


def rest(portal, key: str, method: str, path: str, body=None) -> tuple[int, dict]:
    """The REST API as a script calls it: status and JSON body."""
    request = urllib.request.Request(  # noqa: S310 - the test's own server
        f"{portal.url}/api/v1{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def runs_by_status(portal) -> dict[str, int]:
    with sqlite3.connect(portal.env["SQLITE_PATH"]) as db:
        rows = db.execute("SELECT status, COUNT(*) FROM inference_chatrun GROUP BY status")
        return dict(rows.fetchall())


def test_raw_models_unknown_models_and_assistants_answer_on_sqlite(embedded_portal):
    client = sdk(embedded_portal, embedded_portal.api_key("chat", "read"))
    listed = {m.id for m in client.models.list()}
    assert {"local-echo", "helpdesk"} <= listed

    answer = client.chat.completions.create(model="local-echo", messages=HELLO)
    assert answer.choices[0].message.content == "You said: Hello there"
    assert answer.model == "local-echo" and answer.usage.completion_tokens == 4

    chunks = list(client.chat.completions.create(model="local-echo", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "You said: Hello there"
    )

    # The SDK retries 5xx: with its default retries an unknown model must still be one
    # 404 in OpenAI's shape, never three 500s.
    retrying = sdk(embedded_portal, embedded_portal.api_key("chat"), max_retries=2)
    with pytest.raises(openai.NotFoundError) as unknown:
        retrying.chat.completions.create(model="nope", messages=HELLO)
    assert unknown.value.code == "model_not_found" and unknown.value.param == "model"

    assert client.chat.completions.create(model="helpdesk", messages=HELLO).choices
    assert "Internal Server Error" not in embedded_portal.log
    assert "Traceback" not in embedded_portal.log


def test_calls_at_once_all_finish_on_sqlite(embedded_portal):
    """SQLite takes one writer at a time: concurrent runs wait their turn (WAL,
    IMMEDIATE transactions, a busy timeout) and every one of them finishes."""
    client = sdk(embedded_portal, embedded_portal.api_key("chat"))

    def call(i: int) -> str:
        messages = [{"role": "user", "content": f"call {i}"}]
        if i % 2:
            stream = client.chat.completions.create(
                model="local-echo", messages=messages, stream=True
            )
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        return (
            client.chat.completions.create(model="local-echo", messages=messages)
            .choices[0]
            .message.content
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(call, range(16)))
    assert answers == [f"You said: call {i}" for i in range(16)]
    assert runs_by_status(embedded_portal) == {"succeeded": 16}
    assert "database is locked" not in embedded_portal.log


def quota_tokens(portal, admin_key: str) -> tuple[int, int]:
    """(consumed, reserved) of the team's token budget, as the quotas API shows it."""
    status, body = rest(portal, admin_key, "GET", f"/teams/{portal.team_slug}/quotas")
    assert status == 200, body
    (use,) = [u for u in body["items"][0]["usage"] if u["name"] == "token_budget"]
    return int(use["consumed"]), int(use["reserved"])  # decimal strings: costs share the field


def ledger_tokens(portal, admin_key: str) -> int:
    status, body = rest(portal, admin_key, "GET", "/usage")
    assert status == 200, body
    return body["totals"]["total_tokens"]


def test_a_quota_counts_what_was_spent_before_it_and_after_a_restart(embedded_portal):
    """The quota's figure, the 429's and the usage page's are the ledger's: a quota
    set after the team spent some tokens counts them, and a restart (counters in
    the process's memory are gone) still refuses on the ledger's total."""
    portal = embedded_portal
    team = portal.team_slug
    admin_key = portal.api_key("admin", "read", name="admin")
    client = sdk(portal, portal.api_key("chat"))
    for i in range(3):
        client.chat.completions.create(
            model="local-echo", messages=[{"role": "user", "content": f"before {i}"}]
        )
    spent_before = ledger_tokens(portal, admin_key)
    assert spent_before > 0

    status, created = rest(
        portal,
        admin_key,
        "POST",
        f"/teams/{team}/quotas",
        {"token_budget": spent_before + 60, "period": "day"},
    )
    assert status == 201, created
    assert quota_tokens(portal, admin_key) == (spent_before, 0)

    refused = None
    for i in range(20):
        try:
            client.chat.completions.create(
                model="local-echo",
                messages=[{"role": "user", "content": f"after {i}"}],
                max_tokens=5,
            )
        except openai.RateLimitError as error:
            refused = error.body
            break
        assert quota_tokens(portal, admin_key) == (ledger_tokens(portal, admin_key), 0)
    assert refused is not None, "the budget never refused"
    spent = ledger_tokens(portal, admin_key)
    assert refused["limit"]["current"] == spent == quota_tokens(portal, admin_key)[0]
    assert refused["type"] == "insufficient_quota" and "resets at 00:00" in refused["message"]

    portal.stop()
    portal.start()
    assert quota_tokens(portal, admin_key) == (spent, 0)
    with pytest.raises(openai.RateLimitError) as again:
        client.chat.completions.create(
            model="local-echo", messages=[{"role": "user", "content": "again"}], max_tokens=5
        )
    assert again.value.body["limit"]["current"] == spent
