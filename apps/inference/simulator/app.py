"""An OpenAI-compatible chat server for tests and local development, as a bare ASGI 3 app.

The project's own inference code talks to it over real HTTP with the official
``openai`` SDK, so framing, error shapes, timing and failures are exercised
exactly as against OpenAI. Replies come from :mod:`apps.inference.textgen`
and are deterministic; faults are queued through ``/_sim/faults``. No
framework: every byte on the wire is chosen here, including broken ones.
"""

import asyncio
import contextlib
import json
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field

from apps.inference import textgen
from apps.inference.simulator.faults import (
    AbortConnection,
    Fault,
    FaultQueues,
    hide_abort_logs,
    parse_fault,
)
from apps.inference.simulator.protocol import (
    ChatRequest,
    RequestError,
    model_not_found,
    parse_chat_request,
    usage,
)
from apps.inference.tokens import estimate_messages_tokens, split_pieces

MODEL_CREATED = 1_700_000_000
SYSTEM_FINGERPRINT = "fp_simulator"
SERVER_ERRORS = {
    "500": "The server had an error while processing your request. Sorry about that!",
    "503": "The engine is currently overloaded, please try again later.",
}
GARBAGE = (
    b"<!DOCTYPE html><html><head><title>Sign in to continue</title></head>"
    b"<body><h1>Network login required</h1><p>This is not an API response.</p></body></html>"
)


@dataclass
class SimulatorConfig:
    """Read on every request, so tests may change it while the server runs."""

    models: list[str] = field(default_factory=lambda: ["sim-small", "sim-large"])
    latency_ms: float = 0
    ttft_ms: float = 0
    tokens_per_second: float = 0
    default_tokens: int = 24
    # prompt tokens reported as served from a prompt cache (capped at the prompt)
    cached_prompt_tokens: int = 0
    api_key: str | None = None
    retry_after_seconds: float = 1
    timeout_seconds: float = 30


# --- one HTTP exchange ----------------------------------------------------------


class _Exchange:
    """One request and its response, watching for the client hanging up.

    Pauses end early when the client leaves, so a hanging ``timeout`` fault
    doesn't outlive the test that caused it or hold up server shutdown.
    """

    def __init__(self, scope, receive, send) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"].rstrip("/") or "/"
        self.headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
        }
        self._receive = receive
        self._send = send
        self._gone = asyncio.Event()
        self._watcher: asyncio.Task | None = None
        self.request_id = "req_" + secrets.token_hex(16)

    async def read_body(self) -> bytes | None:
        chunks = []
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        self._watcher = asyncio.create_task(self._watch())
        return b"".join(chunks)

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self._gone.set()

    def close(self) -> None:
        if self._watcher:
            self._watcher.cancel()

    async def pause(self, seconds: float) -> bool:
        """Sleep; False when the client left meanwhile and there is nobody to answer."""
        if seconds > 0 and not self._gone.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), seconds)
        return not self._gone.is_set()

    async def start(self, status: int, content_type: str, headers=(), length: int | None = None):
        raw = [
            (b"content-type", content_type.encode()),
            (b"x-request-id", self.request_id.encode()),
        ]
        if length is not None:
            raw.append((b"content-length", str(length).encode()))
        raw += [(k.encode(), v.encode()) for k, v in headers]
        await self._send({"type": "http.response.start", "status": status, "headers": raw})

    async def body(self, data: bytes, *, more: bool = False) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def json(self, status: int, payload, headers=()) -> None:
        data = json.dumps(payload).encode()
        await self.start(status, "application/json", headers, len(data))
        await self.body(data)

    async def event(self, payload: dict) -> None:
        data = json.dumps(payload, separators=(",", ":"))
        await self.body(f"data: {data}\n\n".encode(), more=True)


# --- the app ------------------------------------------------------------------


@dataclass
class _Reply:
    id: str
    created: int
    fragments: list[str]
    """Content pieces, or pieces of the tool call's arguments."""
    tool_call: dict | None
    finish_reason: str
    usage: dict


_ROUTES = [
    (re.compile(r"/v1/models"), {"GET": "_list_models"}),
    (re.compile(r"/v1/models/(?P<model_id>.+)"), {"GET": "_get_model"}),
    (re.compile(r"/v1/chat/completions"), {"POST": "_chat"}),
    (re.compile(r"/_sim/faults"), {"GET": "_pending", "POST": "_add_faults", "DELETE": "_reset"}),
    (re.compile(r"/_sim/stats"), {"GET": "_stats"}),
]


