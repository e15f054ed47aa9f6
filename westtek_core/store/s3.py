"""The S3 store backend; the only module of the store that talks to S3.

The client's keyword arguments come from :func:`make_s3_client_kwargs`, a pure builder
tested as a whole dict; the client itself from the suite's one factory,
:func:`westtek_core.aws.aws_client`; :class:`S3Backend` only orchestrates calls on it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from traitlets import Enum, Int, Unicode, default

from westtek_core.aws import aws_client
from westtek_core.store.backend import (
    READABLE,
    Availability,
    ObjectAvailability,
    StagedObject,
    StoreBackend,
    check_key,
)
from westtek_core.store.errors import ObjectArchived, ObjectMissing, StoreError

_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
# What S3 (and compatible servers) answer to ``If-None-Match: *`` when the key exists.
_EXISTS_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict"}
# What GetObject answers for an archived object not restored (yet).
_ARCHIVED_CODES = {"InvalidObjectState"}
# What RestoreObject answers when there is nothing (more) to ask for.
_THAW_DONE_CODES = {"RestoreAlreadyInProgress", "InvalidObjectState"}

# Hours a restore takes, by storage class and retrieval tier (AWS's documented typical
# times; "within 12 hours" for Deep Archive Standard, "within 48" for Bulk).
THAW_HOURS: dict[tuple[str, str], int] = {
    ("GLACIER", "Standard"): 5,
    ("GLACIER", "Bulk"): 12,
    ("DEEP_ARCHIVE", "Standard"): 12,
    ("DEEP_ARCHIVE", "Bulk"): 48,
}
THAW_TIERS = ("Standard", "Bulk")
# Instant-retrieval classes (GLACIER_IR, STANDARD_IA …) are read directly: not here.
ARCHIVE_CLASSES = frozenset(storage_class for storage_class, _ in THAW_HOURS)


def make_s3_client_kwargs(endpoint_url: str | None, region: str | None) -> dict[str, Any]:
    """Keyword arguments for ``aws_client("s3", ...)``; ``config`` holds ``Config`` kwargs."""
    kwargs: dict[str, Any] = {
        "config": {
            "retries": {"max_attempts": 5, "mode": "standard"},
            "connect_timeout": 10,
            "read_timeout": 60,
            "max_pool_connections": 8,
        }
    }
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
        # Path-style works with MinIO, moto and AWS alike; virtual hosts need wildcard DNS.
        kwargs["config"]["s3"] = {"addressing_style": "path"}
    if region:
        kwargs["region_name"] = region
    return kwargs


def make_restore_request(days: int, tier: str) -> dict[str, Any]:
    """The ``RestoreRequest`` of ``RestoreObject``: a temporary copy for ``days`` days."""
    return {"Days": days, "GlacierJobParameters": {"Tier": tier}}


def availability_of(head: Mapping[str, Any], tier: str) -> ObjectAvailability:
    """An object's availability from its ``HeadObject`` response.

    Archived objects show their class (``StorageClass``) and, once a restore was asked for,
    ``Restore``: ``ongoing-request="true"`` while thawing, ``"false"`` once readable.
    """
    storage_class = str(head.get("StorageClass") or "STANDARD")
    if storage_class not in ARCHIVE_CLASSES:
        return READABLE
    restore = str(head.get("Restore") or "")
    if 'ongoing-request="false"' in restore:
        return READABLE
    state = Availability.THAWING if 'ongoing-request="true"' in restore else Availability.ARCHIVED
    return ObjectAvailability(state, THAW_HOURS[storage_class, tier])


class S3Backend(StoreBackend):
    """Objects as S3 keys ``<prefix>/<key>`` in one bucket."""

    bucket = Unicode("", config=True, help="S3 bucket holding the store; it must exist.")
    prefix = Unicode(
        "", config=True, help="Key prefix of the store inside the bucket, without slashes."
    )
    endpoint_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help="S3 endpoint for S3-compatible servers; default: $AWS_ENDPOINT_URL, else AWS.",
    )
    region = Unicode(
        None,
        allow_none=True,
        config=True,
        help="AWS region of the bucket; default: $AWS_REGION or $AWS_DEFAULT_REGION.",
    )

    restore_tier = Enum(
        THAW_TIERS,
        "Standard",
        config=True,
        help="Retrieval tier asked for when packs in S3 Glacier Deep Archive (or Flexible"
        " Retrieval) must be restored before a snapshot restore or verify: 'Standard' (about"
        " 12 hours from Deep Archive, 5 from Flexible Retrieval) or 'Bulk' (about 48 and 12"
        " hours, cheaper). Default: $WESTTEK_S3_RESTORE_TIER, else Standard.",
    )
    restore_days = Int(
        7,
        config=True,
        help="Days a restored copy of an archived pack stays readable: long enough for the"
        " restore or verify waiting for it to run. Default: $WESTTEK_S3_RESTORE_DAYS, else 7.",
    )

    multipart_threshold = Int(
        64 << 20,
        config=True,
        help="Objects assembled in a local file (packs) at least this big, in bytes, are"
        " uploaded in parts (multipart upload), streamed from the file; smaller ones in one"
        " PutObject. S3 wants parts of at least 5 MiB.",
    )

    @default("restore_tier")
    def _default_restore_tier(self) -> str:
        tier = os.environ.get("WESTTEK_S3_RESTORE_TIER", "Standard").strip().capitalize()
        if tier not in THAW_TIERS:
            raise StoreError(f"WESTTEK_S3_RESTORE_TIER={tier!r} is not one of Standard, Bulk")
        return tier

    @default("restore_days")
    def _default_restore_days(self) -> int:
        days = os.environ.get("WESTTEK_S3_RESTORE_DAYS", "7").strip()
        if not days.isdigit() or int(days) < 1:
            raise StoreError(f"WESTTEK_S3_RESTORE_DAYS={days!r} is not a number of days (≥ 1)")
        return int(days)

    @default("endpoint_url")
    def _default_endpoint_url(self) -> str | None:
        return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")

    @default("region")
    def _default_region(self) -> str | None:
        return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client: Any = None
        self._client_lock = threading.Lock()

    @property
    def url(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    @property
    def client(self) -> Any:
        """The boto3 S3 client, the process's one for these settings (thread-safe once built)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    from botocore.config import Config

                    kwargs = make_s3_client_kwargs(self.endpoint_url, self.region)
                    kwargs["config"] = Config(**kwargs["config"])
                    self._client = aws_client("s3", **kwargs)
        return self._client

    @property
    def _root(self) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/" if prefix else ""

    def _key(self, key: str) -> str:
        return self._root + check_key(key)

    def _fail(self, exc: Exception, action: str, key: str) -> StoreError:
        code, message = _error_code(exc)
        if code == "NoSuchBucket":
            return StoreError(f"S3 bucket {self.bucket!r} does not exist ({self.url})")
        detail = f"{code}: {message}" if code else str(exc).splitlines()[0]
        return StoreError(f"S3 {action} of {self.url}/{key} failed: {detail}")

    def save(self, key: str, data: bytes) -> None:
        """``PutObject`` with ``If-None-Match: *`` so an existing key is left untouched."""
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*"
            )
        except Exception as exc:
            if _error_code(exc)[0] in _EXISTS_CODES:
                return
            raise self._fail(exc, "save", key) from exc

    def save_staged(self, key: str, staged: StagedObject) -> None:
        """Upload from the staged file, never reading it whole.

        One conditional ``PutObject`` below :attr:`multipart_threshold`, else a multipart
        upload (boto3's transfer manager).
        """
        staged.file.seek(0)
        if staged.size < self.multipart_threshold:
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=staged.file, IfNoneMatch="*"
                )
            except Exception as exc:
                if _error_code(exc)[0] not in _EXISTS_CODES:
                    raise self._fail(exc, "save", key) from exc
            return
        from boto3.s3.transfer import TransferConfig

        if self.exists(key):
            return  # the key names the content: the stored object is this one
        # parts are read from the file as they are sent, a few at a time
        transfer = TransferConfig(multipart_threshold=self.multipart_threshold, max_concurrency=4)
        try:
            self.client.upload_file(staged.file.name, self.bucket, self._key(key), Config=transfer)
        except Exception as exc:
            raise self._fail(exc, "save", key) from exc

    def load(self, key: str) -> bytes:
        """``GetObject`` of the whole key."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return bytes(response["Body"].read())
        except Exception as exc:
            raise self._load_failed(exc, key) from exc

    def load_range(self, key: str, offset: int, length: int) -> bytes:
        """``GetObject`` with a ``Range`` header."""
        if length <= 0:
            return b""
        try:
            response = self.client.get_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Range=f"bytes={offset}-{offset + length - 1}",
            )
            return bytes(response["Body"].read())
        except Exception as exc:
            if _error_code(exc)[0] == "InvalidRange":
                return b""
            raise self._load_failed(exc, key) from exc

    def _load_failed(self, exc: Exception, key: str) -> StoreError:
        code = _error_code(exc)[0]
        if code in _MISSING_CODES:
            return ObjectMissing(f"{key} is missing from the store at {self.url}")
        if code in _ARCHIVED_CODES:
            return ObjectArchived(
                f"{key} in the store at {self.url} is in archive storage: restore or verify"
                " the snapshot again to have it brought back"
            )
        return self._fail(exc, "load", key)

    def exists(self, key: str) -> bool:
        """``HeadObject``."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _error_code(exc)[0] in _MISSING_CODES:
                return False
            raise self._fail(exc, "stat", key) from exc
        return True

    def list(self, prefix: str) -> Iterator[str]:
        """``ListObjectsV2`` pages, keys returned relative to the store's prefix."""
        root = self._root
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            pages = paginator.paginate(Bucket=self.bucket, Prefix=root + prefix)
            for page in pages:
                for item in page.get("Contents", ()):
                    yield str(item["Key"])[len(root) :]
        except StoreError:
            raise
        except Exception as exc:
            raise self._fail(exc, "list", prefix) from exc

    def remove(self, key: str) -> None:
        """``DeleteObject`` (idempotent in S3)."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            raise self._fail(exc, "remove", key) from exc

    # -- archive storage ----------------------------------------------------------------

    @property
    def thaw_tier(self) -> str:
        """The configured :attr:`restore_tier`."""
        return str(self.restore_tier)

    def availability(self, keys: Sequence[str]) -> dict[str, ObjectAvailability]:
        """``HeadObject`` of each key (a few at a time): its storage class and restore state."""
        tier = self.thaw_tier

        def one(key: str) -> ObjectAvailability:
            try:
                head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            except Exception as exc:
                if _error_code(exc)[0] in _MISSING_CODES:
                    return READABLE  # nothing to wait for: the read will say it is missing
                raise self._fail(exc, "stat", key) from exc
            return availability_of(head, tier)

        with ThreadPoolExecutor(8, thread_name_prefix="westtek-s3-head") as pool:
            return dict(zip(keys, pool.map(one, keys), strict=True))

    def request_thaw(self, keys: Sequence[str]) -> None:
        """``RestoreObject`` of each key with the configured tier and days."""
        request = make_restore_request(self.restore_days, self.thaw_tier)

        def one(key: str) -> None:
            try:
                self.client.restore_object(
                    Bucket=self.bucket, Key=self._key(key), RestoreRequest=request
                )
            except Exception as exc:
                if _error_code(exc)[0] not in _THAW_DONE_CODES:
                    raise self._fail(exc, "restore from archive", key) from exc

        with ThreadPoolExecutor(8, thread_name_prefix="westtek-s3-thaw") as pool:
            list(pool.map(one, keys))

    def close(self) -> None:
        """Let go of the client; it is shared, so its pooled connections stay for others."""
        self._client = None


def _error_code(exc: Exception) -> tuple[str, str]:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return str(error.get("Code", "")), str(error.get("Message", ""))
    return "", ""
