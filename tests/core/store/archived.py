"""Stores whose packs are in S3 Glacier Deep Archive, on moto, and moto's restores held still.

moto completes a RestoreObject at once; the ``thawing_held`` fixture and
:func:`set_restore_state` let a test show the hours between (``Restore:
ongoing-request="true"``) as S3 would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.core.store.conftest import random_bytes
from westtek_core.store import Repository, S3Backend

FILES = {
    "notebooks/analysis.ipynb": b'{"cells": []}\n',
    "data/big.bin": random_bytes(300_000, seed=1),
}
MORE_FILES = {"data/second.bin": random_bytes(200_000, seed=2)}


def set_restore_state(bucket: str, key: str, state: str) -> None:
    """Put moto's restore of ``key`` in ``state``: IN_PROGRESS (thawing) or RESTORED.

    Set before the restore is asked for, it is the state the restore starts in.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    fake = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(bucket, key)
    assert fake is not None, f"no {key} in moto's {bucket}"
    fake.status = state


class RestoreCalls:
    """Every RestoreObject request a client sends: its key and body (as sent, XML)."""

    def __init__(self, backend: S3Backend) -> None:
        self.requests: list[tuple[str, bytes]] = []
        backend.client.meta.events.register("before-call.s3.RestoreObject", self._record)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        key = params["url_path"].partition("?")[0].rpartition("/")[2]
        self.requests.append((key, params["body"]))


def write_snapshot(repo: Repository, *sessions: dict[str, bytes], in_env: bool = False) -> str:
    """A snapshot of files, each session's chunks in packs of their own.

    The files are the workspace's, or with ``in_env`` an interpreter's prefix (what a
    rollback or a container start's restore reads).
    """
    entries = []
    for files in sessions:
        with repo.writer() as writer:
            for path, data in sorted(files.items()):
                content = list(writer.add_bytes(data).chunks)
                entries.append({"path": path, "kind": "file", "size": len(data),
                                "mode": 0o644, "content": content})  # fmt: skip
    manifest: dict[str, Any] = {"environment_id": "alice", "timestamp": "2016-12-04T10:00:00+00:00"}
    if in_env:
        manifest["interpreters"] = [{"prefix_tree": {"files": entries}}]
    else:
        manifest["workspace"] = {"files": entries}
    return repo.save_manifest(manifest)


def archive_packs(backend: S3Backend) -> list[str]:
    """Move every pack to Deep Archive, as the lifecycle does after a year; their keys."""
    packs = sorted(backend.list("data/"))
    for key in packs:
        full = backend._key(key)
        backend.client.copy_object(
            Bucket=backend.bucket,
            Key=full,
            CopySource={"Bucket": backend.bucket, "Key": full},
            StorageClass="DEEP_ARCHIVE",
        )
    return packs


def write_archived_snapshot(backend: S3Backend, cache_dir: Path, *, in_env: bool = False) -> str:
    """A snapshot of :data:`FILES` a year on, its packs in Deep Archive; its id.

    A restore asked for stays thawing (under ``thawing_held``) until :func:`thaw_all`.
    """
    with Repository.open(backend, cache_dir=cache_dir) as repo:
        snapshot_id = write_snapshot(repo, FILES, in_env=in_env)
    for pack in archive_packs(backend):
        set_restore_state(backend.bucket, backend._key(pack), "IN_PROGRESS")
    return snapshot_id


def thaw_all(backend: S3Backend) -> None:
    """S3 has restored every pack of the store: they can be read again."""
    for pack in backend.list("data/"):
        set_restore_state(backend.bucket, backend._key(pack), "RESTORED")


def storage_class(backend: S3Backend, key: str) -> str:
    head = backend.client.head_object(Bucket=backend.bucket, Key=backend._key(key))
    return str(head.get("StorageClass", "STANDARD"))
