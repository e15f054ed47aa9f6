"""The audit log: append-only, each entry carrying the hash of the one before.

An entry's hash covers its own fields and the previous hash, so editing, deleting or
reordering any entry breaks every hash after it; ``verify_chain`` finds the first break.
Appends are serialised (a process lock, plus a transaction-scoped advisory lock on
PostgreSQL) so two writers never chain onto the same predecessor.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from westtek_hub.models import AuditEntry

GENESIS = "0" * 64
_APPEND_LOCK = threading.Lock()
_PG_LOCK_KEY = 0x57E57E4  # any constant: the advisory lock of the audit chain
EXPORT_FIELDS = (
    "seq",
    "time",
    "actor",
    "action",
    "target",
    "lab_id",
    "outcome",
    "detail",
    "prev_hash",
    "hash",
)


def _timestamp(value: datetime) -> str:
    # SQLite hands back naive datetimes: they were stored as UTC
    aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _content(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "time": _timestamp(entry.time),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "lab_id": entry.lab_id,
        "outcome": entry.outcome,
        "detail": entry.detail,
        "prev_hash": entry.prev_hash,
    }


def entry_hash(entry: AuditEntry) -> str:
    """The hash of an entry's content and its predecessor's hash."""
    canonical = json.dumps(_content(entry), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def append(
    session: Session,
    actor: str,
    action: str,
    target: str = "",
    *,
    lab_id: str | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Chain a new entry onto the log, in ``session``'s transaction (committed by the caller)."""
    with _APPEND_LOCK:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).first()
        entry = AuditEntry(
            seq=(last.seq + 1) if last else 1,
            time=datetime.now(timezone.utc),
            actor=actor,
            action=action,
            target=target,
            lab_id=lab_id,
            outcome=outcome,
            detail=detail or {},
            prev_hash=last.hash if last else GENESIS,
        )
        entry.hash = entry_hash(entry)
        session.add(entry)
        session.flush()
        return entry


def verify_chain(entries: Iterable[AuditEntry]) -> tuple[bool, int, str]:
    """Check every link: ``(ok, entries checked, what is wrong)``."""
    previous, count = GENESIS, 0
    for entry in entries:
        count += 1
        if entry.seq != count:
            return False, count, f"entry {count} is missing (found {entry.seq} next)"
        if entry.prev_hash != previous:
            return False, count, f"entry {entry.seq} does not chain onto entry {entry.seq - 1}"
        if entry_hash(entry) != entry.hash:
            return False, count, f"entry {entry.seq} was altered after it was written"
        previous = entry.hash
    return True, count, "ok"


def to_json(entry: AuditEntry) -> dict[str, Any]:
    """An entry's wire and export form."""
    return _content(entry) | {"hash": entry.hash}


def to_csv(entries: Iterable[AuditEntry]) -> str:
    """Entries as CSV (``detail`` as JSON text)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for entry in entries:
        row = to_json(entry)
        row["detail"] = json.dumps(row["detail"], sort_keys=True)
        writer.writerow(row)
    return out.getvalue()
