"""The built-in development backend: offline, no credentials, deterministic.

It is not a model. Its one model, ``local-echo``, says the last user message
back ("You said: ..."), a word a token, streamed at
``LOCAL_BACKEND_TOKENS_PER_SECOND`` with usage reported, so the embedded default
exercises the same run path as a real backend and a newcomer sees their own words
come back. Its runs are never priced as a commercial model (``usage.pricing``).
"""

import time

from django.conf import settings

from apps.inference import textgen, tokens
from apps.inference.backends.base import CallResult, Cancelled, OnDelta, ShouldStop

LOCAL_MODELS = ["local-echo"]


class LocalChatClient:
    def __init__(self, backend=None, *, tokens_per_second: float | None = None):
        self.tokens_per_second = (
            settings.LOCAL_BACKEND_TOKENS_PER_SECOND
            if tokens_per_second is None
            else tokens_per_second
        )

    def list_models(self) -> list[str]:
        return list(LOCAL_MODELS)

    def stream_chat(
        self,
        *,
        model: str,
        messages: list[dict],
        params: dict,
        on_delta: OnDelta,
        should_stop: ShouldStop,
    ) -> CallResult:
        max_tokens = params.get("max_completion_tokens") or params.get("max_tokens")
        pieces = textgen.echo_pieces(messages, max_tokens=max_tokens)
        result = CallResult(prompt_tokens=tokens.estimate_messages_tokens(messages))
        started = time.monotonic()
        delay = 1 / self.tokens_per_second if self.tokens_per_second > 0 else 0
        for piece in pieces:
            if should_stop():
                result.completion_tokens = result.emitted
                raise Cancelled(result)
            if delay:
                time.sleep(delay)
            if result.ttft_ms is None:
                result.ttft_ms = int((time.monotonic() - started) * 1000)
            result.text += piece
            result.emitted += 1
            on_delta(piece)
        result.completion_tokens = len(pieces)
        result.finish_reason = textgen.finish_reason_for(
            pieces, max_tokens, textgen.echo_length(messages)
        )
        return result

    def complete_chat(
        self, *, model: str, messages: list[dict], params: dict, should_stop: ShouldStop
    ) -> CallResult:
        """The same answer for a caller that does not stream: nothing is relayed."""
        return self.stream_chat(
            model=model,
            messages=messages,
            params=params,
            on_delta=lambda _delta: None,
            should_stop=should_stop,
        )
