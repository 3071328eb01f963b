"""Checks on what callers send for a run, shared by pages, the API and the gateway.

Every problem raises a ServiceError naming the parameter, so a caller gets a
400 that says what to fix instead of a failed run or a 500.
"""

from apps.core.errors import ServiceError

ROLES = {"system", "developer", "user", "assistant", "tool"}
MAX_MESSAGES = 1000
MAX_FALLBACKS = 5


def _fail(message: str, param: str):
    raise ServiceError(message, param=param, code="invalid_parameter")


def _number(params: dict, name: str, low: float, high: float) -> None:
    value = params.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        _fail(f"{name} must be a number between {low} and {high}.", name)


def _integer(params: dict, name: str, low: int, high: int) -> None:
    value = params.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        _fail(f"{name} must be an integer between {low} and {high}.", name)


def clean_messages(messages) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        _fail("messages must be a non-empty list.", "messages")
    if len(messages) > MAX_MESSAGES:
        _fail(f"At most {MAX_MESSAGES} messages per run.", "messages")
    cleaned = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            _fail(f"{where} must be an object with role and content.", where)
        role = message.get("role")
        if role not in ROLES:
            _fail(f"{where}.role must be one of {', '.join(sorted(ROLES))}.", f"{where}.role")
        content = message.get("content")
        if content is None and not message.get("tool_calls"):
            _fail(f"{where}.content is required.", f"{where}.content")
        if content is not None and not isinstance(content, str | list):
            _fail(f"{where}.content must be a string or a list of parts.", f"{where}.content")
        cleaned.append(message)
    return cleaned


PARAMETERS = {
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "tools",
    "tool_choice",
    "user",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
}


def clean_parameters(params) -> dict:
    if params is None:
        return {}
    if not isinstance(params, dict):
        _fail("parameters must be an object.", "parameters")
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        _fail(f"Unknown parameter(s): {', '.join(unknown)}.", unknown[0])
    _number(params, "temperature", 0, 2)
    _number(params, "top_p", 0, 1)
    _number(params, "presence_penalty", -2, 2)
    _number(params, "frequency_penalty", -2, 2)
    _integer(params, "max_tokens", 1, 1_000_000)
    _integer(params, "max_completion_tokens", 1, 1_000_000)
    _integer(params, "seed", -(2**63), 2**63 - 1)
    stop = params.get("stop")
    if stop is not None and not (
        isinstance(stop, str)
        or (isinstance(stop, list) and len(stop) <= 4 and all(isinstance(s, str) for s in stop))
    ):
        _fail("stop must be a string or a list of up to 4 strings.", "stop")
    tools = params.get("tools")
    if tools is not None and not (
        isinstance(tools, list)
        and all(
            isinstance(t, dict)
            and t.get("type") == "function"
            and isinstance(t.get("function"), dict)
            and t["function"].get("name")
            for t in tools
        )
    ):
        _fail("tools must be a list of {type: function, function: {name, parameters}}.", "tools")
    choice = params.get("tool_choice")
    if choice is not None and not (
        choice in {"none", "auto", "required"} or isinstance(choice, dict)
    ):
        _fail("tool_choice must be none, auto, required or a function choice.", "tool_choice")
    if params.get("user") is not None and not isinstance(params["user"], str):
        _fail("user must be a string.", "user")
    return dict(params)


def clean_model(model) -> str:
    if not isinstance(model, str) or not model.strip() or len(model) > 200:
        _fail("model must be a non-empty string of at most 200 characters.", "model")
    return model.strip()


def require_served(backend, model: str, *, param: str = "model") -> None:
    """A backend whose model list is known serves only what it lists, so a typo or a
    commercial model name on the local development backend is refused before it is
    saved, answered or billed. An empty list (a kind that can't list its models, such
    as Azure's deployments, or a list not fetched yet) takes any name."""
    served = backend.model_ids or ()
    if served and model not in served:
        shown = ", ".join(served[:10]) + (", ..." if len(served) > 10 else "")
        raise ServiceError(
            f"Backend {backend.name} does not serve the model {model!r}; it serves: {shown}.",
            param=param,
            code="model_not_served",
        )


def clean_end_user(end_user) -> str:
    """The caller's own id for its end user (OpenAI's ``user`` field), kept for audit."""
    if end_user is None:
        return ""
    if not isinstance(end_user, str) or len(end_user) > 256:
        _fail("user must be a string of at most 256 characters.", "user")
    return end_user


def clean_fallbacks(fallbacks) -> list[dict]:
    if fallbacks is None:
        return []
    if not isinstance(fallbacks, list) or len(fallbacks) > MAX_FALLBACKS:
        _fail(f"fallbacks must be a list of at most {MAX_FALLBACKS} entries.", "fallbacks")
    cleaned = []
    for i, entry in enumerate(fallbacks):
        if not isinstance(entry, dict) or not isinstance(entry.get("backend"), int):
            _fail(f"fallbacks[{i}] must be {{backend: id, model: name}}.", f"fallbacks[{i}]")
        cleaned.append({"backend": entry["backend"], "model": clean_model(entry.get("model"))})
    return cleaned
