"""Content-defined chunking (FastCDC 2020, via the compiled ``pyfastcdc``).

``pyfastcdc`` was measured against the ``fastcdc`` package's Cython chunker on 200 MB
(~3.8 GB/s against ~2.1 GB/s here), so it is the one used. Its real average chunk size
is about ``avg_size + min_size``; the defaults below give ~1 MiB chunks on incompressible
data, never under 256 KiB (except a file's last chunk) nor over 4 MiB.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from pyfastcdc import BinaryStreamReader, FastCDC

from westtek_core.store.errors import StoreFormatError


@dataclass(frozen=True)
class ChunkerParams:
    """How files are cut; stored in the config so every writer of a store cuts alike."""

    algorithm: str = "fastcdc2020"
    min_size: int = 256 << 10
    avg_size: int = 768 << 10
    max_size: int = 4 << 20
    # Files below this are one chunk without running the chunker at all.
    small_file_size: int = 512 << 10

    def to_json(self) -> dict[str, Any]:
        """The config form."""
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Any) -> ChunkerParams:
        """Parse the config form; :class:`StoreFormatError` for an unknown chunker."""
        try:
            params = cls(
                algorithm=str(doc["algorithm"]),
                min_size=int(doc["min_size"]),
                avg_size=int(doc["avg_size"]),
                max_size=int(doc["max_size"]),
                small_file_size=int(doc["small_file_size"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreFormatError(
                f"store config has malformed chunker parameters: {exc}"
            ) from None
        if params.algorithm != "fastcdc2020":
            raise StoreFormatError(f"store uses unknown chunker {params.algorithm!r}")
        return params


class Chunker:
    """Cuts buffers and streams into chunks; one instance per thread."""

    def __init__(self, params: ChunkerParams) -> None:
        self.params = params
        self._cdc = FastCDC(params.avg_size, min_size=params.min_size, max_size=params.max_size)

    def cut_buffer(self, data: bytes | memoryview) -> Iterator[memoryview]:
        """Chunks of an in-memory buffer (views into it, no copies)."""
        if len(data) < self.params.small_file_size:
            if len(data):
                yield memoryview(data)
            return
        for chunk in self._cdc.cut_buf(data):
            yield chunk.data

    def cut_stream(self, stream: BinaryStreamReader) -> Iterator[bytes]:
        """Chunks of a binary stream, each copied out since the reader reuses its buffer."""
        for chunk in self._cdc.cut_stream(stream):
            yield bytes(chunk.data)
