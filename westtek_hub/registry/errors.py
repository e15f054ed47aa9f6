"""What the registry refuses, and with which HTTP status; the input checks that refuse."""

from __future__ import annotations

from typing import Any

from westtek_core.wire import MAX_ID


class RegistryError(Exception):
    """A request the registry refuses; ``str()`` is the message for the person."""

    status = 400

    def __init__(self, message: str, lab_id: str | None = None) -> None:
        super().__init__(message)
        self.lab_id = lab_id


class Invalid(RegistryError):
    """Malformed or inconsistent input (400)."""


class Denied(RegistryError):
    """Not allowed for this caller (403, and an audit entry)."""

    status = 403


class NotFound(RegistryError):
    """No such environment, snapshot or share (404)."""

    status = 404


class Hidden(NotFound):
    """Exists, but not for this caller: answered as missing, audited as denied.

    The same 404 and message as :class:`NotFound`, so nobody learns another lab's ids or
    owners by probing.
    """


class TooLarge(RegistryError):
    """A body over the size limit (413)."""

    status = 413


class OverQuota(RegistryError):
    """The lab's quota would be exceeded (403); nothing was started."""

    status = 403


class RateLimited(RegistryError):
    """Too many requests this minute (429)."""

    status = 429


class StoreUnavailable(RegistryError):
    """A lab's snapshot store could not be read or written (502); nothing was started."""

    status = 502


def refuse(error: RegistryError) -> Any:
    """Raise ``error`` (for ``Registry.run`` to audit a refusal found outside the registry)."""
    raise error


def checked_id(value: Any, what: str) -> str:
    """``value`` if it is a usable id, else ``Invalid`` naming the field ``what``."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID:
        raise Invalid(f"'{what}' must be a non-empty string of at most {MAX_ID} characters")
    return value
