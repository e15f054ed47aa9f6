"""The store's exceptions: one base class, each ``str()`` a single line a CLI can print."""

from __future__ import annotations


class StoreError(Exception):
    """Anything the store cannot do; ``str()`` is one clear line for the CLI."""


class StoreNotFound(StoreError):
    """Nothing has been stored at the location yet (opened without ``create``)."""


class StoreFormatError(StoreError):
    """The store's layout or config is one this version does not read."""


class StoreKeyError(StoreError):
    """The encryption key is wrong or missing; the store was left untouched."""


class StoreLockedError(StoreError):
    """Another process holds a lock that conflicts with the operation asked for."""


class ObjectMissing(StoreError):
    """An object (pack, index, snapshot, chunk) the store should have is not there."""


class ObjectArchived(StoreError):
    """An object is in an archive storage class (S3 Glacier): readable once restored."""


class ArchiveWait(StoreError):
    """Objects an operation needs are coming back from archive storage: try again later.

    Their restore has been requested (by this call or an earlier one); ``str()`` is the one
    line to show while waiting.
    """

    def __init__(
        self, waiting: int, requested: int, tier: str, ready_in_hours: int, what: str = ""
    ) -> None:
        self.waiting = waiting  # objects not readable yet
        self.requested = requested  # of which this call asked to restore
        self.tier = tier  # the retrieval tier asked for, e.g. "Standard"
        self.ready_in_hours = ready_in_hours  # estimate for the slowest of them
        self.what = what  # e.g. "snapshot 3f2a9c01b7e4"
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """``waiting for archive, ready in about N hours: …``."""
        hours = f"{self.ready_in_hours} hour{'s' if self.ready_in_hours != 1 else ''}"
        of = f" of {self.what}" if self.what else ""
        tier = f", {self.tier} retrieval" if self.tier else ""
        return (
            f"waiting for archive, ready in about {hours}: {self.waiting} pack"
            f"{'s' if self.waiting != 1 else ''}{of} coming back from archive storage{tier}"
        )

    def to_json(self) -> dict[str, object]:
        """The machine form of the wait (``--json`` output, job results)."""
        return {
            "waiting": self.waiting,
            "requested": self.requested,
            "tier": self.tier,
            "ready_in_hours": self.ready_in_hours,
            "message": self.message,
        }


class ObjectCorrupt(StoreError):
    """An object was read but its content does not match its id, or does not decode."""


class SnapshotNotFound(StoreError):
    """No snapshot has the id (or unique prefix) asked for."""


class SourceChanged(OSError):
    """A file no longer is the version its caller checked (a secret scan): nothing stored."""
