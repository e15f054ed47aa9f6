"""Pack files: many blobs in one object, with a trailer that lists them.

Layout of ``data/<2hex>/<pack id>`` (pack id = BLAKE3 of the whole file)::

    blob 0 | blob 1 | … | sealed trailer | trailer length (u32 LE) | b"WTP1"

Each blob is the chunk, zstd-compressed unless that does not shrink it (flag bit 0), then
sealed (encrypted) when the store is. The trailer is one sealed array of 45-byte entries
``id (32) | flags (u8) | offset (u32) | stored length (u32) | raw length (u32)``, all
little-endian, so a pack can be checked, and an index rebuilt, from the pack alone.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from westtek_core.store.crypto import Crypto
from westtek_core.store.errors import ObjectCorrupt

PACK_MAGIC = b"WTP1"
FLAG_ZSTD = 1
_ENTRY = struct.Struct("<32sBIII")
_TAIL = struct.Struct("<I4s")
MAX_PACK_BYTES = (1 << 32) - 1


class PackEntry(NamedTuple):
    """Where one blob sits in its pack."""

    blob_id: bytes
    flags: int
    offset: int
    length: int
    raw_length: int


def encode_trailer(entries: list[PackEntry], crypto: Crypto) -> bytes:
    """The bytes to append after the blobs: sealed entry table, its length, the magic."""
    table = b"".join(_ENTRY.pack(*entry) for entry in entries)
    sealed = crypto.seal(table)
    return sealed + _TAIL.pack(len(sealed), PACK_MAGIC)


def decode_trailer(pack: bytes, crypto: Crypto, what: str) -> list[PackEntry]:
    """Parse a whole pack's trailer; :class:`ObjectCorrupt` naming ``what`` if it is damaged."""
    if len(pack) < _TAIL.size:
        raise ObjectCorrupt(f"{what} is truncated ({len(pack)} bytes, no trailer)")
    sealed_len, magic = _TAIL.unpack_from(pack, len(pack) - _TAIL.size)
    start = len(pack) - _TAIL.size - sealed_len
    if magic != PACK_MAGIC or start < 0:
        raise ObjectCorrupt(f"{what} has no valid trailer (truncated or not a pack)")
    table = crypto.unseal(pack[start : len(pack) - _TAIL.size], f"trailer of {what}")
    if len(table) % _ENTRY.size:
        raise ObjectCorrupt(f"{what} has a malformed trailer")
    entries = [PackEntry(*fields) for fields in _ENTRY.iter_unpack(table)]
    for entry in entries:
        if entry.offset + entry.length > start:
            raise ObjectCorrupt(f"{what} lists a blob beyond its data")
    return entries
