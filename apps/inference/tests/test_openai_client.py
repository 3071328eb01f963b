"""What the OpenAI-kind client puts on the wire and how it reads failures, against a
real HTTP server that records each request: the URL and headers the SDK builds
(Azure's deployment URL, api-version and ``api-key``; a compatible server's bearer
key), the body as the run gives it, and every failure mapped as the SDK's
exceptions are (status with Retry-After, refused connection, timeout)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.inference.backends import BackendError
from apps.inference.backends.openai_kinds import OpenAIChatClient
from apps.inference.models import BackendKind
from apps.inference.services import backend_create
from apps.inference.tests.factories import team_with_admin

pytestmark = pytest.mark.django_db
HELLO = [{"role": "user", "content": "Hello"}]
ANSWER = {
    "id": "c1",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


class Recorder(ThreadingHTTPServer):
    """Answers each POST with ``self.reply`` (status, headers, body) and keeps the request."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.reply = (200, {"Content-Type": "application/json"}, json.dumps(ANSWER).encode())
        self.delay = 0.0
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        self.server.requests.append(
            {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        )
        if self.server.delay:
            threading.Event().wait(self.server.delay)
        status, headers, payload = self.server.reply
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _backend(kind, url, **fields):
    team, admin = team_with_admin()
    if kind == BackendKind.AZURE_OPENAI:
        fields = {"azure_endpoint": url, "api_version": "2024-10-21", **fields}
    else:
        fields = {"base_url": f"{url}/v1", **fields}
    return backend_create(
        team=team, actor=admin, kind=kind, name="B", api_key="the-secret", max_retries=0, **fields
    )


def _ask(client, **params):
    return client.complete_chat(
        model="gpt-x", messages=HELLO, params=params, should_stop=lambda: False
    )


def test_a_compatible_server_gets_the_bearer_key_and_the_body_as_given(recorder):
    client = OpenAIChatClient(_backend(BackendKind.OPENAI_COMPATIBLE, recorder.url))
    result = _ask(client, temperature=0.5, max_tokens=7)
    assert (result.text, result.prompt_tokens, result.completion_tokens) == ("Hi!", 3, 2)
    _ask(client)  # the prepared request is reused, not changed by the first call
    first, second = recorder.requests
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["authorization"] == "Bearer the-secret"
    assert first["headers"]["content-type"] == "application/json"
    assert first["body"] == {
        "model": "gpt-x",
        "messages": HELLO,
        "temperature": 0.5,
        "max_tokens": 7,
    }
    assert second["body"] == {"model": "gpt-x", "messages": HELLO}


@pytest.mark.parametrize(
    ("deployment", "path"),
    [
        ("prod", "/openai/deployments/prod/chat/completions?api-version=2024-10-21"),
        ("", "/openai/deployments/gpt-x/chat/completions?api-version=2024-10-21"),
    ],
)
def test_azure_gets_its_deployment_url_api_version_and_api_key(recorder, deployment, path):
    backend = _backend(BackendKind.AZURE_OPENAI, recorder.url, azure_deployment=deployment)
    assert _ask(OpenAIChatClient(backend)).text == "Hi!"
    (request,) = recorder.requests
    assert request["path"] == path
    assert request["headers"]["api-key"] == "the-secret"
    assert "authorization" not in request["headers"]


def test_a_streamed_call_is_read_from_the_same_prepared_request(recorder):
    chunks = [
        {"choices": [{"index": 0, "delta": {"content": "Hi"}}]},
        {"choices": [{"index": 0, "delta": {"content": "!"}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
    ]
    events = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    recorder.reply = (200, {"Content-Type": "text/event-stream"}, events.encode())
    client = OpenAIChatClient(_backend(BackendKind.OPENAI_COMPATIBLE, recorder.url))
    deltas: list[str] = []
    result = client.stream_chat(
        model="gpt-x", messages=HELLO, params={}, on_delta=deltas.append, should_stop=lambda: False
    )
    assert (deltas, result.text, result.completion_tokens) == (["Hi", "!"], "Hi!", 2)
    body = recorder.requests[0]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_a_status_error_is_read_as_the_sdks_with_retry_after(recorder):
    error = {"error": {"message": "Slow down", "type": "rate_limit"}}
    recorder.reply = (
        429,
        {"Content-Type": "application/json", "Retry-After": "7"},
        json.dumps(error).encode(),
    )
    client = OpenAIChatClient(_backend(BackendKind.OPENAI_COMPATIBLE, recorder.url))
    with pytest.raises(BackendError) as raised:
        _ask(client)
    assert raised.value.code == "rate_limited" and raised.value.retryable
    assert raised.value.retry_after == 7 and "Slow down" in raised.value.message
    recorder.reply = (404, {"Content-Type": "application/json"}, b'{"error": {"message": "no"}}')
    with pytest.raises(BackendError) as raised:
        _ask(client)
    assert raised.value.code == "model_not_found" and not raised.value.retryable


def test_a_refused_connection_and_a_timeout_are_retryable_with_their_codes(recorder):
    refused = _backend(BackendKind.OPENAI_COMPATIBLE, "http://127.0.0.1:9")
    with pytest.raises(BackendError) as raised:
        _ask(OpenAIChatClient(refused))
    assert raised.value.code == "connection_error" and raised.value.retryable

    recorder.delay = 1.5
    slow = _backend(BackendKind.OPENAI_COMPATIBLE, recorder.url, timeout_seconds=1)
    with pytest.raises(BackendError) as raised:
        _ask(OpenAIChatClient(slow))
    assert raised.value.code == "timeout" and raised.value.retryable
