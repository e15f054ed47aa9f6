"""The agents as one object for a notebook server: chat, conversations, search, auto-analysis.

The server extension keeps one ``AgentService`` beside its ``EnvironmentService``. It opens
the lab's knowledge base per request (in the worker thread that uses it), keeps each
environment's conversations, and, when ``auto_analyze`` is on, has the Drift Analyzer
assess every CRITICAL drift event as it happens.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traitlets import Bool, Unicode, default
from traitlets.config import LoggingConfigurable

from westtek_core.agents.conversations import ConversationStore
from westtek_core.agents.loop import AGENTS, AgentLoop, Chunk, DriftAutoAnalyzer
from westtek_core.agents.tools import SearchIndex, ToolContext
from westtek_core.agents.tools.knowledge import search_knowledge_base
from westtek_core.environment_service import EnvironmentService
from westtek_core.kb.lab_client import LabMemoryClient, LabMemoryUnavailable
from westtek_core.paths import data_dir

if TYPE_CHECKING:  # the knowledge base is an optional part of an install
    from westtek_core.kb.backend import KnowledgeIndexBackend


def default_kb_path() -> Path:
    """The lab's knowledge-base index when none is configured."""
    try:
        from westtek_core.kb import default_index_path
    except ImportError:  # the knowledge base is an optional part of an install
        return data_dir() / "kb" / "index.sqlite"
    return Path(default_index_path())


def open_knowledge_base(
    path: Path, backend: KnowledgeIndexBackend | None = None, environment: str = ""
) -> SearchIndex | None:
    """The lab's knowledge base (``path`` on ``backend``), or None when it is not built yet.

    ``environment`` is whose documents are one's own on a Bedrock knowledge base.
    """
    from westtek_core.kb import KnowledgeIndexBackend

    backend = backend or KnowledgeIndexBackend()
    if not backend.is_built(path):
        return None
    kb: SearchIndex = backend.open_knowledge_base(path, environment)
    return kb


class AgentService(LoggingConfigurable):
    """Chat with the agents over one environment, and analyse its critical drift."""

    index_path = Unicode(
        config=True,
        help="This lab's knowledge-base index (one per lab: nothing of another lab's can "
        "be retrieved through it). Default: the knowledge base's default index path.",
    )

    @default("index_path")
    def _default_index_path(self) -> str:
        return str(self.service.kb_index or default_kb_path())

    auto_analyze = Bool(
        True,
        config=True,
        help="Run the Drift Analyzer on every CRITICAL drift event and store its risk "
        "assessment with the event.",
    )

    lab_memory = Bool(
        True,
        config=True,
        help="Under JupyterHub, search the lab's memory on the West Tek hub service too: "
        "what every researcher of the lab preserved in snapshots, which outlives their "
        "servers. The hub sink's address and this server's token are used.",
    )

    conversations_path = Unicode(
        config=True,
        help="SQLite file of the chat conversations. Default: conversations.sqlite in "
        "West Tek's data directory.",
    )

    @default("conversations_path")
    def _default_conversations_path(self) -> str:
        return str(data_dir() / "conversations.sqlite")

    def __init__(self, service: EnvironmentService, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service = service
        self.loop = AgentLoop(parent=self)
        self.conversations = ConversationStore(Path(self.conversations_path))
        self.analyzer = DriftAutoAnalyzer(self.loop, self.context)
        self.lab_memory_client = LabMemoryClient.under_jupyterhub() if self.lab_memory else None
        self._unsubscribe: Callable[[], None] | None = None

    def context(self) -> ToolContext:
        """A fresh tool context (and knowledge-base connection) for one request."""
        return ToolContext(
            self.service,
            open_knowledge_base(
                Path(self.index_path), self.service.kb_backend, self.service.environment_id
            ),
            self.lab_memory_client,
        )

    def start(self) -> None:
        """Start analysing critical drift events, if configured."""
        if self.auto_analyze and self._unsubscribe is None:
            self._unsubscribe = self.service.subscribe(self.analyzer)

    def stop(self) -> None:
        """Stop listening, and close the conversations."""
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None
        self.analyzer.stop()
        self.conversations.close()

    def history(self, conversation_id: str) -> list[tuple[str, str]]:
        """A conversation's turns (raises ``ConversationNotFound`` outside this environment)."""
        return self.conversations.history(conversation_id, self.service.environment_id)

    def chat(
        self,
        agent: str,
        question: str,
        conversation_id: str | None,
        emit: Callable[[Chunk], None],
    ) -> dict[str, Any]:
        """Answer in a conversation (a new one without ``conversation_id``), streaming."""
        if agent not in AGENTS:
            raise ValueError(f"unknown agent {agent!r}: use one of {', '.join(AGENTS)}")
        if not question.strip():
            raise ValueError("ask a question")
        environment = self.service.environment_id
        if conversation_id:
            history = self.history(conversation_id)
        else:
            history = []
            conversation_id = self.conversations.create(environment, agent, question.strip())
        emit({"type": "start", "conversation_id": conversation_id, "agent": agent})

        def tagged(chunk: Chunk) -> None:
            emit(
                {**chunk, "conversation_id": conversation_id} if chunk["type"] == "done" else chunk
            )

        ctx = self.context()
        try:
            answer = self.loop.ask(ctx, question, agent, history, emit=tagged)
        finally:
            ctx.close()
        self.conversations.append(conversation_id, environment, "user", question)
        self.conversations.append(
            conversation_id,
            environment,
            "assistant",
            answer.answer,
            [c.to_json() for c in answer.citations],
            answer.tools_called,
        )
        return {"conversation_id": conversation_id, **answer.to_json()}

    def preserved_cell(
        self, environment_id: str, snapshot_id: str, path: str, cell: int
    ) -> dict[str, Any]:
        """A cell the lab's memory cited, read by the hub service from the lab's snapshot.

        Raises ``LabMemoryUnavailable`` (outside JupyterHub, or when the hub refuses).
        """
        if self.lab_memory_client is None:
            raise LabMemoryUnavailable("this server is not under JupyterHub: no lab memory", 404)
        return self.lab_memory_client.cell(environment_id, snapshot_id, path, cell)

    def search(self, query: str, k: int = 5) -> dict[str, Any]:
        """The best passages for ``query``: the lab's memory and this workspace's index."""
        if not query.strip():
            raise ValueError("give a query: ?q=…")
        ctx = self.context()
        try:
            return search_knowledge_base(ctx, {"query": query, "k": k}).data
        finally:
            ctx.close()
