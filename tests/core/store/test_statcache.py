"""The stat cache: an unchanged file is not read again."""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import Any

import pytest

from tests.core.store.conftest import random_bytes, text_bytes, write_tree
from westtek_core.store import LocalDirectoryBackend, Repository

MiB = 1 << 20


def forbid_reading(monkeypatch: pytest.MonkeyPatch, below: Path) -> None:
    """Make opening any file below ``below`` fail, through os.open or the builtin open."""
    real_os_open, real_open = os.open, builtins.open

    def guard(path: object) -> None:
        if isinstance(path, (str, os.PathLike)) and str(path).startswith(str(below)):
            raise AssertionError(f"file content was read: {path}")

    def os_open(path: str, *args: Any, **kwargs: Any) -> int:
        guard(path)
        return real_os_open(path, *args, **kwargs)

    def open_(path: Any, *args: Any, **kwargs: Any) -> Any:
        guard(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    files = {f"pkg{i % 7}/m{i}.py": text_bytes(200 + i, i) for i in range(300)}
    files["data/big.bin"] = random_bytes(2 * MiB, 1)
    files["empty"] = b""
    return write_tree(tmp_path / "src", files)


def snapshot(repo: Repository, tree: dict[str, Path]) -> tuple[dict[str, object], int, int]:
    with repo.writer() as writer:
        contents = {rel: writer.add_file(path) for rel, path in tree.items()}
    repo.save_manifest({rel: c.to_json() for rel, c in contents.items()})
    return dict(contents), writer.stat_cache_hits, writer.files_read


def test_resnapshot_of_unchanged_tree_reads_no_file(
    local_backend: LocalDirectoryBackend, tree: dict[str, Path], tmp_path: Path, monkeypatch
):
    first, hits, read = snapshot(Repository.open(local_backend, cache_dir=tmp_path / "c"), tree)
    assert (hits, read) == (0, len(tree))

    # When the same tree is snapshotted again (a new process: a fresh Repository)…
    forbid_reading(monkeypatch, tmp_path / "src")
    again = Repository.open(local_backend, create=False, cache_dir=tmp_path / "c")
    second, hits, read = snapshot(again, tree)

    # …every file comes from the stat cache and no content is opened.
    assert second == first
    assert (hits, read) == (len(tree), 0)


def test_changed_file_is_read_again(
    local_backend: LocalDirectoryBackend, tree: dict[str, Path], tmp_path: Path
):
    repo = Repository.open(local_backend, cache_dir=tmp_path / "c")
    first, _, _ = snapshot(repo, tree)
    path = tree["pkg0/m0.py"]
    st = path.stat()
    path.write_bytes(b"X" * st.st_size)  # same size…
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # …and mtime; ctime still moves
    second, hits, read = snapshot(repo, tree)
    assert read == 1 and hits == len(tree) - 1
    assert second["pkg0/m0.py"] != first["pkg0/m0.py"]
    assert b"".join(repo.iter_file(second["pkg0/m0.py"])) == b"X" * st.st_size  # type: ignore[arg-type]


def test_cache_hit_needs_the_chunks_in_the_index(
    local_backend: LocalDirectoryBackend, tree: dict[str, Path], tmp_path: Path
):
    repo = Repository.open(local_backend, cache_dir=tmp_path / "c")
    snapshot(repo, tree)
    repo.prune(set())  # nothing referenced: all data goes, the stat cache is now stale
    _, hits, read = snapshot(repo, tree)
    # Only the empty file, which has no chunks to lose, still comes from the cache.
    assert (hits, read) == (1, len(tree) - 1)
    assert repo.check().ok


def test_failed_session_records_nothing(
    local_backend: LocalDirectoryBackend, tree: dict[str, Path], tmp_path: Path
):
    repo = Repository.open(local_backend, cache_dir=tmp_path / "c")
    with pytest.raises(RuntimeError):
        with repo.writer() as writer:
            for path in tree.values():
                writer.add_file(path)
            raise RuntimeError
    _, hits, read = snapshot(repo, tree)
    assert (hits, read) == (0, len(tree))


def test_default_cache_location_is_per_store(
    local_backend: LocalDirectoryBackend, tree: dict[str, Path], tmp_path: Path
):
    # HOME points into tmp_path for every store test (see conftest).
    repo = Repository.open(local_backend)
    snapshot(repo, tree)
    expected = tmp_path / "home" / ".cache" / "westtek" / repo.id / "statcache.sqlite"
    assert repo.cache_dir == expected.parent
    assert expected.is_file()


def test_unusable_cache_dir_only_disables_the_cache(
    local_backend: LocalDirectoryBackend, tree: dict[str, Path], tmp_path: Path
):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    repo = Repository.open(local_backend, cache_dir=blocker)
    snapshot(repo, tree)
    _, hits, read = snapshot(repo, tree)
    assert (hits, read) == (0, len(tree))
