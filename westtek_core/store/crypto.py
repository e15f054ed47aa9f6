"""Keys, chunk ids and per-object encryption (AES-256-GCM) of a store.

The master key is 32 random bytes in a key file. Sub-keys are BLAKE3 ``derive_key`` outputs
of (master key + the store's random salt) under distinct contexts, so one key file can serve
several stores without their ids or ciphertexts being linkable.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import blake3

from westtek_core.aws import aws_client
from westtek_core.store.errors import ObjectCorrupt, StoreKeyError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
# Hash big buffers on several threads; below this the thread hand-off costs more than it saves.
_PARALLEL_HASH_BYTES = 4 << 20
_CONTEXT = "West Tek store 2026-11 {}"
# The KMS key new stores are encrypted with by default (on AWS: the stage's snapshot key,
# set on the hub and passed to each server by hub_config/aws.py).
SNAPSHOT_KMS_KEY_ENV = "WESTTEK_SNAPSHOT_KMS_KEY_ARN"


def read_key_file(path: Path) -> bytes:
    """Return the 32-byte master key in ``path``; :class:`StoreKeyError` if absent or malformed."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise StoreKeyError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise StoreKeyError(f"cannot read key file {path}: {exc.strerror}") from None
    if len(key) != KEY_SIZE:
        raise StoreKeyError(f"key file {path} is not a West Tek key (expected {KEY_SIZE} bytes)")
    return key


def create_key_file(path: Path) -> bytes:
    """Write a new random key to ``path`` (mode 0600), or return the key already there."""
    if path.exists():
        return read_key_file(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(KEY_SIZE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return read_key_file(path)  # created concurrently: use theirs
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    return key


def _kms_client() -> Any:
    return aws_client("kms")  # region, credentials and endpoint from the AWS environment


def generate_kms_data_key(
    kms_key_id: str, context: Mapping[str, str] | None = None
) -> tuple[bytes, dict[str, Any]]:
    """A new 32-byte master key from AWS KMS and its wrapped form, to keep in the config.

    ``context`` is the KMS encryption context the key is bound to (a lab store's is
    ``{"lab_id": <lab>}``): KMS unwraps it only with the same context, which IAM policies
    can require, so another lab's role cannot open the store even with kms:Decrypt.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    context = dict(context or {})
    try:
        answer = _kms_client().generate_data_key(
            KeyId=kms_key_id,
            KeySpec="AES_256",
            **({"EncryptionContext": context} if context else {}),
        )
    except (BotoCoreError, ClientError) as exc:
        raise StoreKeyError(f"KMS could not make a data key with {kms_key_id}: {exc}") from None
    wrapped: dict[str, Any] = {
        "key_id": kms_key_id,
        "wrapped_key": base64.b64encode(answer["CiphertextBlob"]).decode(),
    }
    if context:
        wrapped["context"] = context
    return bytes(answer["Plaintext"]), wrapped


def unwrap_kms_data_key(wrapped: dict[str, Any], url: str) -> bytes:
    """The master key of a KMS-encrypted store, unwrapped by KMS (needs kms:Decrypt)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        blob = base64.b64decode(wrapped["wrapped_key"])
        context = {str(k): str(v) for k, v in dict(wrapped.get("context") or {}).items()}
        answer = _kms_client().decrypt(
            CiphertextBlob=blob,
            KeyId=wrapped["key_id"],
            **({"EncryptionContext": context} if context else {}),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise StoreKeyError(f"store at {url} has a malformed KMS key entry: {exc}") from None
    except (BotoCoreError, ClientError) as exc:
        raise StoreKeyError(f"KMS could not unwrap the key of the store at {url}: {exc}") from None
    key = bytes(answer["Plaintext"])
    if len(key) != KEY_SIZE:
        raise StoreKeyError(f"KMS returned a key of the wrong size for the store at {url}")
    return key


def derive_key(master: bytes, salt: bytes, purpose: str) -> bytes:
    """A 32-byte sub-key of ``master`` for ``purpose`` in the store salted with ``salt``."""
    return blake3.blake3(master + salt, derive_key_context=_CONTEXT.format(purpose)).digest()


def key_check_value(master: bytes, salt: bytes) -> str:
    """What the config stores to recognise the right key without revealing it."""
    return derive_key(master, salt, "key check").hex()[:32]


class Crypto:
    """Chunk-id hashing and object sealing for one store (a no-op sealer when unencrypted)."""

    def __init__(self, master: bytes | None = None, salt: bytes = b"") -> None:
        self.encrypted = master is not None
        self._id_key = derive_key(master, salt, "chunk id") if master is not None else None
        self._aead: AESGCM | None = None
        if master:
            # imported only for an encrypted store: its library is ~7 MiB of a snapshot's RSS
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aead = AESGCM(derive_key(master, salt, "encryption"))

    def chunk_id(self, data: bytes | memoryview) -> bytes:
        """The 32-byte id of a plaintext chunk: BLAKE3, keyed when the store is encrypted."""
        threads = blake3.blake3.AUTO if len(data) >= _PARALLEL_HASH_BYTES else 1
        if self._id_key is None:
            return blake3.blake3(data, max_threads=threads).digest()
        return blake3.blake3(data, key=self._id_key, max_threads=threads).digest()

    def seal(self, data: bytes) -> bytes:
        """Encrypt ``data`` as ``nonce || ciphertext || tag`` (returned as is when unencrypted)."""
        if self._aead is None:
            return data
        nonce = secrets.token_bytes(NONCE_SIZE)
        return nonce + self._aead.encrypt(nonce, data, None)

    def unseal(self, data: bytes, what: str) -> bytes:
        """Decrypt and authenticate what :meth:`seal` made; :class:`ObjectCorrupt` if tampered."""
        if self._aead is None:
            return data
        if len(data) < NONCE_SIZE + TAG_SIZE:
            raise ObjectCorrupt(f"{what} is too short to be an encrypted object")
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead.decrypt(data[:NONCE_SIZE], data[NONCE_SIZE:], None)
        except InvalidTag:
            raise ObjectCorrupt(f"{what} fails authentication (damaged or altered)") from None

    @property
    def overhead(self) -> int:
        """Bytes :meth:`seal` adds to each object."""
        return NONCE_SIZE + TAG_SIZE if self._aead is not None else 0
