"""The durable outbox of drift events, and the dispatcher that delivers it.

:class:`Outbox` is a SQLite file holding one row per (sink, event): enqueueing is a local
insert, so publishing never waits for a sink, and rows survive a crash or restart.
:class:`Dispatcher` delivers each sink's rows in order (one thread per sink, so a slow sink
delays only itself), backing off exponentially while the sink fails, until a row is older
than ``max_age``: then it is marked dead and logged. Delivery is at least once: a row is
*claimed* by pushing its next attempt out by a lease before sending, so two processes
sharing the file do not send it twice, and a crash mid-send retries it after the lease.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets import Float
from traitlets.config import LoggingConfigurable

from westtek_core.notify.sinks import EventSink
from westtek_core.paths import claim_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    event_key TEXT NOT NULL,
    body TEXT NOT NULL,
    created REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_error TEXT,
    finished REAL,
    UNIQUE (sink, event_key)
);
CREATE INDEX IF NOT EXISTS outbox_queue ON outbox (sink, state, seq);
"""
_COLUMNS = "seq, sink, body, created, state, attempts, next_attempt, last_error"


def event_key(event: Mapping[str, Any]) -> str:
    """Identity of an event by content: the hash of its canonical JSON."""
    canonical = json.dumps(dict(event), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class OutboxEntry:
    """One event waiting for (or done with) one sink."""

    seq: int
    sink: str
    event: dict[str, Any]
    created: float
    state: str  # pending | delivered | dead
    attempts: int
    next_attempt: float
    last_error: str | None


class Outbox:
    """Events queued per sink in a SQLite file; safe across threads and processes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=10
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # a process crash loses nothing in WAL mode; only a power cut may lose the last rows
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        claim_database(self._db)

    def enqueue(
        self, event: Mapping[str, Any], sinks: Iterable[str], now: float | None = None
    ) -> int:
        """Queue ``event`` for each named sink; return how many rows were new.

        The same event (by content) queued twice for a sink is stored once.
        """
        now = time.time() if now is None else now
        body = json.dumps(dict(event), sort_keys=True, default=str)
        key = event_key(event)
        rows = [(sink, key, body, now, now) for sink in sinks]
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO outbox (sink, event_key, body, created, next_attempt)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._db.total_changes - before

    def claim_next(self, sink: str, now: float, lease: float) -> OutboxEntry | None:
        """The sink's oldest pending row if it is due, pushed ``lease`` seconds out; else None.

        Only the head of a sink's queue is ever claimed, which keeps each sink in order.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    f"SELECT {_COLUMNS} FROM outbox WHERE sink = ? AND state = 'pending' "
                    "ORDER BY seq LIMIT 1",
                    (sink,),
                ).fetchone()
                if row is None or row[6] > now:
                    self._db.execute("COMMIT")
                    return None
                self._db.execute(
                    "UPDATE outbox SET next_attempt = ? WHERE seq = ?", (now + lease, row[0])
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return _entry(row)

    def mark_delivered(self, seq: int, now: float) -> None:
        """Record a successful delivery."""
        self._update(
            "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, finished = ?,"
            " last_error = NULL WHERE seq = ?",
            (now, seq),
        )

    def mark_failed(self, seq: int, error: str, next_attempt: float) -> None:
        """Record a failed attempt and when to try again."""
        self._update(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt = ?"
            " WHERE seq = ?",
            (error, next_attempt, seq),
        )

    def mark_dead(self, seq: int, error: str, now: float) -> None:
        """Give up on a row: it stays in the file, out of the queue."""
        self._update(
            "UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ?,"
            " finished = ? WHERE seq = ?",
            (error, now, seq),
        )

    def entries(self, sink: str | None = None, state: str | None = None) -> list[OutboxEntry]:
        """Rows oldest first, optionally of one sink and/or one state."""
        clauses, args = [], []
        for column, value in (("sink", sink), ("state", state)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox{where} ORDER BY seq", args
            ).fetchall()
        return [_entry(row) for row in rows]

    def next_due(self, sink: str) -> float | None:
        """When the sink's queue head is due, or None when nothing is pending."""
        with self._lock:
            row = self._db.execute(
                "SELECT next_attempt FROM outbox WHERE sink = ? AND state = 'pending' "
                "ORDER BY seq LIMIT 1",
                (sink,),
            ).fetchone()
        return None if row is None else float(row[0])

    def pending_sinks(self) -> set[str]:
        """Names of the sinks that have rows waiting."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT sink FROM outbox WHERE state = 'pending'"
            ).fetchall()
        return {str(r[0]) for r in rows}

    def prune(self, before: float) -> int:
        """Forget delivered rows finished before ``before``; return how many."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM outbox WHERE state = 'delivered' AND finished < ?", (before,)
            )
        return cursor.rowcount

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def _update(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute(sql, args)


def _entry(row: Sequence[Any]) -> OutboxEntry:
    return OutboxEntry(
        seq=int(row[0]),
        sink=str(row[1]),
        event=json.loads(row[2]),
        created=float(row[3]),
        state=str(row[4]),
        attempts=int(row[5]),
        next_attempt=float(row[6]),
        last_error=row[7],
    )


class Dispatcher(LoggingConfigurable):
    """Deliver an outbox to its sinks: in order per sink, with exponential backoff."""

    initial_delay = Float(
        5.0, config=True, help="Seconds before the first retry of a failed delivery."
    )
    max_delay = Float(
        900.0, config=True, help="Longest wait between retries (the backoff doubles up to it)."
    )
    max_age = Float(
        7 * 86400.0,
        config=True,
        help="Seconds after which an undelivered event is given up (marked dead and logged).",
    )
    lease = Float(
        120.0,
        config=True,
        help="Seconds a claimed event is reserved for the delivering thread; after a crash "
        "mid-delivery it is retried once this has passed. Keep it above the sinks' timeouts.",
    )
    keep_delivered = Float(
        86400.0, config=True, help="Seconds delivered rows stay in the outbox file before pruning."
    )
    poll_interval = Float(
        30.0,
        config=True,
        help="Longest sleep of an idle delivery thread: events another process enqueued "
        "are picked up at least this often.",
    )

    def __init__(self, outbox: Outbox, sinks: Sequence[EventSink], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.outbox = outbox
        self.sinks = {sink.name: sink for sink in sinks}
        self._stopping = threading.Event()
        self._wake = {name: threading.Event() for name in self.sinks}
        self._threads: list[threading.Thread] = []

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th consecutive failure (1-based)."""
        return float(min(self.max_delay, self.initial_delay * 2 ** max(attempts - 1, 0)))

    def deliver_pending(self, now: float | None = None, sink: str | None = None) -> int:
        """Deliver every due row (of one sink, or all), synchronously; return how many."""
        delivered = 0
        for name in [sink] if sink is not None else list(self.sinks):
            delivered += self._deliver_sink(self.sinks[name], now, None)
        return delivered

    def _deliver_sink(
        self, sink: EventSink, now: float | None, stop: threading.Event | None
    ) -> int:
        delivered = 0
        while stop is None or not stop.is_set():
            moment = time.time() if now is None else now
            entry = self.outbox.claim_next(sink.name, moment, self.lease)
            if entry is None:
                break
            try:
                sink.deliver(entry.event)
            except Exception as exc:
                if not self._failed(sink, entry, exc, time.time() if now is None else now):
                    break  # the head stays pending: later events wait behind it, in order
                continue
            self.outbox.mark_delivered(entry.seq, time.time() if now is None else now)
            delivered += 1
        moment = time.time() if now is None else now
        self.outbox.prune(moment - self.keep_delivered)
        return delivered

    def _failed(self, sink: EventSink, entry: OutboxEntry, exc: Exception, now: float) -> bool:
        """Record a failure; True when the row was given up (the queue may move on)."""
        error = f"{type(exc).__name__}: {exc}"
        if now - entry.created >= self.max_age:
            self.outbox.mark_dead(entry.seq, error, now)
            self.log.error(
                "Giving up on event %s for sink %s after %d attempts over %.0f s: %s",
                entry.event.get("id"),
                sink.name,
                entry.attempts + 1,
                now - entry.created,
                error,
            )
            return True
        delay = self.backoff(entry.attempts + 1)
        self.outbox.mark_failed(entry.seq, error, now + delay)
        self.log.warning(
            "Sink %s could not take event %s (attempt %d), retrying in %.0f s: %s",
            sink.name,
            entry.event.get("id"),
            entry.attempts + 1,
            delay,
            error,
        )
        return False

    def wake(self) -> None:
        """Tell the delivery threads new rows are waiting."""
        for event in self._wake.values():
            event.set()

    @property
    def running(self) -> bool:
        """Whether delivery threads are running."""
        return any(thread.is_alive() for thread in self._threads)

    def start(self) -> None:
        """Start one daemon delivery thread per sink (idempotent)."""
        if self.running:
            return
        orphans = self.outbox.pending_sinks() - set(self.sinks)
        if orphans:
            self.log.warning(
                "Outbox %s holds events for sinks no longer configured: %s",
                self.outbox.path,
                ", ".join(sorted(orphans)),
            )
        self._stopping.clear()
        self._threads = [
            threading.Thread(
                target=self._run, args=(name,), name=f"westtek-notify-{name}", daemon=True
            )
            for name in self.sinks
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the delivery threads; undelivered rows stay in the outbox for next time."""
        self._stopping.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
            if thread.is_alive():
                self.log.warning("Delivery thread %s is still sending; left behind", thread.name)
        self._threads = []

    def _run(self, name: str) -> None:
        wake = self._wake[name]
        while not self._stopping.is_set():
            wake.clear()  # before looking, so an enqueue during the pass is not missed
            try:
                self._deliver_sink(self.sinks[name], None, self._stopping)
                due = self.outbox.next_due(name)
            except Exception:
                self.log.exception("Delivery to sink %s failed unexpectedly", name)
                due = None
            wait = self.poll_interval if due is None else due - time.time()
            wake.wait(min(max(wait, 0.01), self.poll_interval))
