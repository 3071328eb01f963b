"""OpenAI, Azure OpenAI and any OpenAI-compatible server, through the official SDK.

The SDK's own retries are turned off (``max_retries=0``): retry, backoff and
fallback are decided by the run executor so every kind behaves the same.
Clients are cached per backend version so HTTP connections are reused across
runs in a worker process. (The openai 3.x SDK is built on ``httpx2``.)

Chat calls are sent on the SDK client's own HTTP client with the URL and
headers the SDK builds once (``_prepared``) and its exception types, rather
than through its per-call machinery. That reaches three private members of the
SDK (``_build_request``, ``_client``, ``_make_status_error_from_response``);
the version is pinned in pyproject.toml, and the tests send every kind's
requests through a real server (the simulator, and an Azure-shaped URL).
"""

import functools
import itertools
import json
import time

import httpx2 as httpx
import openai
from openai._models import FinalRequestOptions

from apps.core.crypto import decrypt
from apps.inference.backends.base import BackendError, CallResult, Cancelled, OnDelta, ShouldStop
from apps.inference.models import Backend, BackendKind
from apps.inference.validation import PARAMETERS

OPENAI_BASE_URL = "https://api.openai.com/v1"
# Only the parameters a run may carry (validation.PARAMETERS) reach a backend.
PASSTHROUGH_PARAMS = tuple(sorted(PARAMETERS))


@functools.lru_cache(maxsize=256)
def _client(
    backend_id: int,
    version: float,
    kind: str,
    base_url: str,
    azure: tuple,
    key: str,
    timeout: float,
):
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    http_client = httpx.Client(limits=limits, timeout=timeout)
    if kind == BackendKind.AZURE_OPENAI:
        endpoint, deployment, api_version = azure
        return openai.AzureOpenAI(
            api_key=key,
            azure_endpoint=endpoint,
            azure_deployment=deployment or None,
            api_version=api_version,
            max_retries=0,
            timeout=timeout,
            http_client=http_client,
        )
    return openai.OpenAI(
        api_key=key or "not-needed",
        base_url=base_url,
        max_retries=0,
        timeout=timeout,
        http_client=http_client,
    )


_TEMPLATE_SKIPPED = frozenset({"content-length", "idempotency-key"})


def _prepared(client, model: str) -> tuple[str, list[tuple[str, str]]]:
    """The URL and headers the SDK would send ``/chat/completions`` with, built by the
    SDK once per client (and per model on Azure, whose URL names the deployment) and
    reused for every call: its auth, Azure's deployment URLs and api-version, its
    default headers. Building them per call was a quarter of a worker's CPU per run."""
    azure = isinstance(client, openai.AzureOpenAI)
    templates = client.__dict__.setdefault("_portal_templates", {})
    key = model if azure else None
    template = templates.get(key)
    if template is None:
        options = FinalRequestOptions.construct(
            method="post", url="/chat/completions", json_data={"model": model}
        )
        request = client._build_request(options)
        headers = [
            (name, value)
            for name, value in request.headers.multi_items()
            if name.lower() not in _TEMPLATE_SKIPPED
        ]
        template = templates[key] = (str(request.url), headers)
    return template


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _api_error_message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    detail = body.get("message") or (body.get("error") or {}).get("message") if body else None
    return str(detail or exc.message)[:500]


def classify(exc: Exception, partial: CallResult) -> BackendError:
    """Map an SDK exception onto retryable or final, with a message fit for the user."""
    if isinstance(exc, openai.APITimeoutError):
        return BackendError(
            "The backend did not answer in time.", retryable=True, code="timeout", partial=partial
        )
    if isinstance(exc, openai.APIConnectionError):
        return BackendError(
            f"Could not reach the backend: {exc.__cause__ or exc}"[:300],
            retryable=True,
            code="connection_error",
            partial=partial,
        )
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message = f"Backend answered {status}: {_api_error_message(exc)}"
        if status == 429:
            return BackendError(
                message,
                retryable=True,
                code="rate_limited",
                status=status,
                retry_after=_retry_after(exc.response),
                partial=partial,
            )
        if status >= 500 or status in (408, 409):
            return BackendError(
                message,
                retryable=True,
                code="server_error",
                status=status,
                retry_after=_retry_after(exc.response),
                partial=partial,
            )
        code = {401: "authentication_failed", 403: "permission_denied", 404: "model_not_found"}.get(
            status, "bad_request"
        )
        return BackendError(message, retryable=False, code=code, status=status, partial=partial)
    if isinstance(exc, (openai.APIResponseValidationError, json.JSONDecodeError, ValueError)):
        return BackendError(
            "The backend sent a response that is not OpenAI's format.",
            retryable=False,
            code="invalid_response",
            partial=partial,
        )
    if isinstance(exc, httpx.HTTPError):
        return BackendError(
            f"The connection to the backend broke: {exc}"[:300],
            retryable=True,
            code="stream_interrupted",
            partial=partial,
        )
    return BackendError(
        f"Unexpected backend error: {type(exc).__name__}",
        retryable=False,
        code="backend_error",
        partial=partial,
    )


