"""The agents' model providers: offline (the default), Amazon Bedrock and OpenAI-compatible.

A provider takes the conversation so far (the user's question, the tool calls made and
their results) and answers one *turn*: either tool calls to make next, or the final text.
The agent loop (``westtek_core.agents.loop``) does everything else — running tools,
refusing write tools, timeouts, citations — so a provider is only a protocol adapter.

``offline`` needs no model and no network: it plans tool calls from the question's intent
keywords, then composes the answer only from the tools' facts and the retrieved passages
that bear on the question, each sentence with its citations; when nothing does, it says so.
``bedrock`` speaks the Bedrock Runtime Converse API with ``toolConfig`` through boto3;
``openai`` speaks ``/v1/chat/completions`` with ``tools`` (vLLM, Ollama, llama.cpp server)
through the standard library.

Modules: ``base`` (the conversation and the :class:`Provider` interface), ``questions``
(reading a question without a model), ``evidence`` (what the tools' results say about
now), one module per backend, and ``PROVIDERS`` here.
"""

from westtek_core.agents.providers.base import (
    NOTHING_FOUND,
    Message,
    Provider,
    ProviderError,
    ProviderTimeout,
    ToolCall,
    Turn,
)
from westtek_core.agents.providers.bedrock import BedrockProvider
from westtek_core.agents.providers.evidence import (
    live_versions,
    risk_assessment,
    states_stale_version,
)
from westtek_core.agents.providers.offline import OfflineProvider
from westtek_core.agents.providers.openai import OpenAIProvider
from westtek_core.agents.providers.questions import (
    asks_about_drift,
    authorizes_writes,
    drift_arguments,
    package_mentions,
    relevance,
    words,
)

PROVIDERS: dict[str, type[Provider]] = {
    "offline": OfflineProvider,
    "bedrock": BedrockProvider,
    "openai": OpenAIProvider,
}
"""Provider short names, as ``AgentLoop.provider`` accepts them."""

__all__ = [
    "NOTHING_FOUND",
    "PROVIDERS",
    "BedrockProvider",
    "Message",
    "OfflineProvider",
    "OpenAIProvider",
    "Provider",
    "ProviderError",
    "ProviderTimeout",
    "ToolCall",
    "Turn",
    "asks_about_drift",
    "authorizes_writes",
    "drift_arguments",
    "live_versions",
    "package_mentions",
    "relevance",
    "risk_assessment",
    "states_stale_version",
    "words",
]
