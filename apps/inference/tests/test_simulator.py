"""The simulator against the official ``openai`` SDK over real HTTP, plus raw wire checks."""

import dataclasses
import json
import time

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion

from apps.inference.simulator import SimulatorServer
from apps.inference.textgen import reply_pieces
from apps.inference.tokens import estimate_messages_tokens

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Tell me about rivers."},
]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
FORCE_WEATHER = {"type": "function", "function": {"name": "get_weather"}}


@pytest.fixture(scope="module")
def sim():
    with SimulatorServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(sim):
    """Each test starts with no queued faults, zero counts and the default config."""
    saved = dataclasses.replace(sim.config)
    sim.clear()
    yield
    for item in dataclasses.fields(saved):
        setattr(sim.config, item.name, getattr(saved, item.name))


@pytest.fixture
def client(sim):
    return openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0, timeout=10)


def ask(client, **kwargs):
    kwargs.setdefault("model", "sim-small")
    kwargs.setdefault("messages", MESSAGES)
    return client.chat.completions.create(**kwargs)


def stream(client, **kwargs):
    return list(ask(client, stream=True, **kwargs))


def content_of(chunks):
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --- models ---------------------------------------------------------------------------


def test_lists_and_retrieves_models(client):
    models = client.models.list()
    assert [m.id for m in models] == ["sim-small", "sim-large"]
    assert {m.object for m in models} == {"model"}
    assert {m.owned_by for m in models} == {"simulator"}
    assert client.models.retrieve("sim-large").id == "sim-large"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-nope")


# --- completions ----------------------------------------------------------------------


def test_completion_has_openai_shape_and_usage(client):
    result = ask(client)
    assert isinstance(result, ChatCompletion)
    assert result.id.startswith("chatcmpl-")
    assert result.object == "chat.completion"
    assert result.model == "sim-small"
    assert result.system_fingerprint
    assert result.created > 0
    choice = result.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == "".join(reply_pieces(MESSAGES))
    assert choice.finish_reason == "stop"
    usage = result.usage
    assert usage.prompt_tokens == estimate_messages_tokens(MESSAGES)
    assert usage.completion_tokens == 24
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_completion_is_deterministic(client):
    first = ask(client).choices[0].message.content
    assert ask(client, model="sim-large").choices[0].message.content == first
    other = [{"role": "user", "content": "Tell me about mountains."}]
    assert ask(client, messages=other).choices[0].message.content != first


def test_default_tokens_follows_the_live_config(client, sim):
    sim.config.default_tokens = 5
    result = ask(client)
    assert result.usage.completion_tokens == 5
    assert result.choices[0].finish_reason == "stop"


def test_stream_with_usage(client):
    chunks = stream(client, stream_options={"include_usage": True})
    first, *middle, finish, usage = chunks
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({(c.id, c.created, c.model) for c in chunks}) == 1
    assert len(middle) == 24
    assert all(c.choices[0].finish_reason is None for c in [first, *middle])
    assert content_of(chunks) == ask(client).choices[0].message.content
    assert finish.choices[0].finish_reason == "stop"
    assert finish.choices[0].delta.content is None
    assert usage.choices == []
    assert usage.usage.completion_tokens == 24
    assert usage.usage.prompt_tokens == estimate_messages_tokens(MESSAGES)
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_usage_sends_no_usage_chunk(client):
    chunks = stream(client)
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert content_of(chunks) == "".join(reply_pieces(MESSAGES))


def test_max_tokens_cuts_with_finish_reason_length(client):
    full = ask(client).choices[0].message.content
    result = ask(client, max_tokens=5)
    assert result.choices[0].finish_reason == "length"
    assert result.usage.completion_tokens == 5
    assert full.startswith(result.choices[0].message.content)
    chunks = stream(client, max_completion_tokens=3, stream_options={"include_usage": True})
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].usage.completion_tokens == 3
    assert full.startswith(content_of(chunks))
    assert ask(client, max_tokens=500).choices[0].finish_reason == "stop"


def test_forced_tool_choice_returns_a_tool_call(client):
    result = ask(client, tools=[WEATHER_TOOL], tool_choice=FORCE_WEATHER)
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_")
    assert call.type == "function"
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert isinstance(arguments["city"], str)
    assert arguments["unit"] in ("celsius", "fahrenheit")
    again = ask(client, tools=[WEATHER_TOOL], tool_choice=FORCE_WEATHER)
    assert again.choices[0].message.tool_calls[0].function.arguments == call.function.arguments