class OpenAIChatClient:
    def __init__(self, backend: Backend):
        self.backend = backend
        key = decrypt(backend.api_key_encrypted) if backend.api_key_encrypted else ""
        self.client = _client(
            backend.pk,
            backend.updated_at.timestamp() if backend.updated_at else 0.0,
            backend.kind,
            backend.base_url or OPENAI_BASE_URL,
            (backend.azure_endpoint, backend.azure_deployment, backend.api_version),
            key,
            backend.timeout_seconds,
        )

    def _send(self, model: str, body: dict, *, stream: bool) -> httpx.Response:
        """POST the body as given on the client's pooled connections, with the SDK's
        URL and headers (:func:`_prepared`) and its exceptions, so :func:`classify`
        reads a failure as it reads the SDK's; the SDK's per-call request building,
        retry loop (off here: the executor retries) and response wrapping cost twice
        the HTTP exchange itself. ``stream``: the body is left on the socket."""
        url, headers = _prepared(self.client, model)
        http = self.client._client
        content = json.dumps(body, separators=(",", ":")).encode()
        request = http.build_request("POST", url, headers=headers, content=content)
        try:
            response = http.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise openai.APITimeoutError(request=request) from exc
        except httpx.TransportError as exc:
            raise openai.APIConnectionError(request=request) from exc
        if response.status_code >= 400:
            try:
                response.read()
            finally:
                response.close()
            raise self.client._make_status_error_from_response(response)
        return response

    def list_models(self) -> list[str]:
        try:
            return sorted(model.id for model in self.client.models.list())
        except Exception as exc:
            raise classify(exc, CallResult()) from None

    def stream_chat(
        self,
        *,
        model: str,
        messages: list[dict],
        params: dict,
        on_delta: OnDelta,
        should_stop: ShouldStop,
    ) -> CallResult:
        result = CallResult()
        tool_calls: dict[int, dict] = {}
        started = time.monotonic()
        body = _request_body(model, messages, params)
        body.update(stream=True, stream_options={"include_usage": True})
        try:
            # read unparsed: the SDK's ``create`` checked every message against its
            # TypedDicts and built a model of every chunk (the run's messages were
            # validated when it was created; sse_chunks reads what we use)
            response = self._send(model, body, stream=True)
            try:
                _require_content(response, "text/event-stream", "an event stream", result)
                for chunk in sse_chunks(response.iter_lines(), result):
                    if should_stop():
                        raise Cancelled(result)
                    _take_chunk(chunk, result, tool_calls, started, on_delta)
            finally:
                response.close()
        except (Cancelled, BackendError):
            raise
        except Exception as exc:
            error = classify(exc, result)
            if result.emitted and error.retryable:
                error.code = "stream_interrupted"
                error.message = (
                    f"The backend's stream broke after {result.emitted} chunks: {error.message}"
                )
            raise error from None
        if tool_calls:
            result.tool_calls = [tool_calls[i] for i in sorted(tool_calls)]
        if not result.finish_reason:
            retryable = result.emitted == 0
            raise BackendError(
                "The backend's stream ended before it finished.",
                retryable=retryable,
                code="stream_interrupted",
                partial=result,
            )
        if not result.text and not result.tool_calls:
            raise _empty_answer(result)
        return result

    def complete_chat(
        self, *, model: str, messages: list[dict], params: dict, should_stop: ShouldStop
    ) -> CallResult:
        """The call for a caller that does not stream: one JSON body, read here rather
        than by the SDK (a streamed call cost twice the CPU of this one: a dozen events
        to split and parse, for an answer nobody reads until it is whole). The call is
        not interrupted when its caller goes away; OpenAI does not stop such a call either."""
        body = _request_body(model, messages, params)
        started = time.monotonic()
        try:
            response = self._send(model, body, stream=False)
            _require_content(response, "application/json", "JSON")
            body = json.loads(response.content)
        except BackendError:
            raise
        except Exception as exc:
            raise classify(exc, CallResult()) from None
        return completion_result(body, int((time.monotonic() - started) * 1000))


