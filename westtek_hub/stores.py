"""The labs' snapshot stores, as the hub service reaches them to carry shared snapshots over.

Each lab keeps its snapshots in its own store (the spawner's ``store_template`` with
``{lab_id}``), and a lab's servers open only their own. When a lab launches a server from a
snapshot another lab shared with it, the service copies that snapshot into the recipient
lab's store first; the new server then restores it from its own store, and never needs to
reach the other lab's.
"""

from __future__ import annotations

from pathlib import Path

from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from westtek_core.snapshot import copy_snapshot
from westtek_core.store import Repository, StoreError


class LabStores(LoggingConfigurable):
    """Where each lab's snapshot store is, and copying a shared snapshot between two."""

    store_template = Unicode(
        "",
        config=True,
        help="""Each lab's snapshot store, with `{lab_id}` filled in: the same value as
        `WestTekSpawner.store_template` (e.g. `s3://westtek-snapshots/labs/{lab_id}/` or
        `/srv/westtek/stores/{lab_id}`). Empty: launching a server from another lab's shared
        snapshot is refused, since the service cannot reach the labs' stores.""",
    )

    key_file_template = Unicode(
        "",
        config=True,
        help="""Key file of each lab's encrypted store, with `{lab_id}` filled in; empty for
        unencrypted stores or stores whose data key AWS KMS wraps.""",
    )

    @property
    def configured(self) -> bool:
        """Whether the service knows where the labs' stores are."""
        return bool(self.store_template)

    def _open(self, lab_id: str, create: bool) -> Repository:
        key = self.key_file_template.format(lab_id=lab_id)
        return Repository.open(
            self.store_template.format(lab_id=lab_id),
            create=create,
            key_file=Path(key) if key else None,
            encrypt=bool(key),
        )

    def copy(self, snapshot_id: str, from_lab: str, to_lab: str) -> str:
        """Copy a snapshot from one lab's store to another's; its id in the recipient's.

        Raises ``StoreError`` (e.g. the snapshot is not in the source lab's store).
        """
        if not self.configured:
            raise StoreError(
                "the hub service does not know the labs' snapshot stores: an admin must set "
                "LabStores.store_template"
            )
        source = self._open(from_lab, create=False)
        try:
            dest = self._open(to_lab, create=True)
            try:
                copied = copy_snapshot(source, dest, snapshot_id)
            finally:
                dest.close()
        finally:
            source.close()
        self.log.info("copied snapshot %s of lab %s to lab %s", snapshot_id[:12], from_lab, to_lab)
        return copied
