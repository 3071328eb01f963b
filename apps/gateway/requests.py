"""Reading a chat completions request the way OpenAI's API does.

Only JSON objects are accepted; every field is checked for type and range and
an unknown field is refused by name (as OpenAI does), so a typo never passes
silently. Model parameters are checked again by the shared run validation.
"""

import json
from dataclasses import dataclass, field

from django.core.exceptions import RequestDataTooBig

from apps.gateway.errors import GatewayError
from apps.inference import validation

# Parameters handed to the backend as they are (checked by the shared run validation);
# ``user`` is recorded on the run instead.
PASSED_THROUGH = validation.PARAMETERS - {"user"}
# Accepted for compatibility and not acted on.
IGNORED = {"parallel_tool_calls", "store", "metadata", "service_tier", "logprobs"}
OWN = {"model", "messages", "stream", "stream_options", "n", "user", "variables"}
KNOWN = PASSED_THROUGH | IGNORED | OWN


def _bad(message: str, param: str | None = None, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


@dataclass
class ChatRequest:
    model: str
    messages: list
    parameters: dict
    stream: bool = False
    include_usage: bool = False
    user: str = ""
    variables: dict = field(default_factory=dict)


def read_json(request) -> dict:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise GatewayError(
            413, "The request body is too large.", code="request_too_large"
        ) from None
    try:
        body = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError):
        raise _bad(
            "We could not parse the JSON body of your request. The body must be valid JSON.",
            code="invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", code="invalid_json")
    return body


def _stream_options(body: dict, stream: bool) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not stream:
        raise _bad("stream_options is only allowed when stream is true.", "stream_options")
    if not isinstance(options, dict) or set(options) - {"include_usage"}:
        raise _bad("stream_options may only hold include_usage.", "stream_options")
    include = options.get("include_usage", False)
    if not isinstance(include, bool):
        raise _bad(
            "stream_options.include_usage must be a boolean.", "stream_options.include_usage"
        )
    return include


def _variables(body: dict) -> dict:
    variables = body.get("variables")
    if variables is None:
        return {}
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str | int | float) for k, v in variables.items()
    ):
        raise _bad("variables must be an object of strings.", "variables")
    return {k: str(v) for k, v in variables.items()}


def parse_chat(body: dict) -> ChatRequest:
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        raise _bad(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0])
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("you must provide a model parameter", "model", code="missing_required_parameter")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty array.", "messages")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _bad("stream must be a boolean.", "stream")
    n = body.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n != 1):
        raise _bad("n must be 1: this gateway returns one choice per request.", "n")
    user = body.get("user")
    if user is not None and (not isinstance(user, str) or len(user) > 256):
        raise _bad("user must be a string of at most 256 characters.", "user")
    parameters = {k: body[k] for k in PASSED_THROUGH if body.get(k) is not None}
    return ChatRequest(
        model=model.strip(),
        messages=messages,
        parameters=parameters,
        stream=stream,
        include_usage=_stream_options(body, stream),
        user=user or "",
        variables=_variables(body),
    )
