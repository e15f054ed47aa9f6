"""Snapshots: create, restore, verify, diff, export and delete, over a store and a capture."""

from __future__ import annotations

from typing import TYPE_CHECKING

from westtek_core.labs import default_environment_id  # it lived here first
from westtek_core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from westtek_core.snapshot.catalog import (
        copy_snapshot,
        delete_snapshot,
        load_snapshot,
        resolve_snapshot_id,
        snapshot_summaries,
    )
    from westtek_core.snapshot.create import (
        Progress,
        SnapshotResult,
        create_snapshot,
        summarize,
    )
    from westtek_core.snapshot.export import EXPORT_FORMATS, export_snapshot
    from westtek_core.snapshot.interpreters import RestoreError
    from westtek_core.snapshot.manifest import ManifestError, iter_files, referenced_chunks
    from westtek_core.snapshot.restore import RestoreReport, restore_snapshot
    from westtek_core.snapshot.verify import VerifyReport, verify_snapshots

__all__ = [
    "EXPORT_FORMATS",
    "ManifestError",
    "Progress",
    "RestoreError",
    "RestoreReport",
    "SnapshotResult",
    "VerifyReport",
    "copy_snapshot",
    "create_snapshot",
    "default_environment_id",
    "delete_snapshot",
    "export_snapshot",
    "iter_files",
    "load_snapshot",
    "referenced_chunks",
    "resolve_snapshot_id",
    "restore_snapshot",
    "snapshot_summaries",
    "summarize",
    "verify_snapshots",
]

# imported on first use: a drift check needs the catalog, not restore, export or verify
__getattr__ = lazy_exports(
    __name__,
    {
        "copy_snapshot": "catalog",
        "delete_snapshot": "catalog",
        "load_snapshot": "catalog",
        "resolve_snapshot_id": "catalog",
        "snapshot_summaries": "catalog",
        "Progress": "create",
        "SnapshotResult": "create",
        "create_snapshot": "create",
        "summarize": "create",
        "EXPORT_FORMATS": "export",
        "export_snapshot": "export",
        "RestoreError": "interpreters",
        "ManifestError": "manifest",
        "iter_files": "manifest",
        "referenced_chunks": "manifest",
        "RestoreReport": "restore",
        "restore_snapshot": "restore",
        "VerifyReport": "verify",
        "verify_snapshots": "verify",
    },
)
