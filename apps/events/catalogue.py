"""Every event type the portal emits: its data fields, its one-line summary and
its JSON Schema file.

The schema files in ``apps/events/schemas/`` are generated from this catalogue
(``python -m apps.events.catalogue`` rewrites them) and a test keeps both in
step. Fields marked as content (prompts, answers) are only put in an event when
the team turned ``events_include_content`` on; secrets never are.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMA_VERSION = 1

INT = {"type": "integer"}
STR = {"type": "string"}
NSTR = {"type": ["string", "null"]}
NINT = {"type": ["integer", "null"]}
BOOL = {"type": "boolean"}
NUM_STR = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
TIME = {"type": ["string", "null"], "format": "date-time"}
STR_LIST = {"type": "array", "items": {"type": "string"}}
MESSAGES = {"type": "array", "items": {"type": "object"}}


@dataclass(frozen=True)
class EventType:
    name: str
    description: str
    summary: str  # str.format template over the data
    fields: dict[str, dict]
    required: tuple[str, ...] = ()
    content: dict[str, dict] = field(default_factory=dict)  # only with events_include_content

    @property
    def schema_path(self) -> Path:
        return SCHEMA_DIR / f"{self.name}.json"

    def schema(self) -> dict:
        """The JSON Schema of this type's ``data``; unknown keys are refused so nothing
        (a secret, some content) slips into an event unnoticed."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://ai-portal.dev/schemas/events/{self.name}.json",
            "title": self.name,
            "description": self.description,
            "type": "object",
            "properties": {**self.fields, **self.content},
            "required": list(self.required or self.fields),
            "additionalProperties": False,
        }

    def summarise(self, data: dict) -> str:
        try:
            return self.summary.format_map(_Blank(data))
        except (ValueError, IndexError):
            return self.name


class _Blank(dict):
    def __missing__(self, key):
        return "?"


_RUN = {"run_id": INT, "model": STR, "assistant_id": NINT, "key_id": NINT}
_USAGE = {
    "prompt_tokens": INT,
    "completion_tokens": INT,
    "total_tokens": INT,
    "usage_estimated": BOOL,
    "cost": NUM_STR,
    "priced": BOOL,
    "latency_ms": NINT,
    "attempts": INT,
    "attempt_tokens": INT,
}
_ASSISTANT = {"assistant_id": INT, "assistant": STR, "name": STR, "model": STR}
_KEY = {"key_id": INT, "prefix": STR, "name": STR}
_MEMBER = {"user_id": INT, "user": STR, "role": STR}
_QUOTA = {
    "quota_id": INT,
    "key_id": NINT,
    "metric": STR,
    "period": STR,
    "limit": NUM_STR,
    "used": NUM_STR,
}

