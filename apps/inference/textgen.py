"""Deterministic stand-in for a model's reply.

The simulator and the built-in local development backend both answer with
this, so a reply is a pure function of the conversation: tests can compare a
stream with a non-stream answer, and the same prompt gives the same answer in
every process. A fixed word list and a hand-rolled PRNG (not ``random``, whose
``choice`` may change between Python versions) keep it dependency-free.
"""

import hashlib
import json
from collections.abc import Iterator
from typing import Literal

# fmt: off
WORDS = (
    "the", "a", "an", "and", "or", "but", "so", "of", "to", "in", "on", "at", "by", "for",
    "with", "from", "as", "into", "over", "after", "about", "under", "near", "past", "river",
    "stone", "light", "cloud", "field", "garden", "window", "bridge", "road", "city", "market",
    "table", "paper", "letter", "story", "music", "song", "voice", "dream", "morning",
    "evening", "night", "summer", "winter", "spring", "autumn", "rain", "snow", "wind", "storm",
    "sun", "moon", "star", "sky", "sea", "ocean", "lake", "forest", "tree", "leaf", "flower",
    "seed", "root", "branch", "hill", "valley", "island", "shore", "harbor", "ship", "boat",
    "train", "station", "engine", "wheel", "clock", "bell", "door", "wall", "roof", "floor",
    "house", "room", "kitchen", "bread", "water", "coffee", "tea", "apple", "honey", "salt",
    "sugar", "milk", "cheese", "little", "quiet", "bright", "dark", "warm", "cold", "soft",
    "gentle", "careful", "simple", "early", "late", "ancient", "modern", "small", "large",
    "green", "blue", "golden", "silver", "red", "white", "brown", "walks", "finds", "keeps",
    "makes", "takes", "gives", "holds", "opens", "builds", "writes", "reads", "sings",
    "carries", "follows", "watches", "counts", "paints", "brings", "sends", "turns", "grows",
    "shows", "hears", "teacher", "farmer", "painter", "writer", "sailor", "baker", "doctor",
    "driver", "child", "friend", "family", "neighbor", "traveler", "village", "country",
    "street", "corner", "lamp", "candle", "fire", "smoke", "path", "always", "often", "never",
    "slowly", "softly", "again", "together", "almost", "nearly", "still", "only", "every",
    "some", "many", "few", "each", "other", "same", "new", "old", "long", "short", "high",
    "low", "first", "last",
)
# fmt: on

_MASK = (1 << 64) - 1


def _seed(payload) -> int:
    canonical = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")


def _numbers(seed: int) -> Iterator[int]:
    """splitmix64: tiny, fast, and identical on every platform and Python version."""
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & _MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        yield z ^ (z >> 31)


def _full_reply(messages: list[dict], length: int) -> list[str]:
    numbers = _numbers(_seed(messages))
    pieces: list[str] = []
    sentence_length = 0
    for position in range(length):
        value = next(numbers)
        word = WORDS[value % len(WORDS)]
        if sentence_length == 0:
            word = word.capitalize()
        sentence_length += 1
        last = position == length - 1
        if last:
            word += "."
        elif sentence_length >= 5 and (value >> 32) % 6 == 0:
            word += "."
            sentence_length = 0
        elif sentence_length >= 3 and (value >> 40) % 9 == 0:
            word += ","
        pieces.append(word if position == 0 else " " + word)
    return pieces


def reply_pieces(
    messages: list[dict], *, max_tokens: int | None = None, default_tokens: int = 24
) -> list[str]:
    """Token-sized pieces of the reply to ``messages``; joined they form the text.

    The natural reply is ``default_tokens`` pieces ending a sentence; a
    ``max_tokens`` cut returns its prefix, as a real model stopped mid-sentence would.
    """
    count = default_tokens if max_tokens is None else min(max_tokens, default_tokens)
    if count <= 0:
        return []
    return _full_reply(messages, default_tokens)[:count]


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("text")
        )
    return ""


def echo_pieces(messages: list[dict], *, max_tokens: int | None = None) -> list[str]:
    """The local development backend's reply: the last user message said back, one
    word a piece, so a newcomer sees the whole path work with their own words. Also
    returns the natural length, for the finish reason."""
    said = next(
        (_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    words = ["You", " said:"] + [f" {word}" for word in said.split()] if said.split() else []
    if not words:
        words = ["(There", " was", " nothing", " to", " echo.)"]
    return words if max_tokens is None else words[: max(0, max_tokens)]


def echo_length(messages: list[dict]) -> int:
    return len(echo_pieces(messages))


def finish_reason_for(
    pieces: list[str], max_tokens: int | None, default_tokens: int
) -> Literal["length", "stop"]:
    """``"length"`` when ``max_tokens`` cut the natural reply short, else ``"stop"``."""
    if max_tokens is not None and max_tokens < default_tokens and len(pieces) <= max_tokens:
        return "length"
    return "stop"


def _value_for(schema, numbers: Iterator[int], depth: int = 0):
    if not isinstance(schema, dict):
        return WORDS[next(numbers) % len(WORDS)]
    if schema.get("enum"):
        options = schema["enum"]
        return options[next(numbers) % len(options)]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    value = next(numbers)
    if kind == "integer":
        return value % 100
    if kind == "number":
        return (value % 10000) / 100
    if kind == "boolean":
        return bool(value & 1)
    if kind == "null":
        return None
    if kind == "array":
        return [] if depth > 2 else [_value_for(schema.get("items"), numbers, depth + 1)]
    if kind == "object":
        properties = schema.get("properties") or {}
        if depth > 2 or not isinstance(properties, dict):
            return {}
        return {key: _value_for(sub, numbers, depth + 1) for key, sub in properties.items()}
    return WORDS[value % len(WORDS)]


def tool_arguments(messages: list[dict], name: str, parameters: dict | None) -> str:
    """JSON object string of arguments for calling tool ``name``, as a model would produce.

    Follows the JSON schema of ``parameters`` loosely (types, enums, nesting) so
    callers that parse or validate the arguments get plausible values.
    """
    numbers = _numbers(_seed({"messages": messages, "tool": name}))
    schema = parameters if isinstance(parameters, dict) else {}
    arguments = _value_for({**schema, "type": "object"}, numbers)
    return json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)
