"""What every backend kind offers the worker: a streamed chat call and a model list.

Errors are normalised into :class:`BackendError` with a ``retryable`` verdict
so the retry and fallback policy lives in one place (the run executor), not in
each client.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass
class CallResult:
    text: str = ""
    tool_calls: list[dict] | None = None
    finish_reason: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None  # part of prompt_tokens served from the backend's cache
    ttft_ms: int | None = None
    emitted: int = 0  # deltas handed to the caller; a retry after this would duplicate output

    @property
    def usage_reported(self) -> bool:
        return self.prompt_tokens is not None and self.completion_tokens is not None


class BackendError(Exception):
    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: str,
        status: int | None = None,
        retry_after: float | None = None,
        partial: CallResult | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code
        self.status = status
        self.retry_after = retry_after
        self.partial = partial or CallResult()


class Cancelled(Exception):
    """The caller asked to stop; carries what was produced so far."""

    def __init__(self, partial: CallResult):
        super().__init__("cancelled")
        self.partial = partial


OnDelta = Callable[[str], None]
ShouldStop = Callable[[], bool]


class ChatClient(Protocol):
    def stream_chat(
        self,
        *,
        model: str,
        messages: list[dict],
        params: dict,
        on_delta: OnDelta,
        should_stop: ShouldStop,
    ) -> CallResult: ...

    def complete_chat(
        self, *, model: str, messages: list[dict], params: dict, should_stop: ShouldStop
    ) -> CallResult:
        """The whole answer at once, for a caller that does not stream."""
        ...

    def list_models(self) -> list[str]: ...
