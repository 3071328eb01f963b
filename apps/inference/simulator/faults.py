"""Faults the simulator can be told to inject, and the queues that hold them.

Tests script failures ("the next call to sim-small gets a 429, then a cut
stream") so retry, fallback and usage-estimation paths run against real HTTP
instead of mocks. Queues are FIFO so a script reads in the order it happens.
"""

import logging
from collections import deque
from dataclasses import dataclass

KINDS = frozenset({"429", "500", "503", "400", "timeout", "cut", "no_usage", "empty", "garbage"})
WITH_SECONDS = frozenset({"429", "timeout"})
GLOBAL = "*"
"""Key of the queue shared by every model, as shown by the pending listing."""


@dataclass(frozen=True)
class Fault:
    kind: str
    seconds: float | None = None
    """Retry-After for ``429``, hang time for ``timeout``; None means the config's value."""

    @property
    def spec(self) -> str:
        if self.seconds is None:
            return self.kind
        return f"{self.kind}:{self.seconds:g}"


def parse_fault(spec: str) -> Fault:
    """``"429"``, ``"429:2.5"``, ``"timeout:5"``, ``"cut"``...; ValueError otherwise."""
    if not isinstance(spec, str):
        raise ValueError(f"a fault is a string, got {type(spec).__name__}")
    kind, _, argument = spec.strip().partition(":")
    if kind not in KINDS:
        raise ValueError(f"unknown fault {spec!r}; known: {', '.join(sorted(KINDS))}")
    if not argument:
        return Fault(kind)
    if kind not in WITH_SECONDS:
        raise ValueError(f"fault {kind!r} takes no argument")
    seconds = float(argument)
    if not seconds >= 0:
        raise ValueError(f"fault {spec!r}: seconds must be >= 0")
    return Fault(kind, seconds)


class FaultQueues:
    """One FIFO per model plus a global one; a model's own queue goes first."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = {}

    def add(self, faults: list[Fault], model: str | None = None) -> None:
        self._queues.setdefault(model or GLOBAL, deque()).extend(faults)

    def pop(self, model: str) -> Fault | None:
        for key in (model, GLOBAL):
            queue = self._queues.get(key)
            if queue:
                return queue.popleft()
        return None

    def clear(self) -> None:
        self._queues.clear()

    def pending(self) -> dict[str, list[str]]:
        return {key: [f.spec for f in queue] for key, queue in self._queues.items() if queue}


class AbortConnection(Exception):
    """Raised by the app to make the ASGI server drop the connection mid-body.

    ASGI has no "reset the connection" message; an exception after the response
    started makes uvicorn close the transport, which is exactly a cut stream.
    """


class _HideAborts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, AbortConnection)


def hide_abort_logs() -> None:
    """Keep deliberate cuts out of uvicorn's error log (real errors still show)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideAborts) for f in logger.filters):
        logger.addFilter(_HideAborts())
