"""Lock objects under ``locks/``: writers share, prune is exclusive.

A lock is an object written once like any other; "refreshing" writes a new one and removes
the old. A lock is stale, and ignored, when older than :data:`STALE_AFTER` seconds or when
it names a process on this host that no longer exists.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass

from westtek_core.store.backend import StoreBackend
from westtek_core.store.crypto import Crypto
from westtek_core.store.errors import ObjectCorrupt, ObjectMissing, StoreLockedError

STALE_AFTER = 30 * 60
REFRESH_AFTER = 5 * 60
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockInfo:
    """What a lock object records."""

    key: str
    time: float
    pid: int
    hostname: str
    exclusive: bool
    purpose: str

    def is_stale(self, now: float) -> bool:
        """Older than :data:`STALE_AFTER`, or held by a process of this host that is gone."""
        if now - self.time > STALE_AFTER:
            return True
        if self.hostname == socket.gethostname() and self.pid != os.getpid():
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return False

    def describe(self, now: float) -> str:
        """E.g. ``a writer (pid 12 on host-a, lock 3 s old)``."""
        who = "a prune" if self.exclusive else f"a {self.purpose}"
        return f"{who} (pid {self.pid} on {self.hostname}, lock {now - self.time:.0f} s old)"


class StoreLock:
    """A lock this process holds; :meth:`acquire` it, :meth:`release` it."""

    def __init__(self, backend: StoreBackend, crypto: Crypto, exclusive: bool, purpose: str):
        self._backend = backend
        self._crypto = crypto
        self.exclusive = exclusive
        self.purpose = purpose
        self.key: str | None = None
        self._written = 0.0

    def _write(self) -> str:
        key = f"locks/{secrets.token_hex(16)}"
        self._written = time.time()
        body = {
            "time": self._written,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "exclusive": self.exclusive,
            "purpose": self.purpose,
        }
        self._backend.save(key, self._crypto.seal(json.dumps(body).encode()))
        return key

    def acquire(self, wait: float = 0.0) -> StoreLock:
        """Write the lock, then back off with :class:`StoreLockedError` if another conflicts.

        With ``wait`` > 0, retry once a second for that many seconds before giving up.
        """
        deadline = time.monotonic() + wait
        while True:
            self.key = self._write()
            conflict = self._first_conflict()
            if conflict is None:
                return self
            self.release()
            if time.monotonic() >= deadline:
                now = time.time()
                action = "prune" if self.exclusive else f"start a {self.purpose}"
                raise StoreLockedError(
                    f"cannot {action}: the store at {self._backend.url} is in use by"
                    f" {conflict.describe(now)}; try again when it has finished"
                    f" (a lock older than {STALE_AFTER // 60} min is ignored)"
                )
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def _first_conflict(self) -> LockInfo | None:
        now = time.time()
        for info in read_locks(self._backend, self._crypto):
            if info.key == self.key or info.is_stale(now):
                continue
            if self.exclusive or info.exclusive:
                return info
        return None

    def refresh_if_due(self) -> None:
        """Replace the lock by a new one when it is older than :data:`REFRESH_AFTER`."""
        if self.key is not None and time.time() - self._written > REFRESH_AFTER:
            old, self.key = self.key, self._write()
            self._backend.remove(old)

    def release(self) -> None:
        """Remove the lock object (idempotent)."""
        key, self.key = self.key, None
        if key is not None:
            try:
                self._backend.remove(key)
            except Exception as exc:  # releasing must not mask the error that got us here
                log.warning("could not remove lock %s: %s", key, exc)


def read_locks(backend: StoreBackend, crypto: Crypto) -> list[LockInfo]:
    """Every readable lock in the store (unreadable ones are logged and skipped)."""
    infos = []
    for key in backend.list("locks/"):
        try:
            doc = json.loads(crypto.unseal(backend.load(key), key))
            infos.append(
                LockInfo(
                    key=key,
                    time=float(doc["time"]),
                    pid=int(doc["pid"]),
                    hostname=str(doc["hostname"]),
                    exclusive=bool(doc["exclusive"]),
                    purpose=str(doc.get("purpose", "writer")),
                )
            )
        except ObjectMissing:
            continue  # released while we listed
        except (ObjectCorrupt, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable lock %s: %s", key, exc)
    return infos
