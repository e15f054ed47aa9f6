"""Encryption with an AWS KMS data key (moto's KMS on loopback)."""

from __future__ import annotations

import base64
import json

import boto3
import pytest

from westtek_core.store import Repository, StoreKeyError


@pytest.fixture
def kms_key(s3_endpoint: str) -> str:
    return str(boto3.client("kms").create_key(Description="westtek test")["KeyMetadata"]["KeyId"])


def test_a_kms_encrypted_store_opens_without_a_key_file(tmp_path, kms_key):
    # Given a store encrypted with a KMS data key,
    location = str(tmp_path / "store")
    repo = Repository.open(location, encrypt=True, kms_key_id=kms_key, cache_dir=tmp_path / "c")
    with repo.writer() as writer:
        content = writer.add_bytes(b"secret research data" * 100)
    repo.close()
    # the config keeps only the wrapped key, and nothing stored shows the plaintext,
    config = json.loads((tmp_path / "store" / "config").read_text())
    assert config["encryption"]["kms"]["key_id"] == kms_key
    for path in (tmp_path / "store").rglob("*"):
        if path.is_file():
            assert b"secret research data" not in path.read_bytes()
    # and anyone allowed to use the KMS key reads it back, with no key file at all.
    again = Repository.open(location, create=False, cache_dir=tmp_path / "c")
    assert b"".join(again.iter_file(content)) == b"secret research data" * 100


def test_a_wrapped_key_kms_cannot_unwrap_fails_cleanly(tmp_path, kms_key):
    location = tmp_path / "store"
    Repository.open(str(location), encrypt=True, kms_key_id=kms_key).close()
    config = json.loads((location / "config").read_text())
    config["encryption"]["kms"]["wrapped_key"] = base64.b64encode(b"not a kms blob").decode()
    (location / "config").write_text(json.dumps(config))
    before = sorted(p.name for p in location.rglob("*"))
    with pytest.raises(StoreKeyError, match="KMS could not unwrap"):
        Repository.open(str(location), create=False)
    assert sorted(p.name for p in location.rglob("*")) == before  # nothing written


def test_a_lab_store_is_bound_to_its_lab_encryption_context(tmp_path, kms_key):
    # Given a lab's store made with a data key under the lab's encryption context,
    location = tmp_path / "store"
    Repository.open(str(location), kms_key_id=kms_key, kms_context={"lab_id": "vault-13"}).close()
    config = json.loads((location / "config").read_text())
    assert config["encryption"]["kms"]["context"] == {"lab_id": "vault-13"}
    # its readers need no context of their own: the config names it,
    Repository.open(str(location), create=False).close()
    # and a config edited to claim another lab's context no longer opens (KMS refuses).
    config["encryption"]["kms"]["context"] = {"lab_id": "vault-1"}
    (location / "config").write_text(json.dumps(config))
    with pytest.raises(StoreKeyError, match="KMS could not unwrap"):
        Repository.open(str(location), create=False)
