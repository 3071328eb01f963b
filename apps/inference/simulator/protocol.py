"""OpenAI's chat completion wire format: request validation, error bodies, usage.

Kept apart from the server so the validation reads as a spec of what the
simulator accepts, and error shapes stay identical wherever they are raised.
"""

import json
from dataclasses import dataclass

ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class RequestError(Exception):
    """An OpenAI-format error answer; raised anywhere before the response starts."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": code}}


@dataclass
class ChatRequest:
    model: str
    messages: list[dict]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    tool: dict | None
    """The function tool the request forces (``{"name", "parameters"}``), if any."""


def _json_type(value) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a decimal")):
        if isinstance(value, kind):
            return name
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _invalid_type(param: str, expected: str, value) -> RequestError:
    return RequestError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _missing(param: str) -> RequestError:
    return RequestError(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def _optional_int(data: dict, param: str) -> int | None:
    value = data.get(param)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid_type(param, "an integer", value)
    if value < 1:
        raise RequestError(
            400,
            f"Invalid '{param}': integer below minimum value. "
            f"Expected a value >= 1, but got {value} instead.",
            param=param,
            code="integer_below_min_value",
        )
    return value


def _validate_messages(messages) -> list[dict]:
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array", messages)
    if not messages:
        raise RequestError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _invalid_type(where, "an object", message)
        if "role" not in message:
            raise _missing(f"{where}.role")
        if message["role"] not in ROLES:
            raise RequestError(
                400,
                f"Invalid value: {message['role']!r}. Supported values are: "
                + ", ".join(f"'{role}'" for role in ROLES)
                + ".",
                param=f"{where}.role",
                code="invalid_value",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _invalid_type(f"{where}.content", "one of a string or array", content)
    return messages


def _forced_tool(data: dict) -> dict | None:
    tools = data.get("tools")
    choice = data.get("tool_choice")
    if tools is not None and not isinstance(tools, list):
        raise _invalid_type("tools", "an array", tools)
    if choice is None or choice in ("none", "auto"):
        return None
    if not tools:
        raise RequestError(
            400,
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' "
            "are specified.",
            param="tool_choice",
        )
    functions = {}
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            functions.setdefault(function["name"], function.get("parameters"))
    if choice == "required" and functions:
        name = next(iter(functions))
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if name not in functions:
            raise RequestError(
                400,
                f"Invalid value for 'tool_choice': function {name!r} is not among 'tools'.",
                param="tool_choice",
            )
    else:
        raise RequestError(400, "Invalid value for 'tool_choice'.", param="tool_choice")
    return {"name": name, "parameters": functions[name]}


def parse_chat_request(body: bytes) -> ChatRequest:
    """Validate a chat completion body the way OpenAI does, down to the error shapes."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RequestError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means "
            "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
            "payload, but what was sent was not valid JSON.)",
        ) from None
    if not isinstance(data, dict):
        raise _invalid_type("body", "an object", data)
    model = data.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str):
        raise _invalid_type("model", "a string", model)
    messages = _validate_messages(data.get("messages"))
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid_type("stream", "a boolean", stream)
    options = data.get("stream_options")
    if options is not None:
        if not stream:
            raise RequestError(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )
        if not isinstance(options, dict):
            raise _invalid_type("stream_options", "an object", options)
        if not isinstance(options.get("include_usage", False), bool):
            raise _invalid_type(
                "stream_options.include_usage", "a boolean", options["include_usage"]
            )
    max_tokens = _optional_int(data, "max_tokens")
    max_completion_tokens = _optional_int(data, "max_completion_tokens")
    return ChatRequest(
        model=model,
        messages=messages,
        stream=bool(stream),
        include_usage=bool((options or {}).get("include_usage")),
        max_tokens=max_completion_tokens if max_completion_tokens is not None else max_tokens,
        tool=_forced_tool(data),
    )


def usage(prompt: int, completion: int, cached: int = 0) -> dict:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": min(cached, prompt), "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def model_not_found(model_id: str) -> RequestError:
    return RequestError(
        404,
        f"The model `{model_id}` does not exist or you do not have access to it.",
        code="model_not_found",
    )
