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


class ObjectCorrupt(StoreError):
    """An object was read but its content does not match its id, or does not decode."""


class SnapshotNotFound(StoreError):
    """No snapshot has the id (or unique prefix) asked for."""


class SourceChanged(OSError):
    """A file no longer is the version its caller checked (a secret scan): nothing stored."""
