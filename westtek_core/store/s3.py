"""The S3 store backend; the only module of the store that talks to S3.

The client's keyword arguments come from :func:`make_s3_client_kwargs`, a pure builder
tested as a whole dict; the client itself from the suite's one factory,
:func:`westtek_core.aws.aws_client`; :class:`S3Backend` only orchestrates calls on it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

from traitlets import Unicode, default

from westtek_core.aws import aws_client
from westtek_core.store.backend import StoreBackend, check_key
from westtek_core.store.errors import ObjectMissing, StoreError

_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
# What S3 (and compatible servers) answer to ``If-None-Match: *`` when the key exists.
_EXISTS_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict"}


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

    def load(self, key: str) -> bytes:
        """``GetObject`` of the whole key."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return bytes(response["Body"].read())
        except Exception as exc:
            if _error_code(exc)[0] in _MISSING_CODES:
                raise ObjectMissing(f"{key} is missing from the store at {self.url}") from None
            raise self._fail(exc, "load", key) from exc

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
            code = _error_code(exc)[0]
            if code in _MISSING_CODES:
                raise ObjectMissing(f"{key} is missing from the store at {self.url}") from None
            if code == "InvalidRange":
                return b""
            raise self._fail(exc, "load", key) from exc

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

    def close(self) -> None:
        """Let go of the client; it is shared, so its pooled connections stay for others."""
        self._client = None


def _error_code(exc: Exception) -> tuple[str, str]:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return str(error.get("Code", "")), str(error.get("Message", ""))
    return "", ""
