"""Anchors of the audit chain's head, kept outside the database.

The keyed chain (audit.py) stops anyone without the key from forging entries, but removing
entries from the end of the log leaves a shorter chain that still verifies. So after every
committed append the service records the new head (its ``seq`` and ``hash``) somewhere the
database's users cannot reach, and verification requires the anchored head to be in the log.

Two anchors behind one interface: a file (the embedded default, in the service's data
directory) and S3 objects under Object Lock (on AWS: COMPLIANCE-mode retention, so no one,
not even the account's root, can delete or change a recorded head before it expires).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from westtek_core.aws import aws_client

# S3 lists keys in ascending order only: a head's key counts down from this, so the first key
# listed is the newest head
S3_HEAD_KEY_SPAN = 10**19 - 1


@dataclass(frozen=True)
class ChainHead:
    """The newest entry of the audit chain, as an anchor keeps it."""

    seq: int
    hash: str

    def to_json(self) -> dict[str, Any]:
        """The head's stored form."""
        return {"seq": self.seq, "hash": self.hash}

    @classmethod
    def from_json(cls, data: Any) -> ChainHead:
        """A head from its stored form (``AnchorError`` when it is not one)."""
        try:
            return cls(seq=int(data["seq"]), hash=str(data["hash"]))
        except (TypeError, KeyError, ValueError) as e:
            raise AnchorError(f"not a chain head: {data!r}") from e


class AnchorError(Exception):
    """An anchor that cannot be read or written."""


class ChainAnchor(ABC):
    """Where the chain's head is kept outside the database."""

    @abstractmethod
    def record(self, head: ChainHead) -> None:
        """Keep ``head`` as the newest head (a head older than the newest one kept is ignored)."""

    @abstractmethod
    def latest(self) -> ChainHead | None:
        """The newest head recorded (None before the first)."""

    @abstractmethod
    def location(self) -> str:
        """Where the anchor is, for messages."""


class FileAnchor(ChainAnchor):
    """The head in a JSON file, replaced atomically, never moved backwards."""

    _lock = threading.Lock()  # commits of two threads may anchor out of order

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, head: ChainHead) -> None:
        """Write ``head`` unless the file already holds a newer one."""
        with self._lock:
            current = self.latest()
            if current is not None and current.seq >= head.seq:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            partial.write_text(json.dumps(head.to_json()) + "\n")
            os.replace(partial, self.path)

    def latest(self) -> ChainHead | None:
        """The head in the file (None when there is no file yet)."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise AnchorError(f"cannot read the audit anchor {self.path}: {e}") from e
        try:
            return ChainHead.from_json(json.loads(text))
        except ValueError as e:
            raise AnchorError(f"the audit anchor {self.path} is not JSON") from e

    def location(self) -> str:
        """The file's path."""
        return str(self.path)


class S3ObjectLockAnchor(ChainAnchor):
    """Each head as its own object under ``prefix/heads/``, locked in COMPLIANCE mode.

    A head is never overwritten: every append adds an object whose key counts down with its
    ``seq``. The bucket must have Object Lock enabled (S3 refuses the retention otherwise).
    Reading takes the newest key among all versions and delete markers (a delete marker
    hides no head) and that key's first version (a later overwrite replaces nothing).
    """

    def __init__(self, bucket: str, prefix: str, retention_days: int) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/heads/" if prefix.strip("/") else "heads/"
        self.retention_days = retention_days

    def head_key(self, seq: int) -> str:
        """The object key of the head at ``seq``."""
        return f"{self.prefix}{S3_HEAD_KEY_SPAN - seq:019d}"

    def record(self, head: ChainHead) -> None:
        """Put the head's object, locked until the retention ends."""
        from botocore.exceptions import BotoCoreError, ClientError

        body = json.dumps(head.to_json()).encode()
        retain_until = datetime.now(timezone.utc) + timedelta(days=self.retention_days)
        try:
            aws_client("s3").put_object(
                Bucket=self.bucket,
                Key=self.head_key(head.seq),
                Body=body,
                ContentType="application/json",
                ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode(),
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=retain_until,
            )
        except (BotoCoreError, ClientError) as e:
            raise AnchorError(f"cannot anchor the audit head in {self.location()}: {e}") from e

    def latest(self) -> ChainHead | None:
        """The newest head, from its first (locked) version."""
        from botocore.exceptions import BotoCoreError, ClientError

        s3 = aws_client("s3")
        try:
            listing = s3.list_object_versions(Bucket=self.bucket, Prefix=self.prefix)
            versions = listing.get("Versions", [])
            keys = [v["Key"] for v in versions + listing.get("DeleteMarkers", [])]
            if not keys:
                return None
            newest = min(keys)
            # S3 lists a key's versions newest first: the last one is the head as recorded
            first = [v for v in versions if v["Key"] == newest][-1]
            body = s3.get_object(Bucket=self.bucket, Key=newest, VersionId=first["VersionId"])
            head = ChainHead.from_json(json.loads(body["Body"].read()))
        except (BotoCoreError, ClientError, ValueError, IndexError) as e:
            raise AnchorError(f"cannot read the audit anchor {self.location()}: {e}") from e
        if self.head_key(head.seq) != newest:
            raise AnchorError(f"the audit anchor {newest} holds the head of entry {head.seq}")
        return head

    def location(self) -> str:
        """The anchor's ``s3://`` URL."""
        return f"s3://{self.bucket}/{self.prefix}"


def open_anchor(location: str, retention_days: int) -> ChainAnchor:
    """The anchor at ``location``: ``s3://bucket/prefix`` (Object Lock) or a file path."""
    if location.startswith("s3://"):
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        if not bucket:
            raise AnchorError(f"no bucket in the audit anchor {location!r}")
        return S3ObjectLockAnchor(bucket, prefix, retention_days)
    return FileAnchor(Path(location))
