"""Decompression that a crafted object cannot turn into a huge allocation.

zstandard's one-shot ``decompress`` allocates the content size a frame's header declares
before it reads a single block, and ``max_output_size`` does not bound that: a 64 KiB pack
whose frame declares 2 GiB allocates 2 GiB. So the declared size is read from the header
and checked against the object's limit first; a frame that declares none is decompressed
as a stream, whose memory grows only with the bytes it really produces.
"""

from __future__ import annotations

import zstandard

from westtek_core.store.errors import ObjectCorrupt

# The largest index file or manifest read back (a manifest of a million files is ~250 MiB).
MAX_DOCUMENT_BYTES = 256 << 20

# Read size of the streaming path: memory grows in steps of this, up to the limit.
_STREAM_STEP = 1 << 20


def decompress_bounded(
    dctx: zstandard.ZstdDecompressor, payload: bytes, limit: int, what: str
) -> bytes:
    """The decompressed ``payload``, at most ``limit`` bytes; :class:`ObjectCorrupt` else.

    ``what`` names the object in the error, e.g. ``blob 3fa1… of pack 9c0e…``.
    """
    try:
        declared = zstandard.frame_content_size(payload)
    except zstandard.ZstdError as exc:
        raise ObjectCorrupt(f"{what} is not zstd data ({exc})") from None
    if declared > limit:
        raise ObjectCorrupt(
            f"{what} declares {declared} bytes, over its limit of {limit} (damaged or crafted)"
        )
    try:
        if declared >= 0:
            return dctx.decompress(payload, max_output_size=limit)
        chunks, total = [], 0
        with dctx.stream_reader(payload, read_across_frames=True) as reader:
            while chunk := reader.read(_STREAM_STEP):
                total += len(chunk)
                if total > limit:
                    raise ObjectCorrupt(
                        f"{what} inflates past its limit of {limit} bytes (damaged or crafted)"
                    )
                chunks.append(chunk)
        return b"".join(chunks)
    except zstandard.ZstdError as exc:
        raise ObjectCorrupt(f"{what} does not decompress ({exc})") from None
