"""What the roles do with a lab's store in the contract test, as production code does it.

A server's first snapshot into its lab's new store, packs uploaded in parts, and an upload
that breaks off; the contract test records the calls each makes under its role.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from traitlets import Int

from westtek_core.store import S3Backend, StoreError, open_backend


class PacksInParts(S3Backend):
    """The S3 store uploading every pack in parts, as it does packs of 64 MiB and more."""

    multipart_threshold = Int(1, config=True)


def abandon_a_pack_upload(store: str) -> None:
    """A pack upload whose part fails: the store gives up, and the upload is aborted."""
    backend = open_backend(store)

    def connection_lost(**_: Any) -> None:
        raise ConnectionError("connection lost while sending a part")

    events = backend.client.meta.events
    events.register("before-call.s3.UploadPart", connection_lost)
    try:
        staged = backend.stage()
        staged.write(b"a pack whose upload breaks off")
        with pytest.raises(StoreError, match="connection lost"):
            staged.save("data/ab/abandoned")
    finally:
        events.unregister("before-call.s3.UploadPart", connection_lost)
    backend.close()


def take_a_snapshot(settings: dict[str, Any], research: dict[str, Any], tmp_path: Path) -> str:
    """What a server does on its first snapshot into its lab's (new) store, and reading it."""
    from westtek_core.capture import capture_environment
    from westtek_core.labs import lab_encryption_context
    from westtek_core.snapshot import create_snapshot, load_snapshot, restore_snapshot
    from westtek_core.store import Repository

    repo = Repository.open(
        settings["store"],
        kms_key_id=settings["kms_key_id"],
        kms_context=lab_encryption_context(settings["lab_id"]),
        cache_dir=tmp_path / "server-cache",
    )
    capture = capture_environment([str(research["python"])], research["workspace"])
    snapshot = create_snapshot(repo, capture, environment_id="alice").id
    repo.close()
    again = Repository.open(settings["store"], create=False, cache_dir=tmp_path / "other-cache")
    restore_snapshot(again, load_snapshot(again, snapshot), tmp_path / "restored", validate=False)
    again.close()
    return snapshot
