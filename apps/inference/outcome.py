"""A finished run as one message: what the worker sends its caller and watchers.

Its own module so that web code (the gateway, the WebSockets, the SSE endpoint)
serialises a run without importing the worker's executor.
"""

from apps.inference.models import ChatRun
from apps.usage import ledger as usage_ledger


def final_message(run: ChatRun, usage_records=None) -> dict:
    """``usage_records``: the ledger rows of the run's attempts (the worker passes the ones
    it just wrote, so the cost costs no query); without them ``cost`` is None."""
    return {
        "type": "run.done",
        "run_id": run.pk,
        "status": run.status,
        "output": run.output,
        "tool_calls": run.tool_calls,
        "finish_reason": run.finish_reason,
        "usage": {
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
            "total_tokens": run.total_tokens,
            "cached_tokens": run.cached_tokens,
            "estimated": run.usage_estimated,
        },
        "latency_ms": run.latency_ms,
        "ttft_ms": run.ttft_ms,
        "model": run.served_model or run.model,
        "prompt_version": run.prompt_version.number if run.prompt_version_id else None,
        "error": run.error,
        "error_code": run.error_code,
        "cost": None if usage_records is None else usage_ledger.billed_cost(usage_records),
    }
