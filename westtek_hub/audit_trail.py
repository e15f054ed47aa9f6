"""The audit chain's configuration: its HMAC key and the anchor of its head.

The key is a secret the database never holds: the environment (``WESTTEK_AUDIT_KEY``, on
AWS from Secrets Manager) or a file outside the database, which the service creates in its
data directory on its first start (the demo). ``westtek audit verify`` reads the same
settings, but never creates a key: a missing key is an error there.
"""

from __future__ import annotations

import binascii
import os
import secrets
from pathlib import Path

from traitlets import Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from westtek_hub.audit import MIN_KEY_BYTES, AuditChain
from westtek_hub.audit_anchor import open_anchor


class AuditKeyError(Exception):
    """The audit key is missing or malformed."""


def read_key(text: str, source: str) -> bytes:
    """A hex key of at least ``MIN_KEY_BYTES`` bytes (``source`` names it in errors)."""
    try:
        key = binascii.a2b_hex(text.strip())
    except (binascii.Error, ValueError):
        raise AuditKeyError(f"the audit key in {source} is not hex") from None
    if len(key) < MIN_KEY_BYTES:
        raise AuditKeyError(f"the audit key in {source} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def create_key_file(path: Path) -> bytes:
    """A new random key written to ``path`` (hex, mode 0600), never over an existing one."""
    key = secrets.token_bytes(MIN_KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(binascii.b2a_hex(key).decode() + "\n")
        out.flush()
        os.fsync(out.fileno())
    try:
        # a link appears whole or not at all (a kill mid-write leaves no short key), and
        # fails rather than replace a key some entries are already chained with
        os.link(partial, path)
    finally:
        partial.unlink()
    return key


class AuditTrail(LoggingConfigurable):
    """Where the audit chain's key comes from and where its head is anchored."""

    data_dir = Unicode(
        help="The hub service's data directory, where the default key file and anchor live."
    )

    key = Unicode(
        config=True,
        help="The audit chain's HMAC key, hex (at least 32 bytes); default: $WESTTEK_AUDIT_KEY. "
        "Never put it in the database: whoever holds it can rewrite the chain. When empty, "
        "key_file holds the key.",
    )

    @default("key")
    def _default_key(self) -> str:
        return os.environ.get("WESTTEK_AUDIT_KEY", "")

    key_file = Unicode(
        config=True,
        help="File of the hex HMAC key when key is empty; the service creates it (mode 0600) on "
        "its first start (default: $WESTTEK_AUDIT_KEY_FILE, else 'audit_key' in the service's "
        "data directory).",
    )

    @default("key_file")
    def _default_key_file(self) -> str:
        return os.environ.get("WESTTEK_AUDIT_KEY_FILE") or str(Path(self.data_dir) / "audit_key")

    anchor = Unicode(
        config=True,
        help="Where the chain's head is recorded outside the database after every append: a "
        "file, or s3://bucket/prefix in a bucket with S3 Object Lock enabled (default: "
        "$WESTTEK_AUDIT_ANCHOR, else 'audit_anchor.json' in the service's data directory).",
    )

    @default("anchor")
    def _default_anchor(self) -> str:
        return os.environ.get("WESTTEK_AUDIT_ANCHOR") or str(
            Path(self.data_dir) / "audit_anchor.json"
        )

    anchor_retention_days = Integer(
        2557,
        config=True,
        help="S3 anchor: the days each recorded head stays locked in COMPLIANCE mode (no one "
        "can delete or change it before then); seven years by default.",
    )

    def chain_key(self, create: bool) -> bytes:
        """The key: ``key``, else the key file (created when ``create`` and missing)."""
        if self.key:
            return read_key(self.key, "AuditTrail.key ($WESTTEK_AUDIT_KEY)")
        path = Path(self.key_file)
        try:
            return read_key(path.read_text(), str(path))
        except FileNotFoundError:
            if not create:
                raise AuditKeyError(
                    f"no audit key at {path}: set WESTTEK_AUDIT_KEY or pass the key file"
                ) from None
        except OSError as e:
            raise AuditKeyError(f"cannot read the audit key {path}: {e}") from None
        return create_key_file(path)

    def chain(self, create_key: bool = False) -> AuditChain:
        """The configured chain (``create_key``: make the key file on first use)."""
        return AuditChain(
            self.chain_key(create_key), open_anchor(self.anchor, self.anchor_retention_days)
        )
