"""Offline token estimates.

Some backends don't report usage (streams cut short, servers that ignore
``stream_options.include_usage``), yet quotas are reserved from prompt tokens
and usage must still be recorded (flagged as estimated). tiktoken can't fetch
its BPE files without network, so this approximates GPT tokenizers instead:
the same pre-tokenizer split as cl100k/o200k, then a length rule per piece.
Close enough to reserve quota and bill an estimate; never used where exact
counts are available.
"""

import math
import re

# cl100k's pre-tokenizer, with Python's ``re`` classes standing in for \p{L}/\p{N}:
# contractions, letter runs and punctuation runs with an optional leading space,
# numbers in groups of at most three digits, whitespace runs.
_PIECE_RE = re.compile(
    r"'(?:[sdmt]|ll|ve|re)"
    r"| ?[^\W\d_]+"
    r"| ?\d{1,3}"
    r"| ?(?:[^\s\w]|_)+"
    r"|\s+(?!\S)|\s+",
    re.IGNORECASE,
)

SHORT_WORD = 6
"""ASCII words up to this many letters count as one token; longer ones 1 per 4 letters."""
MESSAGE_OVERHEAD = 3
"""Tokens OpenAI's chat format spends framing every message."""
NAME_OVERHEAD = 1
"""Extra token for a message's ``name`` field."""
REPLY_PRIMING = 3
"""Tokens that prime the assistant's reply (``<|start|>assistant<|message|>``)."""
IMAGE_PART_TOKENS = 85
"""OpenAI's base cost of an image part (low detail); the real cost depends on size."""


def split_pieces(text: str) -> list[str]:
    """Pre-tokenizer pieces of ``text``; joined they give ``text`` back.

    Public so streams can be replayed in token-sized fragments (tool call arguments).
    """
    return _PIECE_RE.findall(text)


def _piece_tokens(piece: str) -> int:
    core = piece.strip() or piece
    if core.isspace():
        return math.ceil(len(core) / 8)
    if core[0].isdigit():
        return 1
    if core[0].isalpha():
        size = len(core.encode())
        if size == len(core):
            # Common English words up to this length are single tokens in GPT vocabularies.
            return 1 if size <= SHORT_WORD else math.ceil(size / 4)
        # Other scripts (CJK especially) spend far more tokens per character.
        return math.ceil(size / 3)
    return math.ceil(len(core) / 2)


def estimate_tokens(text: str) -> int:
    """Approximate GPT token count of ``text``; at least 1 for any non-empty text."""
    if not text:
        return 0
    return max(1, sum(_piece_tokens(piece) for piece in _PIECE_RE.findall(text)))


def _content_tokens(content) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return estimate_tokens(content)
    total = 0
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            total += estimate_tokens(part.get("text") or "")
        elif part.get("type") == "image_url":
            total += IMAGE_PART_TOKENS
    return total


def _tool_calls_tokens(tool_calls) -> int:
    total = 0
    for call in tool_calls or ():
        function = (call.get("function") if isinstance(call, dict) else None) or {}
        total += estimate_tokens(function.get("name") or "")
        total += estimate_tokens(function.get("arguments") or "")
    return total


def estimate_messages_tokens(messages: list[dict]) -> int:
    """Approximate prompt tokens of a chat request, following OpenAI's cookbook accounting.

    Used to reserve quota before the call and as the prompt count when the
    backend reports none.
    """
    total = REPLY_PRIMING
    for message in messages:
        total += MESSAGE_OVERHEAD
        total += estimate_tokens(str(message.get("role") or ""))
        total += _content_tokens(message.get("content"))
        total += _tool_calls_tokens(message.get("tool_calls"))
        if message.get("name"):
            total += NAME_OVERHEAD + estimate_tokens(str(message["name"]))
    return total
