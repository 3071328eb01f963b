"""The registry of backend kinds: what each needs and which client speaks it."""

from dataclasses import dataclass

from apps.inference.backends.base import BackendError, CallResult, Cancelled, ChatClient
from apps.inference.models import Backend, BackendKind


@dataclass(frozen=True)
class KindSpec:
    label: str
    needs_api_key: bool
    needs_base_url: bool
    needs_azure: bool
    development_only: bool
    lists_models: bool


KINDS: dict[str, KindSpec] = {
    BackendKind.OPENAI: KindSpec("OpenAI", True, False, False, False, True),
    BackendKind.AZURE_OPENAI: KindSpec("Azure OpenAI", True, False, True, False, False),
    BackendKind.OPENAI_COMPATIBLE: KindSpec(
        "OpenAI-compatible (NIM, vLLM, Ollama, llama.cpp, LM Studio)",
        False,
        True,
        False,
        False,
        True,
    ),
    BackendKind.LOCAL: KindSpec("Local development backend", False, False, False, True, True),
}


def client_for(backend: Backend) -> ChatClient:
    if backend.kind == BackendKind.LOCAL:
        from apps.inference.backends.local import LocalChatClient

        return LocalChatClient(backend)
    from apps.inference.backends.openai_kinds import OpenAIChatClient

    return OpenAIChatClient(backend)


__all__ = ["KINDS", "BackendError", "CallResult", "Cancelled", "KindSpec", "client_for"]