TYPES: dict[str, EventType] = {
    t.name: t
    for t in [
        EventType("member.joined", "Someone joined the team.", "{user} joined as {role}", _MEMBER),
        EventType(
            "member.left",
            "Someone left the team or was removed.",
            "{user} left the team",
            {**_MEMBER, "removed": BOOL},
        ),
        EventType(
            "member.role_changed",
            "A member's role changed.",
            "{user} is now {role} (was {previous_role})",
            {**_MEMBER, "previous_role": STR},
        ),
        EventType(
            "backend.created",
            "An inference backend was added (its credentials never appear).",
            "Backend {name} ({kind}) added",
            {"backend_id": INT, "name": STR, "kind": STR, "models": STR_LIST},
        ),
        EventType(
            "backend.changed",
            "An inference backend's settings changed.",
            "Backend {name} changed",
            {"backend_id": INT, "name": STR, "kind": STR, "enabled": BOOL, "changed": STR_LIST},
        ),
        EventType(
            "prompt.version_created",
            "A new immutable version of a prompt.",
            "Prompt {prompt} v{version} created",
            {"prompt_id": INT, "prompt": STR, "version": INT, "commit_message": STR},
        ),
        EventType(
            "prompt.label_moved",
            "A label of a prompt points at another version.",
            "Label {label} of {prompt} moved to v{version}",
            {
                "prompt_id": INT,
                "prompt": STR,
                "label": STR,
                "version": INT,
                "previous_version": NINT,
            },
        ),
        EventType(
            "assistant.created", "An assistant was created.", "Assistant {name} created", _ASSISTANT
        ),
        EventType(
            "assistant.changed",
            "An assistant's settings changed.",
            "Assistant {name} changed",
            {**_ASSISTANT, "changed": STR_LIST},
        ),
        EventType(
            "assistant.archived",
            "An assistant with history was archived (one without is deleted).",
            "Assistant {name} archived",
            _ASSISTANT,
        ),
        EventType(
            "key.created",
            "An API key was issued (the secret never appears).",
            "Key {name} ({prefix}…) created",
            {**_KEY, "scopes": STR_LIST, "expires_at": TIME},
        ),
        EventType(
            "key.rotated",
            "An API key got a new secret.",
            "Key {name} ({prefix}…) rotated",
            {**_KEY, "grace_seconds": INT},
        ),
        EventType("key.revoked", "An API key was revoked.", "Key {name} ({prefix}…) revoked", _KEY),
        EventType(
            "key.expired",
            "An API key passed its expiry (noticed by the periodic sweep, once).",
            "Key {name} ({prefix}…) expired",
            {**_KEY, "expired_at": TIME},
        ),
        EventType(
            "run.queued",
            "A chat run was accepted and queued for a worker.",
            "Run {run_id} queued ({model})",
            {**_RUN, "backend_id": INT},
            content={"messages": MESSAGES},
        ),
        EventType(
            "run.started",
            "A worker started a run.",
            "Run {run_id} started ({model})",
            {**_RUN, "delivery": INT},
        ),
        EventType(
            "run.succeeded",
            "A run finished with an answer; tokens and cost included.",
            "Run {run_id} succeeded: {total_tokens} tokens, ${cost}",
            {**_RUN, **_USAGE, "finish_reason": STR},
            content={"output": STR},
        ),
        EventType(
            "run.failed",
            "A run failed after retries and fallbacks.",
            "Run {run_id} failed: {error_code}",
            {**_RUN, **_USAGE, "error_code": STR},
            content={"error": STR},
        ),
        EventType(
            "run.cancelled",
            "A run was cancelled by its caller.",
            "Run {run_id} cancelled",
            {**_RUN, **_USAGE},
        ),
        EventType(
            "quota.threshold_reached",
            "Consumption crossed an alert threshold of a budget.",
            "Quota {quota_id}: {threshold}% of the {metric} budget used",
            {**_QUOTA, "threshold": INT},
            required=("quota_id", "metric", "threshold"),
        ),
        EventType(
            "quota.limit_hit",
            "A request was refused because a limit was reached.",
            "Quota {quota_id}: {metric} limit hit",
            {**_QUOTA, "resets_at": TIME},
            required=("quota_id", "metric"),
        ),
        EventType(
            "quota.period_reset",
            "A budget period ended and the next one started.",
            "Quota {quota_id}: new {period} period",
            {**_QUOTA, "period_start": TIME},
            required=("quota_id", "metric"),
        ),
    ]
}


def envelope_schema() -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://ai-portal.dev/schemas/events/envelope.json",
        "title": "Portal event (CloudEvents 1.0, JSON format)",
        "type": "object",
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "format": "uuid", "minLength": 36, "maxLength": 36},
            "source": {"type": "string", "pattern": "^/teams/[0-9]+$"},
            "type": {"enum": sorted(TYPES)},
            "time": {"type": "string", "format": "date-time"},
            "subject": {"type": "string", "minLength": 1},
            "datacontenttype": {"const": "application/json"},
            "teamid": {"type": "string", "pattern": "^[0-9]+$"},
            "schemaversion": {"const": str(SCHEMA_VERSION)},
            "sequence": {"type": "string", "pattern": "^[0-9]+$"},
            "actor": {"type": "string"},
            "actorlabel": {"type": "string"},
            "data": {"type": "object"},
        },
        "required": [
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "subject",
            "datacontenttype",
            "teamid",
            "schemaversion",
            "sequence",
            "data",
        ],
        "additionalProperties": False,
    }


def _write_schemas() -> None:
    def dump(path: Path, schema: dict) -> None:
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")

    SCHEMA_DIR.mkdir(exist_ok=True)
    dump(SCHEMA_DIR / "envelope.json", envelope_schema())
    for event_type in TYPES.values():
        dump(event_type.schema_path, event_type.schema())


if __name__ == "__main__":
    _write_schemas()