def _request_body(model: str, messages: list[dict], params: dict) -> dict:
    """The chat completions body: the run's own parameters (validated when it was
    created), the model and the messages."""
    body = {k: params[k] for k in PASSTHROUGH_PARAMS if params.get(k) is not None}
    body.update(model=model, messages=messages)
    return body


def completion_result(body, elapsed_ms: int) -> CallResult:
    """A ``chat.completion`` body as a call's result; the first token came with the rest."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise BackendError(
            "The backend sent a response that is not OpenAI's format.",
            retryable=False,
            code="invalid_response",
        )
    message = choices[0].get("message") or {}
    usage = body.get("usage") or {}
    result = CallResult(
        text=message.get("content") or "",
        tool_calls=message.get("tool_calls") or None,
        finish_reason=choices[0].get("finish_reason") or "stop",
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        cached_tokens=(usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
        ttft_ms=elapsed_ms,
    )
    if result.tool_calls:
        result.tool_calls = [
            {
                "id": call.get("id", ""),
                "type": "function",
                "function": {
                    "name": (call.get("function") or {}).get("name", ""),
                    "arguments": (call.get("function") or {}).get("arguments", ""),
                },
            }
            for call in result.tool_calls
        ]
    if not result.text and not result.tool_calls:
        raise _empty_answer(result)
    return result


def _require_content(response, media_type: str, what: str, partial=None) -> None:
    """Refuse an answer of another kind (an HTML page from a wrong base URL, say)."""
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith(media_type):
        raise BackendError(
            f"The backend answered with {content_type or 'no content type'}, "
            f"not {what}; is the base URL an OpenAI-compatible /v1?",
            retryable=False,
            code="invalid_response",
            partial=partial,
        )


def _empty_answer(result: CallResult) -> BackendError:
    return BackendError(
        "The backend returned an empty answer.",
        retryable=False,
        code="empty_response",
        partial=result,
    )


def sse_chunks(lines, partial: CallResult):
    """The JSON objects of an OpenAI event stream, parsed here rather than by the SDK.

    The SDK builds a pydantic model of every chunk; that was a quarter of a
    worker's CPU per run (cProfile over 100 runs of 20 chunks), for fields we
    read once. Events are joined from their ``data:`` lines as the SSE spec
    says; ``[DONE]`` ends the stream; an ``error`` object mid-stream (OpenAI's
    way to fail after the status line) becomes a retryable backend error.
    """
    data: list[str] = []
    for line in itertools.chain(lines, [""]):  # a last blank line ends a final event
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
            continue
        if line or not data:
            continue  # other fields (event:, id:, comments) carry nothing we use
        text, data = "\n".join(data), []
        if text.strip() == "[DONE]":
            return
        chunk = json.loads(text)
        if not isinstance(chunk, dict):
            raise ValueError("an event that is not a JSON object")
        if chunk.get("error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise BackendError(
                f"The backend failed mid-stream: {message}",
                retryable=True,
                code="server_error",
                partial=partial,
            )
        yield chunk


def _take_chunk(chunk: dict, result: CallResult, tool_calls: dict, started, on_delta) -> None:
    usage = chunk.get("usage")
    if usage:
        result.prompt_tokens = usage.get("prompt_tokens")
        result.completion_tokens = usage.get("completion_tokens")
        details = usage.get("prompt_tokens_details") or {}
        result.cached_tokens = details.get("cached_tokens")
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content:
            if result.ttft_ms is None:
                result.ttft_ms = int((time.monotonic() - started) * 1000)
            result.text += content
            result.emitted += 1
            on_delta(content)
        for call in delta.get("tool_calls") or []:
            _merge_tool_call(tool_calls, call)
        if choice.get("finish_reason"):
            result.finish_reason = choice["finish_reason"]


def _merge_tool_call(calls: dict[int, dict], delta: dict) -> None:
    entry = calls.setdefault(
        delta.get("index", 0),
        {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
    )
    if delta.get("id"):
        entry["id"] = delta["id"]
    function = delta.get("function") or {}
    if function.get("name"):
        entry["function"]["name"] += function["name"]
    if function.get("arguments"):
        entry["function"]["arguments"] += function["arguments"]