def _seconds(value: float) -> str:
    return f"{value:g}"


def _fault_error(fault: Fault, model: str, config: SimulatorConfig) -> RequestError:
    if fault.kind == "429":
        wait = config.retry_after_seconds if fault.seconds is None else fault.seconds
        return RequestError(
            429,
            f"Rate limit reached for {model} (simulated). Please try again in {_seconds(wait)}s.",
            type_="rate_limit_error",
            code="rate_limit_exceeded",
            headers=(("retry-after", _seconds(wait)), ("retry-after-ms", _seconds(wait * 1000))),
        )
    if fault.kind == "400":
        return RequestError(400, "Simulated invalid request (injected fault).")
    return RequestError(int(fault.kind), SERVER_ERRORS[fault.kind], type_="server_error")


class SimulatorApp:
    """ASGI 3 callable; its state lives here because the server runs one event loop."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.faults = FaultQueues()
        self.requests: Counter[str] = Counter()
        hide_abort_logs()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        exchange = _Exchange(scope, receive, send)
        try:
            body = await exchange.read_body()
            if body is not None:
                await self._dispatch(exchange, body)
        except RequestError as error:
            await exchange.json(error.status, error.body, error.headers)
        finally:
            exchange.close()

    async def _dispatch(self, ex: _Exchange, body: bytes) -> None:
        if ex.path.startswith("/v1/"):
            self._authenticate(ex)
        for pattern, methods in _ROUTES:
            match = pattern.fullmatch(ex.path)
            if not match:
                continue
            if ex.method not in methods:
                allow = ", ".join(methods)
                raise RequestError(
                    405,
                    f"Method Not Allowed ({ex.method} {ex.path}). Allowed: {allow}.",
                    headers=(("allow", allow),),
                )
            await getattr(self, methods[ex.method])(ex, body, **match.groupdict())
            return
        raise RequestError(404, f"Invalid URL ({ex.method} {ex.path})")

    def _authenticate(self, ex: _Exchange) -> None:
        key = self.config.api_key
        if key is None:
            return
        given = ex.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {key}".encode()):
            shown = given.removeprefix("Bearer ")
            message = (
                f"Incorrect API key provided: {shown[:3]}***{shown[-4:]}."
                if shown
                else "You didn't provide an API key."
            )
            raise RequestError(401, message, code="invalid_api_key")

    # --- models

    def _model(self, model_id: str) -> dict:
        return {
            "id": model_id,
            "object": "model",
            "created": MODEL_CREATED,
            "owned_by": "simulator",
        }

    async def _list_models(self, ex: _Exchange, body: bytes) -> None:
        await ex.json(200, {"object": "list", "data": [self._model(m) for m in self.config.models]})

    async def _get_model(self, ex: _Exchange, body: bytes, model_id: str) -> None:
        if model_id not in self.config.models:
            raise model_not_found(model_id)
        await ex.json(200, self._model(model_id))

    # --- control

    async def _pending(self, ex: _Exchange, body: bytes) -> None:
        await ex.json(200, {"pending": self.faults.pending()})

    async def _add_faults(self, ex: _Exchange, body: bytes) -> None:
        try:
            data = json.loads(body)
            specs, model = data["faults"], data.get("model")
            if not isinstance(specs, list) or not (model is None or isinstance(model, str)):
                raise ValueError("expected {'faults': [str, ...], 'model': str | null}")
            faults = [parse_fault(spec) for spec in specs]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RequestError(400, f"Invalid faults: {exc}", param="faults") from None
        self.faults.add(faults, model)
        await ex.json(200, {"pending": self.faults.pending()})

    async def _reset(self, ex: _Exchange, body: bytes) -> None:
        self.faults.clear()
        self.requests.clear()
        await ex.json(200, {"pending": {}, "requests": {}, "total": 0})

    async def _stats(self, ex: _Exchange, body: bytes) -> None:
        await ex.json(200, {"requests": dict(self.requests), "total": self.requests.total()})

    # --- chat completions

    async def _chat(self, ex: _Exchange, body: bytes) -> None:
        request = parse_chat_request(body)
        config = self.config
        if request.model not in config.models:
            raise model_not_found(request.model)
        self.requests[request.model] += 1
        fault = self.faults.pop(request.model)
        kind = fault.kind if fault else None
        if fault and kind in ("429", "500", "503", "400"):
            raise _fault_error(fault, request.model, config)
        if fault and kind == "timeout":
            hang = config.timeout_seconds if fault.seconds is None else fault.seconds
            if not await ex.pause(hang):
                return
        if not await ex.pause(config.latency_ms / 1000):
            return
        if kind == "garbage":
            await ex.start(200, "text/html; charset=utf-8", length=len(GARBAGE))
            await ex.body(GARBAGE)
            return
        reply = self._reply(request, kind)
        if request.stream:
            await self._stream(ex, request, reply, kind)
        else:
            await self._complete(ex, request, reply, kind)

    def _reply(self, request: ChatRequest, kind: str | None) -> _Reply:
        config = self.config
        tool_call = None
        if kind == "empty":
            fragments, finish_reason = [], "stop"
        elif request.tool:
            name = request.tool["name"]
            arguments = textgen.tool_arguments(request.messages, name, request.tool["parameters"])
            tool_call = {"id": "call_" + secrets.token_hex(12), "name": name, "args": arguments}
            fragments, finish_reason = split_pieces(arguments), "tool_calls"
        else:
            fragments = textgen.reply_pieces(
                request.messages,
                max_tokens=request.max_tokens,
                default_tokens=config.default_tokens,
            )
            finish_reason = textgen.finish_reason_for(
                fragments, request.max_tokens, config.default_tokens
            )
        return _Reply(
            id="chatcmpl-" + secrets.token_hex(14),
            created=int(time.time()),
            fragments=fragments,
            tool_call=tool_call,
            finish_reason=finish_reason,
            usage=usage(
                estimate_messages_tokens(request.messages),
                len(fragments),
                cached=config.cached_prompt_tokens,
            ),
        )

    def _generation_time(self, count: int) -> float:
        tps = self.config.tokens_per_second
        return count / tps if tps > 0 else 0.0

    async def _complete(self, ex: _Exchange, request, reply: _Reply, kind: str | None) -> None:
        """A whole ``chat.completion``; it takes as long as the stream would have."""
        delay = self.config.ttft_ms / 1000 + self._generation_time(len(reply.fragments))
        if not await ex.pause(delay):
            return
        message = {
            "role": "assistant",
            "content": "".join(reply.fragments),
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_call:
            call = reply.tool_call
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": call["args"]},
                }
            ]
        payload = {
            "id": reply.id,
            "object": "chat.completion",
            "created": reply.created,
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
            "usage": reply.usage,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
        if kind == "no_usage":
            del payload["usage"]
        if kind != "cut":
            await ex.json(200, payload)
            return
        data = json.dumps(payload).encode()
        await ex.start(200, "application/json", length=len(data))
        await ex.body(data[: len(data) // 2], more=True)
        raise AbortConnection

    async def _stream(self, ex: _Exchange, request, reply: _Reply, kind: str | None) -> None:
        """Server-sent ``chat.completion.chunk`` events in OpenAI's exact framing."""
        base = {
            "id": reply.id,
            "object": "chat.completion.chunk",
            "created": reply.created,
            "model": request.model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

        def chunk(delta: dict, finish_reason: str | None = None) -> dict:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            payload = {**base, "choices": [choice]}
            if request.include_usage:
                payload["usage"] = None
            return payload

        await ex.start(200, "text/event-stream; charset=utf-8", (("cache-control", "no-cache"),))
        call = reply.tool_call
        if call:
            first = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": ""},
                    }
                ],
                "refusal": None,
            }
        else:
            first = {"role": "assistant", "content": "", "refusal": None}
        await ex.event(chunk(first))
        fragments = reply.fragments
        if kind == "cut":
            fragments = fragments[: len(fragments) // 2]
        gap = self._generation_time(1)
        for position, fragment in enumerate(fragments):
            if not await ex.pause(self.config.ttft_ms / 1000 if position == 0 else gap):
                return
            if call:
                delta = {"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}
            else:
                delta = {"content": fragment}
            await ex.event(chunk(delta))
        if kind == "cut":
            raise AbortConnection
        await ex.event(chunk({}, reply.finish_reason))
        if request.include_usage and kind not in ("no_usage", "empty"):
            await ex.event({**base, "choices": [], "usage": reply.usage})
        await ex.body(b"data: [DONE]\n\n")


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(config: SimulatorConfig | None = None) -> SimulatorApp:
    """The simulator as an ASGI app; ``app.config`` stays live for later changes."""
    return SimulatorApp(config or SimulatorConfig())
