"""Fixtures for the store: backends (local directory, S3 on a loopback moto server), repos."""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.loopback import allow_only_loopback, use_dummy_aws
from westtek_core.store import LocalDirectoryBackend, Repository, S3Backend, StoreBackend

BACKENDS = ["local", "s3"]


def random_bytes(size: int, seed: int) -> bytes:
    """Incompressible, reproducible content."""
    return random.Random(seed).randbytes(size)


def text_bytes(size: int, seed: int) -> bytes:
    """Compressible content, like source files."""
    rng = random.Random(seed)
    words = [f"name_{rng.randrange(500)}" for _ in range(size // 8 + 1)]
    return " ".join(words).encode()[:size]


def write_tree(root: Path, files: dict[str, bytes]) -> dict[str, Path]:
    """Create ``files`` (relative path → content) below ``root``."""
    paths = {}
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        paths[rel] = path
    return paths


@pytest.fixture(autouse=True)
def _loopback_only_and_private_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[None]:
    """No store test may dial anything but loopback, nor write to the real ~/.cache."""
    allow_only_loopback(monkeypatch, "store test")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1, shared by the session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_endpoint(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Dummy credentials and the moto endpoint in the environment; no profile, no IMDS."""
    use_dummy_aws(monkeypatch, tmp_path, moto_endpoint)
    return moto_endpoint


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh, empty bucket."""
    name = f"westtek-{secrets.token_hex(6)}"
    admin = S3Backend(bucket=name, endpoint_url=s3_endpoint)
    admin.client.create_bucket(Bucket=name)
    admin.close()
    return name


@pytest.fixture
def thawing_held() -> Iterator[None]:
    """Restores in moto stay in whatever state a test puts them (moto completes them at once)."""
    from moto.moto_api import state_manager

    state_manager.set_transition("s3::keyrestore", {"progression": "manual", "times": 10**9})
    yield
    state_manager.unset_transition("s3::keyrestore")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreBackend]:
    """An empty store location on each backend (the conformance parameter)."""
    store: StoreBackend
    if request.param == "local":
        store = LocalDirectoryBackend(root=str(tmp_path / "store"))
    else:
        bucket = request.getfixturevalue("s3_bucket")
        store = S3Backend(bucket=bucket, prefix="stores/test")  # endpoint from the env
    yield store
    store.close()


@pytest.fixture
def local_backend(tmp_path: Path) -> LocalDirectoryBackend:
    """An empty local store, for tests about processes or the local file system."""
    return LocalDirectoryBackend(root=str(tmp_path / "store"))


OpenRepo = Callable[..., Repository]


@pytest.fixture
def open_repo(backend: StoreBackend, tmp_path: Path) -> Iterator[OpenRepo]:
    """Open (creating) a repository on ``backend`` with a private stat cache."""
    repos: list[Repository] = []

    def _open(location: StoreBackend | None = None, **kwargs: Any) -> Repository:
        kwargs.setdefault("cache_dir", tmp_path / "cache")
        repo = Repository.open(location or backend, **kwargs)
        repos.append(repo)
        return repo

    yield _open
    for repo in repos:
        repo.close()
