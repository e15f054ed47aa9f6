"""The Drift Analyzer and Knowledge Transfer agents: tools, providers and the agent loop.

``AgentLoop(provider="offline"|"bedrock"|"openai").ask(ToolContext(service, kb), question,
agent="drift"|"transfer")`` answers with citations; see ``loop`` for the rules it enforces
and ``tools`` for what the agents can read.
"""

from westtek_core.agents.loop import (
    AGENTS,
    DRIFT_ANALYZER,
    KNOWLEDGE_TRANSFER,
    AgentLoop,
    AgentSpec,
    Answer,
    DriftAutoAnalyzer,
)
from westtek_core.agents.providers import (
    NOTHING_FOUND,
    BedrockProvider,
    OfflineProvider,
    OpenAIProvider,
    Provider,
    ProviderError,
)
from westtek_core.agents.tools import TOOLS, Citation, Tool, ToolContext, ToolError, ToolResult

__all__ = [
    "AGENTS",
    "DRIFT_ANALYZER",
    "KNOWLEDGE_TRANSFER",
    "NOTHING_FOUND",
    "TOOLS",
    "AgentLoop",
    "AgentSpec",
    "Answer",
    "BedrockProvider",
    "Citation",
    "DriftAutoAnalyzer",
    "OfflineProvider",
    "OpenAIProvider",
    "Provider",
    "ProviderError",
    "Tool",
    "ToolContext",
    "ToolError",
    "ToolResult",
]
