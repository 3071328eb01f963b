"""OpenAI's response bodies: ``chat.completion`` and ``chat.completion.chunk``.

Field for field what the OpenAI API returns, so SDKs parse them unchanged. The
id carries the run id (``chatcmpl-<run>``) so a caller can look the run up in
the REST API. Bodies are built from the run's final message (the dict the
worker broadcasts when the run ends), not from a fresh read of the row.
"""

import json

from apps.gateway.services import Started

FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}


def completion_id(started: Started) -> str:
    return f"chatcmpl-{started.run.pk}"


def finish_reason(final: dict) -> str:
    if final.get("tool_calls"):
        return "tool_calls"
    reason = final.get("finish_reason")
    return reason if reason in FINISH_REASONS else "stop"


def usage(final: dict) -> dict:
    reported = final.get("usage") or {}
    prompt = reported.get("prompt_tokens") or 0
    completion = reported.get("completion_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": reported.get("total_tokens") or prompt + completion,
        # as OpenAI sends it: the part of the prompt served from the backend's cache
        "prompt_tokens_details": {"cached_tokens": reported.get("cached_tokens") or 0},
    }


def _tool_calls(final: dict) -> list[dict]:
    return [
        {
            "id": call.get("id") or f"call_{final['run_id']}_{i}",
            "type": "function",
            "function": {
                "name": call.get("function", {}).get("name", ""),
                "arguments": call.get("function", {}).get("arguments", ""),
            },
        }
        for i, call in enumerate(final.get("tool_calls") or [])
    ]


def completion(started: Started, final: dict) -> dict:
    message = {"role": "assistant", "content": final["output"], "refusal": None}
    if final.get("tool_calls"):
        message["tool_calls"] = _tool_calls(final)
        message["content"] = final["output"] or None
    return {
        "id": completion_id(started),
        "object": "chat.completion",
        "created": started.created,
        "model": started.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(final),
            }
        ],
        "usage": usage(final),
        "system_fingerprint": None,
    }


class ChunkWriter:
    """The SSE lines of one streamed completion, in OpenAI's order and framing."""

    def __init__(self, started: Started, *, include_usage: bool):
        self.started = started
        self.include_usage = include_usage

    def _chunk(self, choices: list, **extra) -> str:
        body = {
            "id": completion_id(self.started),
            "object": "chat.completion.chunk",
            "created": self.started.created,
            "model": self.started.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self.include_usage:
            body["usage"] = None
        body.update(extra)
        return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"

    def _delta(self, delta: dict, finish: str | None = None) -> str:
        return self._chunk(
            [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        )

    def first(self) -> str:
        return self._delta({"role": "assistant", "content": "", "refusal": None})

    def text(self, piece: str) -> str:
        return self._delta({"content": piece})

    def end(self, final: dict) -> str:
        """Tool calls (when any), the finish chunk, the usage chunk when asked, [DONE]."""
        parts = []
        for i, call in enumerate(_tool_calls(final)):
            parts.append(self._delta({"tool_calls": [{"index": i, **call}]}))
        parts.append(self._delta({}, finish_reason(final)))
        if self.include_usage:
            parts.append(self._chunk([], usage=usage(final)))
        parts.append("data: [DONE]\n\n")
        return "".join(parts)

    @staticmethod
    def error(error: dict) -> str:
        """A failure after the stream began: OpenAI sends an error event and ends."""
        return f"data: {json.dumps({'error': error}, separators=(',', ':'))}\n\n"
