"""Chat conversations, kept per environment in SQLite in the user's data directory.

The chat panel shows an environment's past conversations and continues one: each turn
(the question, the answer with its citations and tools) is appended here. A conversation
belongs to one environment; asking for it from another environment finds nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from westtek_core.paths import claim_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_environment
    ON conversations (environment_id, updated);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    time REAL NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    citations TEXT NOT NULL DEFAULT '[]',
    tools_called TEXT NOT NULL DEFAULT '[]'
);
"""


class ConversationNotFound(KeyError):
    """No such conversation in this environment."""


class ConversationStore:
    """Conversations and their messages; safe across threads."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        claim_database(self._db)

    def create(self, environment_id: str, agent: str, title: str) -> str:
        """Start a conversation; returns its id."""
        conversation_id = uuid.uuid4().hex
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)",
                (conversation_id, environment_id, agent, title[:120], now, now),
            )
        return conversation_id

    def _check(self, conversation_id: str, environment_id: str) -> dict[str, Any]:
        row = self._db.execute(
            "SELECT id, agent, title, created, updated FROM conversations "
            "WHERE id = ? AND environment_id = ?",
            (conversation_id, environment_id),
        ).fetchone()
        if row is None:
            raise ConversationNotFound(
                f"no conversation {conversation_id} in environment {environment_id}"
            )
        return dict(zip(("id", "agent", "title", "created", "updated"), row, strict=True))

    def append(
        self,
        conversation_id: str,
        environment_id: str,
        role: str,
        content: str,
        citations: list[dict[str, str]] | None = None,
        tools_called: list[str] | None = None,
    ) -> None:
        """Add one message to a conversation of this environment."""
        now = time.time()
        with self._lock:
            self._check(conversation_id, environment_id)
            self._db.execute(
                "INSERT INTO messages (conversation_id, time, role, content, citations,"
                " tools_called) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    now,
                    role,
                    content,
                    json.dumps(citations or []),
                    json.dumps(tools_called or []),
                ),
            )
            self._db.execute(
                "UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id)
            )

    def get(self, conversation_id: str, environment_id: str) -> dict[str, Any]:
        """A conversation of this environment with its messages, oldest first."""
        with self._lock:
            conversation = self._check(conversation_id, environment_id)
            rows = self._db.execute(
                "SELECT time, role, content, citations, tools_called FROM messages "
                "WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        conversation["messages"] = [
            {
                "time": r[0],
                "role": r[1],
                "content": r[2],
                "citations": json.loads(r[3]),
                "tools_called": json.loads(r[4]),
            }
            for r in rows
        ]
        return conversation

    def history(self, conversation_id: str, environment_id: str) -> list[tuple[str, str]]:
        """The (role, text) pairs of a conversation, for the agent loop."""
        return [
            (m["role"], m["content"]) for m in self.get(conversation_id, environment_id)["messages"]
        ]

    def list(self, environment_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The environment's conversations, most recent first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, agent, title, created, updated FROM conversations "
                "WHERE environment_id = ? ORDER BY updated DESC LIMIT ?",
                (environment_id, limit),
            ).fetchall()
        return [
            dict(zip(("id", "agent", "title", "created", "updated"), r, strict=True)) for r in rows
        ]

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
