"""The agents: chat, conversations, the lab's knowledge base and its cited cells."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from westtek_core.agents.conversations import ConversationNotFound
from westtek_core.agents.service import AgentService
from westtek_core.kb.lab_client import LabMemoryUnavailable
from westtek_server_ext import models
from westtek_server_ext.handlers.base import Operation, WestTekAPIHandler


class AgentHandler(WestTekAPIHandler):
    """Base of the agents' handlers: the one ``AgentService`` the extension keeps."""

    @property
    def agents(self) -> AgentService:
        """The agents of this server's environment."""
        agents: AgentService = self.settings["westtek_agents"]
        return agents


class ChatHandler(AgentHandler):
    """``POST chat`` streams an agent's answer; ``GET chat`` lists the conversations."""

    operations = {
        "post": Operation(
            "Ask an agent; the answer streams as newline-delimited JSON chunks (start, "
            "tool…, delta…, then done or error), kept in the conversation",
            models.ChatChunk,
            request=models.ChatRequest,
            content_type="application/x-ndjson",
        ),
        "get": Operation("The environment's conversations", models.ConversationList),
    }

    @web.authenticated
    @authorized
    def get(self) -> None:
        """List the conversations of this environment."""
        environment = self.agents.service.environment_id
        self.reply({"conversations": self.agents.conversations.list(environment)})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Answer, one JSON object per line as the agent works."""
        wanted = self.body(models.ChatRequest)
        if not wanted.question.strip():
            raise web.HTTPError(400, "question: ask a question")
        if wanted.conversation_id:
            try:  # before streaming, so an unknown conversation is a plain 404
                await self.run(self.agents.history, wanted.conversation_id)
            except ConversationNotFound as e:
                raise web.HTTPError(404, str(e.args[0])) from e
        self.set_header("Content-Type", "application/x-ndjson; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # proxies must not hold the stream back
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def emit(chunk: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(chunks.put_nowait, chunk)

        work = loop.run_in_executor(
            None, self.agents.chat, wanted.agent, wanted.question, wanted.conversation_id, emit
        )
        work.add_done_callback(lambda _: chunks.put_nowait(None))
        connected = True
        while (chunk := await chunks.get()) is not None:
            connected = connected and await self._send_line(chunk)
        error = work.exception()
        if error is not None:
            self.log.warning("Chat failed: %s", error)
            message = (
                str(error) if isinstance(error, (ValueError, KeyError)) else "the agent failed"
            )
            await self._send_line({"type": "error", "message": message})
        if connected:
            self.finish()

    async def _send_line(self, chunk: dict[str, Any]) -> bool:
        try:
            self.write(json.dumps(chunk, default=str) + "\n")
            await self.flush()
        except StreamClosedError:
            return False  # the reader left; the answer is still kept in the conversation
        return True


class ConversationHandler(AgentHandler):
    """``GET chat/{id}``: one conversation of this environment, with its messages."""

    operations = {"get": Operation("A conversation", models.Conversation)}

    @web.authenticated
    @authorized
    def get(self, conversation_id: str) -> None:
        """Answer the conversation."""
        environment = self.agents.service.environment_id
        try:
            self.reply(self.agents.conversations.get(conversation_id, environment))
        except ConversationNotFound as e:
            raise web.HTTPError(404, str(e.args[0])) from e


class KnowledgeSearchHandler(AgentHandler):
    """``GET kb/search?q=&k=``: the lab's knowledge base searched."""

    operations = {
        "get": Operation(
            "Search the lab's knowledge base",
            models.KBSearchResults,
            query={"q": "the query", "k": "how many passages (5, at most 50)"},
        )
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Answer the best passages."""
        query = self.get_argument("q", "")
        k = self.int_argument("k", 5)
        if not 1 <= k <= 50:
            raise web.HTTPError(400, "query argument k must be between 1 and 50")
        self.reply(await self.run(self.agents.search, query, k))


class PreservedCellHandler(AgentHandler):
    """``GET kb/cell``: a cell the lab's memory cited, from the snapshot that holds it."""

    operations = {
        "get": Operation(
            "A cited cell of the lab's memory (through the hub service)",
            models.PreservedCell,
            query={
                "environment_id": "the citation's environment",
                "snapshot_id": "the citation's snapshot",
                "path": "the notebook's path in the snapshot",
                "cell": "the cell, from 0",
            },
        )
    }

    @web.authenticated
    @authorized
    async def get(self) -> None:
        """Ask the hub service for the cell, with this server's token."""
        wanted = [self.get_argument(name, "") for name in ("environment_id", "snapshot_id", "path")]
        if not all(wanted):
            raise web.HTTPError(400, "give environment_id, snapshot_id and path")
        cell = self.int_argument("cell", 0, maximum=100_000)
        try:
            found = await self.run(self.agents.preserved_cell, *wanted, cell)
        except LabMemoryUnavailable as e:
            raise web.HTTPError(404 if e.status in (403, 404) else 502, str(e)) from None
        self.reply(found)
