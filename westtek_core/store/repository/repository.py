"""The repository: opening (or creating) a store, its config and keys; the public class.

:class:`Repository` is composed of one class per kind of operation, each in its own
module, as restic's ``internal/repository`` splits its files; a newcomer finds an
operation by what it does:

- ``state.py``: what they all share (backend, keys, the loaded index, the blob codec);
- ``read.py``: :class:`ReadOps`, reading chunks and manifests, resolving id prefixes;
- ``write.py``: :class:`WriteOps` and :class:`RepositoryWriter`, packs, index files,
  saving manifests;
- ``maintenance.py``: :class:`MaintenanceOps`, stats, check, forget and prune;
- this module: :meth:`Repository.open`, the config and the keys.

Classes rather than delegating functions, because callers (and their type checker) see
one ``Repository`` with every method and its docstring where it is implemented, and each
operation can use the shared state without passing the repository around.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from westtek_core.paths import cache_dir as default_cache_dir
from westtek_core.store.backend import StoreBackend
from westtek_core.store.chunker import ChunkerParams
from westtek_core.store.crypto import (
    Crypto,
    create_key_file,
    generate_kms_data_key,
    key_check_value,
    read_key_file,
    unwrap_kms_data_key,
)
from westtek_core.store.errors import (
    ObjectMissing,
    StoreError,
    StoreFormatError,
    StoreKeyError,
    StoreNotFound,
)
from westtek_core.store.location import open_backend
from westtek_core.store.repository.maintenance import MaintenanceOps
from westtek_core.store.repository.read import ReadOps
from westtek_core.store.repository.state import PACK_SIZE, ZSTD_LEVEL
from westtek_core.store.repository.write import WriteOps

FORMAT_VERSION = 1


class Repository(MaintenanceOps, ReadOps, WriteOps):
    """A content-addressed, deduplicated, compressed, optionally encrypted snapshot store.

    Open one with :meth:`open`. Write with ``with repo.writer() as w: ...`` and then commit
    with :meth:`save_manifest`. Reading, :meth:`check` and :meth:`prune` need no writer.
    """

    @classmethod
    def open(
        cls,
        location: str | StoreBackend,
        *,
        create: bool = True,
        key_file: Path | None = None,
        encrypt: bool = False,
        cache_dir: Path | None = None,
        kms_key_id: str | None = None,
        kms_context: Mapping[str, str] | None = None,
    ) -> Repository:
        """Open the store at ``location`` (a URL for :func:`open_backend`, or a backend).

        ``create`` initialises an empty location (encrypted with a key from ``key_file``,
        created 0600 if missing, when ``encrypt``; or, given ``kms_key_id``, with an AWS KMS
        data key bound to the encryption context ``kms_context``, whose wrapped form is kept
        in the store's config, so reading needs no key id or context). An encrypted store needs
        its key file, or KMS access to unwrap its data key; a wrong key raises
        :class:`StoreKeyError` before anything is written. The stat cache lives in
        ``cache_dir/<store id>/`` (default :func:`westtek_core.paths.cache_dir`).
        """
        owns = not isinstance(location, StoreBackend)
        backend = open_backend(location) if isinstance(location, str) else location
        try:
            try:
                raw = backend.load("config")
            except ObjectMissing:
                if not create:
                    raise StoreNotFound(f"no West Tek store at {backend.url}") from None
                encrypt = encrypt or bool(kms_key_id)
                raw = cls._initialise(
                    backend, key_file if encrypt else None, encrypt, kms_key_id, kms_context
                )
            config = _parse_config(raw, backend.url)
            crypto = _crypto_for(config, backend.url, key_file, encrypt)
            base = cache_dir if cache_dir is not None else default_cache_dir()
            return cls(backend, config, crypto, base / config["id"], owns)
        except BaseException:
            if owns:
                backend.close()
            raise

    @staticmethod
    def _initialise(
        backend: StoreBackend,
        key_file: Path | None,
        encrypt: bool,
        kms_key_id: str | None,
        kms_context: Mapping[str, str] | None,
    ) -> bytes:
        encryption: dict[str, Any] | None = None
        if encrypt:
            wrapped: dict[str, Any] | None = None
            if kms_key_id:
                master, wrapped = generate_kms_data_key(kms_key_id, kms_context)
            elif key_file is None:
                raise StoreKeyError("an encrypted store needs a key file: none was given")
            else:
                master = create_key_file(key_file)
            salt = secrets.token_bytes(16)
            encryption = {
                "cipher": "AES-256-GCM",
                "kdf": "blake3-derive-key",
                "salt": salt.hex(),
                "key_check": key_check_value(master, salt),
            }
            if wrapped:
                encryption["kms"] = wrapped
        config = {
            "format": "westtek-store",
            "version": FORMAT_VERSION,
            "id": secrets.token_hex(16),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "chunker": ChunkerParams().to_json(),
            "pack_size": PACK_SIZE,
            "compression": {"algorithm": "zstd", "level": ZSTD_LEVEL},
            "encryption": encryption,
        }
        backend.save("config", json.dumps(config, indent=2).encode() + b"\n")
        # Write-once: if another process initialised the store first, its config wins.
        return backend.load("config")

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_config(raw: bytes, url: str) -> dict[str, Any]:
    try:
        config = json.loads(raw)
        version = config["version"]
        if not isinstance(version, int):
            raise TypeError("version is not an integer")
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreFormatError(f"store at {url} has an unreadable config ({exc})") from None
    if version > FORMAT_VERSION:
        raise StoreFormatError(
            f"store at {url} was written by a newer West Tek (format {version}, this one reads"
            f" up to {FORMAT_VERSION}): upgrade westtek"
        )
    if config.get("format") != "westtek-store" or version < 1 or "id" not in config:
        raise StoreFormatError(f"store at {url} has a config West Tek does not recognise")
    ChunkerParams.from_json(config.get("chunker"))
    return dict(config)


def _crypto_for(config: dict[str, Any], url: str, key_file: Path | None, encrypt: bool) -> Crypto:
    encryption = config.get("encryption")
    if not encryption:
        if encrypt:
            raise StoreError(f"store at {url} is not encrypted (it was created without a key)")
        return Crypto()
    if isinstance(encryption.get("kms"), dict):
        master = unwrap_kms_data_key(encryption["kms"], url)
    elif key_file is None:
        raise StoreKeyError(f"store at {url} is encrypted: its key file is needed")
    else:
        master = read_key_file(key_file)
    try:
        salt = bytes.fromhex(encryption["salt"])
        check = str(encryption["key_check"])
    except (KeyError, TypeError, ValueError):
        raise StoreFormatError(f"store at {url} has malformed encryption settings") from None
    if not secrets.compare_digest(key_check_value(master, salt), check):
        raise StoreKeyError(f"the key given does not open the store at {url} (wrong key)")
    return Crypto(master, salt)
