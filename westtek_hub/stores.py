"""The labs' snapshot stores, as the hub service reaches them to carry shared snapshots over.

Each lab keeps its snapshots in its own store (the spawner's ``store_template`` with
``{lab_id}``), and a lab's servers open only their own. When a lab launches a server from a
snapshot another lab shared with it, the service copies that snapshot into the recipient
lab's store first; the new server then restores it from its own store, and never needs to
reach the other lab's. Revoking the share removes that copy again.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from traitlets import Float, Unicode
from traitlets.config import LoggingConfigurable

from westtek_core.labs import lab_encryption_context
from westtek_core.snapshot import copy_snapshot, delete_snapshot, referenced_chunks
from westtek_core.snapshot.archive import ARCHIVE_POLL_SECONDS, require_readable
from westtek_core.store import Repository, SnapshotNotFound, StoreError, StoreNotFound


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

    kms_key_id = Unicode(
        "",
        config=True,
        help="""AWS KMS key a lab store this service creates (to receive a shared snapshot)
        is encrypted with, under that lab's encryption context, as the lab's servers do
        (`WestTekExtension.kms_key_id`); empty: created unencrypted. Existing stores keep
        their own encryption (a KMS-wrapped data key opens with kms:Decrypt).""",
    )

    archive_poll_seconds = Float(
        ARCHIVE_POLL_SECONDS,
        config=True,
        help="""How often a launch from a shared snapshot whose packs are in archive storage
        (S3 Glacier Deep Archive, after a year) checks whether they are back; meanwhile the
        panel shows it as 'waiting for archive, ready in about N hours', and once they are
        back the service copies the snapshot and starts the server by itself.""",
    )

    @property
    def configured(self) -> bool:
        """Whether the service knows where the labs' stores are."""
        return bool(self.store_template)

    @property
    def bucket(self) -> str:
        """The S3 bucket of the labs' stores ('' when they are not on S3)."""
        location = urlparse(self.store_template)
        return location.netloc if location.scheme == "s3" else ""

    def _require_configured(self) -> None:
        if not self.configured:
            raise StoreError(
                "the hub service does not know the labs' snapshot stores: an admin must set "
                "LabStores.store_template"
            )

    def open(self, lab_id: str) -> Repository:
        """A lab's existing store, to read (``StoreError`` when unset or unreachable)."""
        self._require_configured()
        return self._open(lab_id, create=False)

    def _open(self, lab_id: str, create: bool) -> Repository:
        key = self.key_file_template.format(lab_id=lab_id)
        return Repository.open(
            self.store_template.format(lab_id=lab_id),
            create=create,
            key_file=Path(key) if key else None,
            encrypt=bool(key),
            kms_key_id=self.kms_key_id or None,
            kms_context=lab_encryption_context(lab_id),
        )

    def copy(self, snapshot_id: str, from_lab: str, to_lab: str) -> str:
        """Copy a snapshot from one lab's store to another's; its id in the recipient's.

        Raises ``StoreError`` (e.g. the snapshot is not in the source lab's store).
        """
        copied, missing = self.copy_present([snapshot_id], from_lab, to_lab)
        if missing:
            raise SnapshotNotFound(f"no snapshot {snapshot_id!r} in lab {from_lab}'s store")
        return copied[snapshot_id]

    def copy_present(
        self, snapshot_ids: list[str], from_lab: str, to_lab: str
    ) -> tuple[dict[str, str], list[str]]:
        """Copy the snapshots the source lab's store holds: {id: new id}, and the ids it lacks.

        Raises ``StoreError`` when a store cannot be used, and
        :class:`~westtek_core.store.ArchiveWait` when packs of any of them are in archive
        storage (the restore of every such pack requested, nothing copied).
        """
        self._require_configured()
        copied: dict[str, str] = {}
        missing: list[str] = []
        try:
            source = self._open(from_lab, create=False)
        except StoreNotFound:  # the lab never stored a snapshot: it holds none of them
            return copied, list(snapshot_ids)
        try:
            held = set(source.list_manifests())
            # packs in archive storage: ask for all of them back at once, copy nothing yet
            wanted = [s for s in snapshot_ids if s in held]
            needed = set().union(*(referenced_chunks(source.load_manifest(s)) for s in wanted))
            what = f"snapshot {wanted[0][:12]}" if len(wanted) == 1 else f"{len(wanted)} snapshots"
            require_readable(source, needed, what)
            dest = self._open(to_lab, create=True)
            try:
                for snapshot_id in snapshot_ids:
                    if snapshot_id in held:
                        copied[snapshot_id] = copy_snapshot(source, dest, snapshot_id)
                    else:
                        missing.append(snapshot_id)
            finally:
                dest.close()
        finally:
            source.close()
        self.log.info(
            "copied %d snapshot(s) of lab %s to lab %s (%d not in its store)",
            len(copied), from_lab, to_lab, len(missing),
        )  # fmt: skip
        return copied, missing

    def remove(self, snapshot_id: str, lab_id: str) -> None:
        """Delete a snapshot from a lab's store, with the data nothing else there uses.

        A copy someone already deleted is gone, which is what was asked; a store that cannot
        be opened raises ``StoreError``, since the copy may still be in it.
        """
        self._require_configured()
        store = self._open(lab_id, create=False)
        try:
            delete_snapshot(store, snapshot_id)
        except SnapshotNotFound:
            self.log.info("snapshot %s was no longer in lab %s's store", snapshot_id, lab_id)
            return
        finally:
            store.close()
        self.log.info("removed snapshot %s from lab %s's store", snapshot_id, lab_id)