def test_forced_tool_choice_streams_tool_call_deltas(client):
    expected = ask(client, tools=[WEATHER_TOOL], tool_choice=FORCE_WEATHER)
    chunks = stream(client, tools=[WEATHER_TOOL], tool_choice=FORCE_WEATHER)
    first_call = chunks[0].choices[0].delta.tool_calls[0]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert first_call.index == 0
    assert first_call.id.startswith("call_")
    assert first_call.type == "function"
    assert first_call.function.name == "get_weather"
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert {d.index for d in deltas} == {0}
    arguments = "".join(d.function.arguments or "" for d in deltas)
    assert arguments == expected.choices[0].message.tool_calls[0].function.arguments
    assert len(deltas) > 2
    assert content_of(chunks) == ""
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_choice_naming_an_unknown_tool_is_rejected(client):
    with pytest.raises(openai.BadRequestError) as exc:
        ask(
            client,
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "launch"}},
        )
    assert exc.value.param == "tool_choice"


def test_auto_tool_choice_answers_with_text(client):
    result = ask(client, tools=[WEATHER_TOOL], tool_choice="auto")
    assert result.choices[0].message.content
    assert result.choices[0].message.tool_calls is None


def test_api_key_is_enforced_when_configured(client, sim):
    sim.config.api_key = "sk-sim-secret"
    with pytest.raises(openai.AuthenticationError) as exc:
        ask(client)
    assert exc.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    good = openai.OpenAI(base_url=sim.base_url, api_key="sk-sim-secret", max_retries=0)
    assert ask(good).choices[0].message.content


def test_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as exc:
        ask(client, model="gpt-nope")
    assert exc.value.code == "model_not_found"


def test_latency_and_pacing_delay_the_answer(client, sim):
    sim.config.default_tokens = 4
    sim.config.latency_ms = 150
    sim.config.tokens_per_second = 20
    started = time.monotonic()
    ask(client)
    assert time.monotonic() - started >= 0.3  # 150 ms + 4 tokens at 20/s
    sim.config.latency_ms = 0
    sim.config.ttft_ms = 200
    sim.config.tokens_per_second = 0
    chunks = ask(client, stream=True)
    first = next(chunks)
    started = time.monotonic()
    rest = list(chunks)
    assert time.monotonic() - started >= 0.15
    assert first.choices[0].delta.role == "assistant"
    assert rest[-1].choices[0].finish_reason == "stop"


# --- faults ---------------------------------------------------------------------------


def test_fault_429_is_a_rate_limit_with_retry_after(client, sim):
    sim.inject("429", "429:2.5")
    with pytest.raises(openai.RateLimitError) as exc:
        ask(client)
    assert exc.value.response.headers["retry-after"] == "1"
    assert exc.value.code == "rate_limit_exceeded"
    assert exc.value.type == "rate_limit_error"
    with pytest.raises(openai.RateLimitError) as exc:
        ask(client)
    assert exc.value.response.headers["retry-after"] == "2.5"
    assert ask(client).choices[0].message.content


def test_fault_server_errors(client, sim):
    sim.inject("500", "503", "400")
    with pytest.raises(openai.InternalServerError) as exc:
        ask(client)
    assert exc.value.status_code == 500
    assert exc.value.type == "server_error"
    with pytest.raises(openai.InternalServerError) as exc:
        ask(client, stream=True)
    assert exc.value.status_code == 503
    with pytest.raises(openai.BadRequestError):
        ask(client)


def test_fault_timeout_hangs_past_the_client_timeout(client, sim):
    sim.inject("timeout:5")
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.5).chat.completions.create(
            model="sim-small", messages=MESSAGES
        )
    sim.inject("timeout:0.3")
    started = time.monotonic()
    assert ask(client).choices[0].finish_reason == "stop"
    assert time.monotonic() - started >= 0.25


def test_fault_cut_stream_never_looks_complete(client, sim):
    sim.inject("cut")
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in ask(client, stream=True, stream_options={"include_usage": True}):
            received.append(chunk)
    assert received[0].choices[0].delta.role == "assistant"
    assert 0 < len(received) - 1 < 24
    assert all(c.choices and c.choices[0].finish_reason is None for c in received)
    assert all(c.usage is None for c in received)
    assert "".join(reply_pieces(MESSAGES)).startswith(content_of(received))


def test_fault_cut_non_stream_is_a_connection_error(client, sim):
    sim.inject("cut")
    with pytest.raises(openai.APIConnectionError):
        ask(client)


def test_fault_no_usage(client, sim):
    sim.inject("no_usage", "no_usage")
    chunks = stream(client, stream_options={"include_usage": True})
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert content_of(chunks) == "".join(reply_pieces(MESSAGES))
    result = ask(client)
    assert result.usage is None
    assert result.choices[0].message.content


