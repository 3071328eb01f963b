"""What an assistant sends before the conversation: its instructions, rendered.

Resolved at every message, so an assistant on a label picks up a promotion
(or a rollback) on its very next answer, and a pinned one never changes.
"""

from dataclasses import dataclass, field

from apps.assistants.models import Assistant, InstructionsSource
from apps.core.errors import NotFound
from apps.prompts import rendering
from apps.prompts import selectors as prompt_selectors


@dataclass
class Resolved:
    messages: list[dict]
    prompt_version: object | None = None  # PromptVersion when the instructions come from a prompt
    parameters: dict = field(default_factory=dict)  # the prompt version's defaults
    extra_variables: list[str] = field(default_factory=list)


def prompt_version_for(assistant: Assistant):
    """The prompt version the assistant would use right now, or None for inline text."""
    if assistant.instructions_source == InstructionsSource.LABEL:
        if assistant.prompt is None:
            raise NotFound("The assistant's prompt no longer exists.", param="prompt")
        return prompt_selectors.version_by_label(assistant.prompt, assistant.prompt_label)
    if assistant.instructions_source == InstructionsSource.PINNED:
        if assistant.prompt_version is None:
            raise NotFound(
                "The assistant's pinned prompt version no longer exists.", param="prompt_version"
            )
        return assistant.prompt_version
    return None


def resolve(
    assistant: Assistant, *, variables: dict | None = None, draft: str | None = None, version=None
) -> Resolved:
    """Render the instructions. ``draft`` tries unsaved instruction text; ``version``
    overrides which prompt version is used (the playground's compare)."""
    variables = variables or {}
    if draft is not None:
        rendered = rendering.render_draft(draft, [], variables)
        return Resolved(rendered.messages, None, {}, rendered.extra)
    version = version or prompt_version_for(assistant)
    if version is None:
        rendered = rendering.render_draft(assistant.instructions, [], variables)
        return Resolved(rendered.messages, None, {}, rendered.extra)
    rendered = rendering.render(version, variables)
    return Resolved(rendered.messages, version, dict(version.parameters or {}), rendered.extra)
