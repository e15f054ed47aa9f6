"""The audit log: append-only, each entry carrying a keyed hash of itself and the one before.

An entry's hash is an HMAC (SHA-256) of its own fields and the previous hash, under a key
the database does not hold, so whoever can write the database can neither edit, delete nor
reorder an entry nor rewrite the whole chain without ``verify_chain`` finding the first
break. Removing entries from the end is caught by the anchor (audit_anchor.py): after each
commit that appended, the new head is recorded outside the database, and the log must
still hold it. Appends are serialised (a process lock, plus a transaction-scoped advisory
lock on PostgreSQL) so two writers never chain onto the same predecessor.

A session writes to the chain its sessionmaker was bound to (``AuditChain.bind``): the
registry's functions take only a session, and the key must not be one of their arguments.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.orm import Session, sessionmaker

from westtek_hub.audit_anchor import AnchorError, ChainAnchor, ChainHead
from westtek_hub.models import AuditEntry

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_APPEND_LOCK = threading.Lock()
_PG_LOCK_KEY = 0x57E57E4  # any constant: the advisory lock of the audit chain
_CHAIN = "westtek_audit_chain"  # Session.info: the chain the session writes to
_PENDING_HEAD = "westtek_audit_head"  # Session.info: the head to anchor once committed
MIN_KEY_BYTES = 32
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


def entry_hash(entry: AuditEntry, key: bytes) -> str:
    """The HMAC-SHA256 under ``key`` of an entry's content and its predecessor's hash."""
    canonical = json.dumps(_content(entry), sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditChain:
    """What writes and checks the log: the HMAC key (never in the database), the head's anchor."""

    key: bytes
    anchor: ChainAnchor

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise ValueError(f"the audit key must be at least {MIN_KEY_BYTES} bytes")

    def bind(self, sessions: sessionmaker[Session]) -> sessionmaker[Session]:
        """Make ``sessions``' appends use this chain, and anchor each committed head."""
        sessions.configure(info={_CHAIN: self})
        event.listen(sessions, "after_commit", _anchor_committed_head)
        event.listen(sessions, "after_rollback", _forget_uncommitted_head)
        return sessions


def chain_of(session: Session) -> AuditChain:
    """The chain ``session`` writes to (``LookupError`` if its sessionmaker has none)."""
    chain = session.info.get(_CHAIN)
    if not isinstance(chain, AuditChain):
        raise LookupError("this session writes to no audit chain: bind it with AuditChain.bind")
    return chain


def _anchor_committed_head(session: Session) -> None:
    head = session.info.pop(_PENDING_HEAD, None)
    if head is None:
        return
    try:
        chain_of(session).anchor.record(head)
    except AnchorError:
        # the entry is committed either way; the next append anchors a newer head
        log.exception("audit entry %s is committed but not anchored", head.seq)


def _forget_uncommitted_head(session: Session) -> None:
    session.info.pop(_PENDING_HEAD, None)


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
    chain = chain_of(session)
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
        entry.hash = entry_hash(entry, chain.key)
        session.add(entry)
        session.flush()
        session.info[_PENDING_HEAD] = ChainHead(entry.seq, entry.hash)
        return entry


def verify_chain(entries: Iterable[AuditEntry], chain: AuditChain) -> tuple[bool, int, str]:
    """Check every link and the anchored head: ``(ok, entries checked, what is wrong)``."""
    where = chain.anchor.location()
    try:
        # the anchor before the entries: an append committed in between only lengthens the log
        anchored = chain.anchor.latest()
    except AnchorError as e:
        return False, 0, str(e)
    previous, count, anchored_hash = GENESIS, 0, None
    for entry in entries:
        count += 1
        if entry.seq != count:
            return False, count, f"entry {count} is missing (found {entry.seq} next)"
        if entry.prev_hash != previous:
            return False, count, f"entry {entry.seq} does not chain onto entry {entry.seq - 1}"
        if not hmac.compare_digest(entry_hash(entry, chain.key), entry.hash):
            return False, count, f"entry {entry.seq} was altered after it was written"
        if anchored is not None and entry.seq == anchored.seq:
            anchored_hash = entry.hash
        previous = entry.hash
    if anchored is None:
        if count:
            return False, count, f"no anchor of the chain's head at {where}: its end is unchecked"
        return True, 0, "ok"
    if count < anchored.seq:
        cut = f"the log ends at entry {count} but {where} anchors entry {anchored.seq}"
        return False, count, f"{cut}: entries were removed from its end"
    if anchored_hash != anchored.hash:
        return False, anchored.seq, f"entry {anchored.seq} is not the one {where} anchors"
    return True, count, "ok"


def to_json(entry: AuditEntry) -> dict[str, Any]:
    """An entry's wire and export form."""
    return _content(entry) | {"hash": entry.hash}


# what makes Excel, LibreOffice and Sheets read a cell as a formula (OWASP, "CSV Injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%")


def _inert(value: Any) -> Any:
    """A cell a spreadsheet shows as text: one that would start a formula gets a ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(entries: Iterable[AuditEntry]) -> str:
    """Entries as CSV (``detail`` as JSON text), every cell inert in a spreadsheet.

    Actors, targets and details come from requests (an environment id, a reason quoting
    it): a target such as ``=HYPERLINK(…)`` must not run when IT opens the export.
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for entry in entries:
        row = to_json(entry)
        row["detail"] = json.dumps(row["detail"], sort_keys=True)
        writer.writerow({key: _inert(value) for key, value in row.items()})
    return out.getvalue()
