"""Prompt templates: ``{{variable}}`` placeholders, checked when saved and filled when run.

The syntax is deliberately tiny (no logic, no filters) so a template means the
same thing to every caller. Single braces are literal text, so JSON examples in
a prompt need no escaping; only ``{{`` and ``}}`` are special, and a template
that uses them wrongly is refused when it is saved rather than producing a
half-filled prompt at run time.
"""

import re
from dataclasses import dataclass, field

from apps.core.errors import ServiceError
from apps.prompts.models import MessageRole

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN_RE = re.compile(r"\{\{|\}\}")
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

MAX_TEMPLATE_CHARS = 100_000
MAX_MESSAGES = 100
ROLES = tuple(MessageRole.values)


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}"


def template_errors(text: str) -> list[str]:
    """Every problem with the ``{{ }}`` placeholders of one template, in order."""
    errors: list[str] = []
    position = 0
    while True:
        token = _TOKEN_RE.search(text, position)
        if token is None:
            return errors
        if token.group() == "}}":
            errors.append(f"Stray }}}} with no opening {{{{ at {_position(text, token.start())}.")
            position = token.end()
            continue
        closing = text.find("}}", token.end())
        if closing == -1:
            errors.append(f"Unclosed {{{{ at {_position(text, token.start())}.")
            return errors
        inner = text[token.end() : closing]
        where = _position(text, token.start())
        if "{{" in inner:
            errors.append(f"Unclosed {{{{ at {where} (another {{{{ opens before it closes).")
            position = token.end() + inner.index("{{")
            continue
        name = inner.strip()
        if not name:
            errors.append(f"Empty placeholder {{{{}}}} at {where}.")
        elif not NAME_RE.fullmatch(name):
            errors.append(
                f"Invalid variable name {name!r} at {where}: use letters, digits and _, "
                "not starting with a digit."
            )
        position = closing + 2


def check_template(text: str, *, where: str) -> None:
    """Raise the first problem of a template as a ServiceError naming ``where``."""
    if not isinstance(text, str):
        raise ServiceError(f"{where} must be text.", param=where)
    if len(text) > MAX_TEMPLATE_CHARS:
        raise ServiceError(
            f"{where} is longer than {MAX_TEMPLATE_CHARS:,} characters.", param=where
        )
    errors = template_errors(text)
    if errors:
        raise ServiceError(f"{where}: {errors[0]}", param=where, code="invalid_template")


def clean_messages(messages) -> list[dict]:
    """Message templates as ``[{"role", "content"}]`` with every template checked."""
    if messages is None:
        return []
    if not isinstance(messages, list):
        raise ServiceError("messages must be a list of {role, content}.", param="messages")
    if len(messages) > MAX_MESSAGES:
        raise ServiceError(f"At most {MAX_MESSAGES} messages per prompt.", param="messages")
    cleaned = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            raise ServiceError(f"{where} must be an object with role and content.", param=where)
        role = message.get("role")
        if role not in ROLES:
            raise ServiceError(
                f"{where}.role must be one of {', '.join(ROLES)}.", param=f"{where}.role"
            )
        content = message.get("content", "")
        check_template(content, where=f"{where}.content")
        cleaned.append({"role": role, "content": content})
    return cleaned


def extract_variables(system: str, messages: list[dict]) -> list[str]:
    """Sorted names of every placeholder used by the system and message templates."""
    names = set(_PLACEHOLDER_RE.findall(system or ""))
    for message in messages or []:
        names.update(_PLACEHOLDER_RE.findall(message.get("content") or ""))
    return sorted(names)


@dataclass(frozen=True)
class Rendered:
    """The filled-in messages; ``extra`` names variables given but used by no template.

    A missing variable is never reported here: it is an error, raised by the render.
    """

    messages: list[dict]
    extra: list[str] = field(default_factory=list)


def _clean_values(variables) -> dict[str, str]:
    if variables is None:
        return {}
    if not isinstance(variables, dict):
        raise ServiceError("variables must be an object of name: value.", param="variables")
    values = {}
    for name, value in variables.items():
        if not isinstance(name, str):
            raise ServiceError("Variable names must be strings.", param="variables")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ServiceError(
                f"Variable {name} must be a string or a number.", param=f"variables.{name}"
            )
        values[name] = value if isinstance(value, str) else str(value)
    return values


def _fill(system: str, messages: list[dict], variables) -> Rendered:
    values = _clean_values(variables)
    used = extract_variables(system, messages)
    missing = [name for name in used if name not in values]
    if missing:
        noun = "variable" if len(missing) == 1 else "variables"
        raise ServiceError(
            f"Missing {noun}: {', '.join(missing)}",
            param=f"variables.{missing[0]}",
            code="missing_variable",
        )

    def fill(template: str) -> str:
        # One pass, so a value that itself contains {{x}} is inserted as text, never expanded.
        return _PLACEHOLDER_RE.sub(lambda match: values[match.group(1)], template)

    rendered = []
    if system.strip():
        rendered.append({"role": MessageRole.SYSTEM.value, "content": fill(system)})
    rendered += [{"role": m["role"], "content": fill(m["content"])} for m in messages]
    return Rendered(messages=rendered, extra=sorted(set(values) - set(used)))


def render(version, variables: dict[str, str]) -> Rendered:
    """Fill a saved ``PromptVersion`` (its templates were checked when it was saved)."""
    return _fill(version.system, version.messages, variables)


def render_draft(system: str, messages, variables: dict[str, str]) -> Rendered:
    """Fill unsaved templates (the playground), checking them with the same rules as a save."""
    system = system or ""
    check_template(system, where="system")
    return _fill(system, clean_messages(messages), variables)
