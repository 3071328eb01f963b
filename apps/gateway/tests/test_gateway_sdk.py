"""The gateway through the official ``openai`` SDK, over real HTTP to a live server,
with a real Celery worker calling the simulator. Nothing here is mocked."""

import time

import httpx2
import openai
import pytest

from apps.assistants.tests.factories import AssistantFactory
from apps.inference.models import ChatRun
from apps.inference.tests.factories import simulator_backend, team_with_admin
from apps.keys import services as keys
from apps.keys.tests.factories import make_key

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
HELLO = [{"role": "user", "content": "Hello there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def sdk(server, raw_key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=raw_key, base_url=f"{server.url}/v1", max_retries=0, timeout=30)


@pytest.fixture
def setup(simulator):
    team, admin = team_with_admin()
    backend = simulator_backend(team, admin, simulator)
    bot = AssistantFactory(
        team=team,
        backend=backend,
        model="sim-small",
        slug="helper",
        name="Helper",
        instructions="You are terse.",
        temperature=0.3,
    )
    return team, admin, backend, bot


def test_chat_non_streamed_and_streamed_through_an_assistant(
    asgi_live_server, celery_worker, setup, simulator
):
    team, admin, _backend, bot = setup
    key, raw = make_key(team, admin, scopes=["chat"])
    client = sdk(asgi_live_server, raw)

    answer = client.chat.completions.create(model="helper", messages=HELLO, user="end-user-7")
    assert answer.object == "chat.completion"
    assert answer.model == "helper"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    assert answer.usage.prompt_tokens_details.cached_tokens == 0
    run = ChatRun.objects.get(pk=int(answer.id.removeprefix("chatcmpl-")))
    assert run.assistant_id == bot.pk and run.api_key_id == key.pk
    assert run.end_user == "end-user-7"
    assert run.messages[0] == {"role": "system", "content": "You are terse."}
    assert run.parameters["temperature"] == 0.3
    assert run.output == answer.choices[0].message.content

    simulator.config.cached_prompt_tokens = 3
    chunks = list(
        client.chat.completions.create(
            model="helper",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
            temperature=0.9,
        )
    )
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 3  # the backend's cache
    assert all(c.usage is None for c in chunks[:-1])
    streamed_run = ChatRun.objects.get(pk=int(chunks[0].id.removeprefix("chatcmpl-")))
    assert text == streamed_run.output and len(chunks) > 4
    assert streamed_run.parameters["temperature"] == 0.9  # the caller's parameter wins


def test_raw_model_tools_and_sse_framing(asgi_live_server, celery_worker, setup):
    team, admin, _backend, _bot = setup
    _key, raw = make_key(team, admin, scopes=["chat"])
    client = sdk(asgi_live_server, raw)

    answer = client.chat.completions.create(
        model="sim-large",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    call = answer.choices[0].message.tool_calls[0]
    assert answer.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and "city" in call.function.arguments

    # the raw bytes: OpenAI's framing, one JSON object per data line, then [DONE]
    with httpx2.stream(
        "POST",
        f"{asgi_live_server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {raw}"},
        json={"model": "sim-small", "messages": HELLO, "stream": True},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"]
        body = "".join(response.iter_text())
    events = [e for e in body.split("\n\n") if e and not e.startswith(":")]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert '"usage"' not in body  # only with stream_options.include_usage


def test_models_lists_what_the_key_may_use(asgi_live_server, setup):
    team, admin, _backend, bot = setup
    AssistantFactory(team=team, backend=bot.backend, model="sim-large", slug="other")
    _key, any_key = make_key(team, admin, scopes=["chat"])
    _key, bound = make_key(team, admin, scopes=["chat"], assistant=bot)
    _key, listed = make_key(team, admin, scopes=["chat"], allowed_models=["sim-small", "other"])

    ids = {m.id for m in sdk(asgi_live_server, any_key).models.list()}
    assert ids == {"helper", "other", "sim-small", "sim-large"}
    assert [m.id for m in sdk(asgi_live_server, bound).models.list()] == ["helper"]
    # "helper" runs on sim-small, which is listed
    assert {m.id for m in sdk(asgi_live_server, listed).models.list()} == {
        "helper",
        "other",
        "sim-small",
    }
    model = sdk(asgi_live_server, any_key).models.retrieve("helper")
    assert model.id == "helper" and model.owned_by == team.slug
    with pytest.raises(openai.NotFoundError):
        sdk(asgi_live_server, bound).models.retrieve("sim-large")


def test_each_failure_raises_the_sdk_error_class(asgi_live_server, setup):
    team, admin, _backend, bot = setup
    other_team, other_admin = team_with_admin()
    _key, good = make_key(team, admin, scopes=["chat"])
    _key, read_only = make_key(team, admin, scopes=["read"])
    _key, bound = make_key(team, admin, scopes=["chat"], assistant=bot)
    _key, other_team_key = make_key(other_team, other_admin, scopes=["chat"])
    url = asgi_live_server.url

    for raw in ("", "sk-not-ours", good[:-2] + "xx"):
        with pytest.raises(openai.AuthenticationError) as caught:
            sdk(asgi_live_server, raw or "x").chat.completions.create(
                model="helper", messages=HELLO
            )
        assert caught.value.body["code"] in {"invalid_api_key", "missing_api_key"}
        assert caught.value.response.headers["x-request-id"]
    with pytest.raises(openai.PermissionDeniedError):
        sdk(asgi_live_server, read_only).chat.completions.create(model="helper", messages=HELLO)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        sdk(asgi_live_server, bound).chat.completions.create(model="sim-small", messages=HELLO)
    assert "bound" in caught.value.message
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(asgi_live_server, good).chat.completions.create(model="gpt-17", messages=HELLO)
    assert caught.value.code == "model_not_found"
    # another team's assistant does not exist for this key
    with pytest.raises(openai.NotFoundError):
        sdk(asgi_live_server, other_team_key).chat.completions.create(
            model="helper", messages=HELLO
        )

    client = sdk(asgi_live_server, good)
    bad_requests = [
        {"messages": []},
        {"messages": [{"role": "wizard", "content": "hi"}]},
        {"messages": [{"role": "user"}]},
        {"messages": "hello"},
        {"messages": HELLO, "n": 2},
        {"messages": HELLO, "temperature": 5},
        {"messages": HELLO, "max_tokens": "many"},
        {"messages": HELLO, "stream": "yes"},
        {"messages": HELLO, "stream_options": {"include_usage": True}},
        {"messages": HELLO, "extra_body": {"frobnicate": True}},
    ]
    for case in bad_requests:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="helper", **case)
        assert caught.value.body["message"], case
    assert ChatRun.objects.count() == 0  # nothing half-written

    malformed = httpx2.post(
        f"{url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {good}", "Content-Type": "application/json"},
        content=b'{"model": "helper", "messages": [',
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["type"] == "invalid_request_error"
    huge = httpx2.post(
        f"{url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {good}"},
        json={"model": "helper", "messages": [{"role": "user", "content": "x" * 2_000_000}]},
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "request_too_large"
    assert httpx2.get(f"{url}/v1/embeddings").status_code == 404


def test_rate_limit_gives_429_with_retry_after(asgi_live_server, setup):
    team, admin, _backend, _bot = setup
    _key, raw = make_key(team, admin, scopes=["chat"], requests_per_minute=2)
    client = sdk(asgi_live_server, raw)
    for _ in range(2):  # counted, though the model is unknown
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="nope", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="nope", messages=HELLO)
    retry_after = int(caught.value.response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert caught.value.code == "rate_limit_exceeded"


def test_backend_failure_is_a_5xx(asgi_live_server, celery_worker, setup, simulator):
    team, admin, backend, _bot = setup
    backend.max_retries = 0
    backend.save()
    _key, raw = make_key(team, admin, scopes=["chat"])
    simulator.inject("500", "500", model="sim-small")
    with pytest.raises(openai.InternalServerError) as caught:
        sdk(asgi_live_server, raw).chat.completions.create(model="sim-small", messages=HELLO)
    assert caught.value.status_code == 502
    simulator.inject("500", model="sim-small")
    with pytest.raises(openai.InternalServerError):
        sdk(asgi_live_server, raw).chat.completions.create(
            model="sim-small", messages=HELLO, stream=True
        )


def test_revocation_and_rotation_grace_follow_the_clock(asgi_live_server, setup):
    team, admin, _backend, _bot = setup
    key, raw = make_key(team, admin, scopes=["read"])
    models = sdk(asgi_live_server, raw).models

    assert models.list().data  # the key is now in the lookup cache
    # a revocation written by some other process, which can't clear this cache entry
    key.__class__.objects.filter(pk=key.pk).update(revoked_at=key.created_at)
    time.sleep(1.2)
    with pytest.raises(openai.AuthenticationError) as caught:
        models.list()
    assert "revoked" in caught.value.message

    key2, old = make_key(team, admin, scopes=["read"])
    _rotated, new = keys.key_rotate(key=key2, actor=admin, grace_seconds=2)
    assert sdk(asgi_live_server, old).models.list().data
    assert sdk(asgi_live_server, new).models.list().data
    time.sleep(2.2)
    with pytest.raises(openai.AuthenticationError):
        sdk(asgi_live_server, old).models.list()
    assert sdk(asgi_live_server, new).models.list().data

    key3, expiring = make_key(team, admin, scopes=["read"])
    key3.__class__.objects.filter(pk=key3.pk).update(expires_at=key3.created_at)
    time.sleep(1.2)
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk(asgi_live_server, expiring).models.list()
    assert "expired" in caught.value.message


def test_a_caller_that_hangs_up_cancels_its_run(asgi_live_server, celery_worker, setup, simulator):
    team, admin, _backend, _bot = setup
    simulator.config.tokens_per_second = 8
    simulator.config.default_tokens = 80
    _key, raw = make_key(team, admin, scopes=["chat"])
    stream = sdk(asgi_live_server, raw).chat.completions.create(
        model="helper", messages=HELLO, stream=True
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()
    run = ChatRun.objects.get(pk=int(chunk.id.removeprefix("chatcmpl-")))
    deadline = time.monotonic() + 15
    while not run.is_finished and time.monotonic() < deadline:
        time.sleep(0.1)
        run.refresh_from_db()
    assert run.status == "cancelled"
    assert run.cancel_requested_at is not None