def test_fault_empty(client, sim):
    sim.inject("empty", "empty")
    chunks = stream(client, stream_options={"include_usage": True})
    assert content_of(chunks) == ""
    assert [c.choices[0].finish_reason for c in chunks] == [None, "stop"]
    result = ask(client)
    assert result.choices[0].message.content == ""
    assert result.usage.completion_tokens == 0


def test_fault_garbage_is_not_taken_for_a_completion(client, sim):
    sim.inject("garbage", "garbage")
    result = ask(client)
    # The SDK hands back non-JSON bodies as text rather than raising: callers must check.
    assert not isinstance(result, ChatCompletion)
    assert "<html>" in result
    raw = client.chat.completions.with_raw_response.create(model="sim-small", messages=MESSAGES)
    assert raw.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw.http_response.text)


def test_faults_are_consumed_in_fifo_order_per_model(client, sim):
    sim.inject("500", "400", model="sim-large")
    sim.inject("429")
    sim.inject("503", model="sim-small")
    with pytest.raises(openai.InternalServerError) as exc:
        ask(client, model="sim-small")
    assert exc.value.status_code == 503
    with pytest.raises(openai.RateLimitError):
        ask(client, model="sim-small")
    assert ask(client, model="sim-small").choices[0].finish_reason == "stop"
    with pytest.raises(openai.InternalServerError) as exc:
        ask(client, model="sim-large")
    assert exc.value.status_code == 500
    with pytest.raises(openai.BadRequestError):
        ask(client, model="sim-large")
    assert ask(client, model="sim-large").choices[0].finish_reason == "stop"


def test_stats_count_chat_requests_including_faulted_ones(client, sim):
    assert sim.stats() == {"requests": {}, "total": 0}
    sim.inject("500")
    with pytest.raises(openai.InternalServerError):
        ask(client)
    ask(client)
    stream(client, model="sim-large")
    client.models.list()
    assert sim.stats() == {"requests": {"sim-small": 2, "sim-large": 1}, "total": 3}
    sim.clear()
    assert sim.stats()["total"] == 0


# --- the wire -------------------------------------------------------------------------


def test_sse_framing_is_exact(sim):
    body = {"model": "sim-small", "messages": MESSAGES, "stream": True, "max_tokens": 3}
    response = httpx2.post(sim.base_url + "/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    text = response.text
    assert text.endswith("\n\ndata: [DONE]\n\n")
    events = text.split("\n\n")
    assert events[-1] == ""
    events = events[:-1]
    assert all(event.startswith("data: ") and "\n" not in event for event in events)
    payloads = [json.loads(event.removeprefix("data: ")) for event in events[:-1]]
    assert len(payloads) == 1 + 3 + 1
    assert "usage" not in payloads[0]
    assert payloads[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
        "refusal": None,
    }
    assert payloads[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "length",
    }


def test_malformed_json_is_a_400_in_openai_error_format(sim):
    response = httpx2.post(
        sim.base_url + "/chat/completions",
        content=b'{"model": "sim-small", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert sim.stats()["total"] == 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MESSAGES}, "model"),
        ({"model": "sim-small"}, "messages"),
        ({"model": "sim-small", "messages": "hi"}, "messages"),
        ({"model": "sim-small", "messages": []}, "messages"),
        (
            {"model": "sim-small", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
        ),
        ({"model": "sim-small", "messages": MESSAGES, "max_tokens": 0}, "max_tokens"),
        ({"model": "sim-small", "messages": MESSAGES, "stream": "yes"}, "stream"),
        (
            {"model": "sim-small", "messages": MESSAGES, "stream_options": {"include_usage": True}},
            "stream_options",
        ),
    ],
)
def test_invalid_requests_name_the_parameter(sim, body, param):
    response = httpx2.post(sim.base_url + "/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_unknown_path_and_wrong_method(sim):
    response = httpx2.get(sim.base_url + "/embeddings")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (GET /v1/embeddings)"
    response = httpx2.get(sim.base_url + "/chat/completions")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_fault_control_rejects_unknown_faults(sim):
    response = httpx2.post(sim.url + "/_sim/faults", json={"faults": ["explode"]})
    assert response.status_code == 400
    assert "explode" in response.json()["error"]["message"]
    sim.inject("cut", model="sim-large")
    sim.inject("429:3")
    response = httpx2.get(sim.url + "/_sim/faults")
    assert response.json() == {"pending": {"sim-large": ["cut"], "*": ["429:3"]}}
