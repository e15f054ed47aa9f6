"""The backend conformance suite: every StoreBackend behaves alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from westtek_core.store import (
    LocalDirectoryBackend,
    ObjectMissing,
    S3Backend,
    StoreBackend,
    StoreError,
    open_backend,
)
from westtek_core.store.s3 import make_s3_client_kwargs


def test_save_load_exists_roundtrip(backend: StoreBackend):
    backend.save("data/ab/abcdef", b"payload")
    assert backend.load("data/ab/abcdef") == b"payload"
    assert backend.exists("data/ab/abcdef")
    assert not backend.exists("data/ab/other")


def test_save_is_write_once(backend: StoreBackend):
    # Given an object, when the same key is saved again with other bytes, the first stays.
    backend.save("snapshots/x", b"first")
    backend.save("snapshots/x", b"second")
    assert backend.load("snapshots/x") == b"first"


def test_empty_object(backend: StoreBackend):
    backend.save("locks/empty", b"")
    assert backend.load("locks/empty") == b""
    assert backend.exists("locks/empty")


def test_missing_object_raises_object_missing(backend: StoreBackend):
    with pytest.raises(ObjectMissing, match="nope"):
        backend.load("index/nope")
    with pytest.raises(ObjectMissing):
        backend.load_range("index/nope", 0, 4)


def test_load_range(backend: StoreBackend):
    backend.save("data/00/pack", bytes(range(100)))
    assert backend.load_range("data/00/pack", 10, 5) == bytes(range(10, 15))
    assert backend.load_range("data/00/pack", 95, 20) == bytes(range(95, 100))


def test_list_by_prefix(backend: StoreBackend):
    for key in ["config", "data/ab/ab1", "data/cd/cd2", "index/i1", "snapshots/s1"]:
        backend.save(key, b"x")
    assert sorted(backend.list("data/")) == ["data/ab/ab1", "data/cd/cd2"]
    assert sorted(backend.list("data/ab/")) == ["data/ab/ab1"]
    assert list(backend.list("index/")) == ["index/i1"]
    assert list(backend.list("locks/")) == []
    assert sorted(backend.list("")) == [
        "config",
        "data/ab/ab1",
        "data/cd/cd2",
        "index/i1",
        "snapshots/s1",
    ]


def test_remove_is_idempotent(backend: StoreBackend):
    backend.save("locks/l1", b"x")
    backend.remove("locks/l1")
    backend.remove("locks/l1")
    assert not backend.exists("locks/l1")
    assert list(backend.list("locks/")) == []


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "data/"])
def test_unsafe_keys_are_refused(backend: StoreBackend, key: str):
    with pytest.raises(StoreError, match="invalid object key"):
        backend.save(key, b"x")


def test_local_save_leaves_no_partial_files(tmp_path: Path):
    store = LocalDirectoryBackend(root=str(tmp_path / "s"))
    store.save("data/ab/abc", b"x" * 1000)
    assert os.listdir(tmp_path / "s" / "tmp") == []
    assert "tmp/" not in "".join(store.list(""))


def test_local_backend_url_is_its_root(tmp_path: Path):
    assert LocalDirectoryBackend(root=str(tmp_path)).url == str(tmp_path)


def test_open_backend_local_forms(tmp_path: Path):
    for url in [str(tmp_path / "s"), f"file://{tmp_path}/s"]:
        store = open_backend(url)
        assert isinstance(store, LocalDirectoryBackend)
        assert store.root == str(tmp_path / "s")


def test_open_backend_s3(s3_endpoint: str):
    store = open_backend("s3://my-bucket/some/prefix/")
    assert isinstance(store, S3Backend)
    assert (store.bucket, store.prefix, store.url) == (
        "my-bucket",
        "some/prefix",
        "s3://my-bucket/some/prefix",
    )
    # The endpoint defaults from $AWS_ENDPOINT_URL (read in the trait's @default).
    assert store.endpoint_url == s3_endpoint
    assert store.region == "us-east-1"


@pytest.mark.parametrize("url", ["", "http://example.org/x", "s3://", "ftp://h/p", "file://"])
def test_open_backend_bad_url(url: str):
    with pytest.raises(StoreError) as err:
        open_backend(url)
    assert "\n" not in str(err.value)
    assert "s3://BUCKET/PREFIX" in str(err.value)


def test_s3_client_kwargs_with_endpoint():
    assert make_s3_client_kwargs("http://127.0.0.1:9000", "eu-west-1") == {
        "endpoint_url": "http://127.0.0.1:9000",
        "region_name": "eu-west-1",
        "config": {
            "retries": {"max_attempts": 5, "mode": "standard"},
            "connect_timeout": 10,
            "read_timeout": 60,
            "max_pool_connections": 8,
            "s3": {"addressing_style": "path"},
        },
    }


def test_s3_client_kwargs_for_aws():
    assert make_s3_client_kwargs(None, None) == {
        "config": {
            "retries": {"max_attempts": 5, "mode": "standard"},
            "connect_timeout": 10,
            "read_timeout": 60,
            "max_pool_connections": 8,
        }
    }


def test_s3_missing_bucket_is_one_clear_line(s3_endpoint: str):
    store = S3Backend(bucket="westtek-no-such-bucket")
    with pytest.raises(StoreError, match="S3 bucket 'westtek-no-such-bucket' does not exist"):
        store.save("config", b"{}")
    store.close()


def test_s3_client_is_created_once(s3_bucket: str):
    store = S3Backend(bucket=s3_bucket)
    assert store.client is store.client
    store.close()


def test_s3_backends_share_the_suites_client_and_close_leaves_it_working(s3_bucket: str):
    # Given two backends on the same bucket and settings (the client is the suite's one),
    first, second = S3Backend(bucket=s3_bucket), S3Backend(bucket=s3_bucket, prefix="other")
    assert first.client is second.client
    # when one closes, the other still reads and writes through the shared client.
    first.save("config", b"{}")
    first.close()
    second.save("config", b"[]")
    assert second.load("config") == b"[]"
    second.close()
