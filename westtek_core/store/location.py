"""Which backend a store location names: a directory, ``file://PATH`` or ``s3://BUCKET/PREFIX``.

Apart from the backends themselves, so that the interface (backend.py) knows none of them.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

from westtek_core.store.backend import LocalDirectoryBackend, StoreBackend
from westtek_core.store.errors import StoreError


def local_directory(url: str) -> str | None:
    """The absolute directory a path or ``file://PATH`` location names; None for other kinds."""
    if "://" not in url:
        return os.path.abspath(os.path.expanduser(url))
    parsed = urlparse(url)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost") and parsed.path:
        return os.path.abspath(unquote(parsed.path))
    return None


def open_backend(url: str) -> StoreBackend:
    """Return the backend for ``url``: a path or ``file://PATH`` (local), ``s3://BUCKET/PREFIX``."""
    if not url or not url.strip():
        raise StoreError("no store location given: use a path, file://PATH or s3://BUCKET/PREFIX")
    directory = local_directory(url)
    if directory is not None:
        return LocalDirectoryBackend(root=directory)
    parsed = urlparse(url)
    if parsed.scheme == "s3" and parsed.netloc:
        from westtek_core.store.s3 import S3Backend

        return S3Backend(bucket=parsed.netloc, prefix=unquote(parsed.path).strip("/"))
    raise StoreError(
        f"unsupported store location {url!r}: use a path, file://PATH or s3://BUCKET/PREFIX"
    )
