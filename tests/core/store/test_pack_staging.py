"""Packs are assembled in a staged file, not in memory; checked files are streamed.

What that must keep: a crash mid-pack leaves no half pack under any key, a failed session
no temporary file, a file changed while it is read gets none of its new bytes stored, and
a writer's memory does not grow with the size of the files it stores.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from tests.core.store.conftest import OpenRepo, random_bytes
from tests.core.stress import init_store
from westtek_core.store import LocalDirectoryBackend, Repository, S3Backend, StoreBackend
from westtek_core.store.errors import SourceChanged

MiB = 1 << 20
REPO_ROOT = Path(__file__).resolve().parents[3]


def staged_leftovers(backend: StoreBackend, system_tmp: Path) -> list[str]:
    """Temporary files of staged objects: the store's ``tmp/`` (local) or the system's."""
    local = Path(backend.root, "tmp") if isinstance(backend, LocalDirectoryBackend) else None
    folders = [system_tmp] + ([local] if local else [])
    return [p.name for d in folders if d.is_dir() for p in d.iterdir()]


@pytest.fixture
def system_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private system temporary directory, to see what staging leaves there."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_staged_object_roundtrip_and_write_once(backend: StoreBackend, system_tmp: Path):
    staged = backend.stage()
    staged.write(b"pack ")
    staged.write(memoryview(b"bytes"))
    staged.save("data/ab/abc")
    assert backend.load("data/ab/abc") == b"pack bytes"
    # the key names the content: saving it again leaves the stored object alone
    again = backend.stage()
    again.write(b"other")
    again.save("data/ab/abc")
    assert backend.load("data/ab/abc") == b"pack bytes"
    assert list(backend.list("")) == ["data/ab/abc"]
    assert staged_leftovers(backend, system_tmp) == []


def test_discarded_staged_object_leaves_nothing(backend: StoreBackend, system_tmp: Path):
    staged = backend.stage()
    staged.write(b"half a pack")
    staged.discard()
    staged.discard()
    assert list(backend.list("")) == []
    assert staged_leftovers(backend, system_tmp) == []


def test_s3_uploads_a_big_staged_object_in_parts(s3_bucket: str, system_tmp: Path):
    # Given a threshold of 5 MiB (S3's smallest part), an 11 MiB object goes in parts.
    backend = S3Backend(bucket=s3_bucket, prefix="p", multipart_threshold=5 * MiB)
    data = random_bytes(11 * MiB, 1)
    staged = backend.stage()
    for start in range(0, len(data), MiB):
        staged.write(data[start : start + MiB])
    staged.save("data/cd/cdef")
    head = backend.client.head_object(Bucket=s3_bucket, Key="p/data/cd/cdef")
    assert "-" in head["ETag"]  # a multipart upload's ETag: md5 of the parts, "-", count
    assert backend.load("data/cd/cdef") == data
    assert staged_leftovers(backend, system_tmp) == []
    backend.close()


def test_failed_writer_session_leaves_no_temporary_pack(open_repo: OpenRepo, system_tmp: Path):
    repo = open_repo()
    with pytest.raises(RuntimeError, match="boom"):
        with repo.writer() as writer:
            writer.add_bytes(random_bytes(3 * MiB, 2))  # less than a pack: still filling
            raise RuntimeError("boom")
    assert list(repo.backend.list("data/")) == []
    assert staged_leftovers(repo.backend, system_tmp) == []


_KILLED_WRITER = textwrap.dedent(
    """
    import random, sys, time
    from pathlib import Path
    from westtek_core.store import Repository

    repo = Repository.open(sys.argv[1], create=False, cache_dir=Path(sys.argv[2]))
    with repo.writer() as writer:
        writer.add_bytes(random.Random(3).randbytes(6 << 20))  # less than a 16 MiB pack
        time.sleep(120)  # killed here, with the pack half written
    """
)


def test_a_writer_killed_mid_pack_leaves_no_half_pack(tmp_path: Path):
    # Given a store with one snapshot,
    store = tmp_path / "store"
    with Repository.open(str(store), create=True, cache_dir=tmp_path / "cache") as repo:
        with repo.writer() as writer:
            kept = writer.add_bytes(random_bytes(2 * MiB, 4))
        earlier = repo.save_manifest({"files": kept.to_json()})
    packs_before = sorted(p.name for p in (store / "data").rglob("*") if p.is_file())

    # when a writer is killed while its pack is half written (its staged file growing),
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    cmd = [sys.executable, "-c", _KILLED_WRITER, str(store), str(tmp_path / "cache2")]
    child = subprocess.Popen(cmd, env=env)
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > MiB for p in (store / "tmp").glob("staged-*")):
            assert child.poll() is None and time.monotonic() < deadline, "no pack was staged"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()

    # then no pack appeared under data/, the half pack is only a stray file in tmp/,
    assert sorted(p.name for p in (store / "data").rglob("*") if p.is_file()) == packs_before
    assert [p.name.startswith("staged-") for p in (store / "tmp").iterdir()] == [True]
    with Repository.open(str(store), create=False, cache_dir=tmp_path / "cache") as repo:
        # which opening the store ignores: it checks clean, the earlier snapshot reads,
        assert "tmp/" not in "".join(repo.backend.list(""))
        report = repo.check()
        assert report.ok, report.problems
        assert repo.list_manifests() == [earlier]
        assert b"".join(repo.iter_file(kept)) == random_bytes(2 * MiB, 4)
        # a new writer stores the same data whole,
        with repo.writer() as writer:
            redo = writer.add_bytes(random.Random(3).randbytes(6 << 20))
        assert b"".join(repo.iter_file(redo)) == random.Random(3).randbytes(6 << 20)
    # and repair deletes the stray file.
    from westtek_core.snapshot.repair import repair_store

    with Repository.open(str(store), create=False, cache_dir=tmp_path / "cache") as repo:
        assert repair_store(repo).removed_partial_writes == 1
    assert list((store / "tmp").iterdir()) == []


def test_a_checked_file_changed_while_streamed_gets_none_of_its_new_bytes_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Given a big file checked (as a secret scan checks it), in a store of small packs,
    path = tmp_path / "data.bin"
    path.write_bytes(random_bytes(24 * MiB, 5))
    checked = os.stat(path)
    secret = b"AKIA" + b"Z" * 16  # what the new version brings
    init_store(str(tmp_path / "store"), pack_size=MiB)
    repo = Repository.open(str(tmp_path / "store"), create=False, cache_dir=tmp_path / "cache")

    # when the file is rewritten after the writer's first read of it,
    import westtek_core.store.repository.write as write_module

    reads = []
    real_readv = os.readv

    def readv_then_change(fd: int, buffers: list[memoryview]) -> int:
        count = real_readv(fd, buffers)
        if not reads:
            with open(path, "r+b") as f:  # noqa: PTH123 — same inode, new bytes everywhere
                f.write(secret * (len(checked_bytes) // len(secret)))
        reads.append(count)
        return count

    checked_bytes = path.read_bytes()
    monkeypatch.setattr(write_module.os, "readv", readv_then_change)
    with repo.writer() as writer:
        with pytest.raises(SourceChanged, match="changed after it was checked"):
            writer.add_file(path, checked)
        monkeypatch.undo()

    # then the file is refused at its first read and no stored chunk holds the new bytes.
    assert len(reads) == 1
    for key in repo.backend.list("data/"):
        assert secret not in repo.backend.load(key)
    repo.close()


_MEASURED_WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from westtek_core.store import Repository

    with Repository.open(sys.argv[1], create=True, cache_dir=Path(sys.argv[2])) as repo:
        with repo.writer() as writer:
            writer.add_file(sys.argv[3], os.stat(sys.argv[3]))  # checked, as after a scan
    """
)


def peak_rss_mib(tmp_path: Path, name: str, size: int) -> float:
    """Peak RSS of a process storing one checked file of ``size`` generated bytes."""
    path = tmp_path / name
    rng = random.Random(size)
    with open(path, "wb") as f:  # noqa: PTH123
        for start in range(0, size, 4 * MiB):
            f.write(rng.randbytes(min(4 * MiB, size - start)))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    store, cache = tmp_path / f"store-{name}", tmp_path / f"cache-{name}"
    child = subprocess.Popen([sys.executable, "-c", _MEASURED_WRITER, store, cache, path], env=env)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0
    path.unlink()
    return usage.ru_maxrss / 1024


def test_memory_does_not_grow_with_the_size_of_a_file(tmp_path: Path):
    # Given the peak memory of storing a 1 MiB file, storing a 200 MiB one (incompressible,
    # checked as a scanned file is) needs at most what the writer keeps in flight more:
    # chunks queued for compression (16 MiB) and the chunker's buffer, never the file.
    small = peak_rss_mib(tmp_path, "small.bin", MiB)
    big = peak_rss_mib(tmp_path, "big.bin", 200 * MiB)
    assert big - small < 80, (small, big)
