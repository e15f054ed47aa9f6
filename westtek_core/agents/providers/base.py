"""The provider interface: a provider-neutral conversation, and one turn of it.

A provider takes the conversation so far (the user's question, the tool calls made and
their results) and answers one *turn*: either tool calls to make next, or the final text.
The agent loop (``westtek_core.agents.loop``) does everything else — running tools,
refusing write tools, timeouts, citations — so a provider is only a protocol adapter.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from traitlets import Float
from traitlets.config import LoggingConfigurable

from westtek_core.agents.tools import Citation, Tool, ToolResult

NOTHING_FOUND = "I found nothing in the lab's material that answers this."


@dataclass(frozen=True)
class ToolCall:
    """A model's request to run one tool."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class Message:
    """One message of a conversation: the user's, the assistant's, or a tool's result."""

    role: str  # user | assistant | tool
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str = ""
    name: str = ""
    result: ToolResult | None = None
    """A tool message's structured result (the offline provider composes from it)."""
    error: bool = False


@dataclass
class Turn:
    """What a provider answers: tool calls to make, or the final text."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    citations: list[Citation] | None = None
    """Set by providers that know exactly what supports the text (offline)."""


class ProviderError(Exception):
    """The model could not be reached or answered nonsense; the message says which."""


class ProviderTimeout(ProviderError):
    """The model did not answer in time."""


class Provider(LoggingConfigurable):
    """Base of the model providers: one turn of a conversation with tools."""

    request_timeout = Float(
        60.0,
        config=True,
        help="Seconds to wait for one answer of the model before giving up on it.",
    )

    def complete(
        self,
        system: str,
        messages: Sequence[Message],
        tools: Sequence[Tool],
        timeout: float,
    ) -> Turn:
        """Answer one turn within ``timeout`` seconds; raise :class:`ProviderError` else."""
        raise NotImplementedError

    def _timeout(self, remaining: float) -> float:
        return max(0.1, min(self.request_timeout, remaining))


def env_default(name: str, fallback: str) -> Callable[[Any], str]:
    """A trait default: the environment variable ``name``, else ``fallback``."""
    return lambda _provider: os.environ.get(name, fallback)
