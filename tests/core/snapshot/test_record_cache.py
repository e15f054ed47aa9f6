"""Re-snapshots reuse the encoded records of unchanged directories, and only those.

The property every test checks: a snapshot taken with the record cache is the snapshot
taken without it (the same manifest, the same bytes but for the time it was taken).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from westtek_core.capture import capture_environment
from westtek_core.snapshot import create_snapshot, delete_snapshot, load_snapshot
from westtek_core.snapshot.record_cache import EncodedRun, RecordCache
from westtek_core.store import Repository, RepositoryWriter
from westtek_core.store.repository import canonical_json


@pytest.fixture
def repo(tmp_path):
    return Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")


def snapshot(repo, env, progress=None):
    capture = capture_environment([str(env["python"])], env["workspace"])
    return create_snapshot(
        repo, capture, environment_id="alice@vault-13", created_by="alice", progress=progress
    )


def record_caches(repo) -> list[Path]:
    return sorted((repo.cache_dir / "records").glob("*.bin"))


def staged_files(directory: Path) -> list[Path]:
    """Cache files being written (named ``.<cache>.<random>.staged``)."""
    return sorted(directory.glob(".*.staged"))


def without_time(manifest):
    """A manifest without what differs between two snapshots of the same content."""
    same = {k: v for k, v in manifest.items() if k not in ("id", "timestamp")}
    # what this snapshot added to the store: all at first, nothing after
    same["metadata"] = {k: v for k, v in manifest["metadata"].items() if k != "stored_bytes"}
    return same


def cold_snapshot(repo, env):
    """The same snapshot taken with no record cache."""
    shutil.rmtree(repo.cache_dir / "records")
    return snapshot(repo, env)


def env_record(manifest, path):
    files = manifest["interpreters"][0]["prefix_tree"]["files"]
    return next(f for f in files if f["path"] == path)


def site_packages(env) -> Path:
    return next((env["venv"] / "lib").glob("python3*/site-packages"))


def test_a_reused_snapshot_is_byte_for_byte_the_one_built_without_the_cache(repo, research_env):
    # Given a first snapshot, which leaves a record cache,
    snapshot(repo, research_env)
    assert record_caches(repo)
    # when nothing changed and the environment is snapshotted with it, then without it,
    warm = snapshot(repo, research_env)
    cold = cold_snapshot(repo, research_env)
    # then both manifests are the same but for the time, and each is stored as its
    # canonical encoding (the id is its hash),
    assert without_time(warm.manifest) == without_time(cold.manifest)
    for result in (warm, cold):
        assert result.encoded == canonical_json(without_id(result.manifest))
        assert load_snapshot(repo, result.id) == result.manifest
    # and the checksum of their content is the same.
    assert warm.manifest["checksum"] == cold.manifest["checksum"]


def without_id(manifest):
    return {k: v for k, v in manifest.items() if k != "id"}


def test_unchanged_directories_are_not_looked_at_again(repo, research_env):
    # Given a first snapshot, and its stat cache gone (each file would be read again),
    first = snapshot(repo, research_env)
    (repo.cache_dir / "statcache.sqlite").unlink()
    # when the unchanged environment is snapshotted again,
    again = snapshot(repo, research_env)
    # then its files' records were reused without reading them: all count as unchanged.
    env_files = sum(
        1 for f in first.manifest["interpreters"][0]["prefix_tree"]["files"] if f["kind"] == "file"
    )
    assert again.unchanged_files >= env_files
    assert without_time(again.manifest) == without_time(first.manifest)


def test_only_the_changed_directory_is_stored_again(repo, research_env, monkeypatch):
    # Given a first snapshot, then one file of one package directory changed,
    snapshot(repo, research_env)
    package = site_packages(research_env) / "westtek_probe_pkg"
    (package / "extra.py").write_text("EXTRA = 1\n")
    # when the environment is snapshotted again, counting the files handed to the store,
    stored: list[str] = []
    add_file = RepositoryWriter.add_file

    def counting(self, path, *args, **kwargs):
        stored.append(os.fspath(path))
        return add_file(self, path, *args, **kwargs)

    monkeypatch.setattr(RepositoryWriter, "add_file", counting)
    snapshot(repo, research_env)
    # then of the environment's files only that directory's were stored (by the stat cache,
    # had the record cache not been used): every other directory's records were reused.
    venv = os.fspath(research_env["venv"]) + os.sep
    in_env = {p for p in stored if p.startswith(venv)}
    assert in_env == {os.fspath(p) for p in package.iterdir() if p.is_file()}


def test_a_file_rewritten_with_its_size_and_mtime_kept_is_stored_again(repo, research_env):
    # Given a snapshot, then a module rewritten in place: same size, mtime set back,
    before = snapshot(repo, research_env)
    module = next(site_packages(research_env).glob("westtek_probe_pkg/*.py"))
    st = module.stat()
    data = module.read_bytes()
    module.write_bytes(data.replace(b"1.0.0", b"9.9.9") if b"1.0.0" in data else data[::-1])
    os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert module.stat().st_size == st.st_size
    # when the environment is snapshotted again,
    after = snapshot(repo, research_env)
    # then the file's new content is recorded (its directory's records were not reused),
    path = str(module.relative_to(research_env["venv"]))
    assert (
        env_record(after.manifest, path)["content"] != env_record(before.manifest, path)["content"]
    )
    # and the manifest is the one taken without the cache.
    assert without_time(after.manifest) == without_time(cold_snapshot(repo, research_env).manifest)


@pytest.mark.parametrize("change", ["added", "removed"])
def test_a_file_added_or_removed_is_seen(repo, research_env, change):
    # Given a snapshot, then a file added to (or removed from) a package's directory,
    snapshot(repo, research_env)
    package = site_packages(research_env) / "westtek_probe_pkg"
    if change == "added":
        (package / "extra.py").write_text("EXTRA = 1\n")
    else:
        next(p for p in package.iterdir() if p.is_file()).unlink()
    listed = sorted(str(p.relative_to(research_env["venv"])) for p in package.iterdir())
    # when the environment is snapshotted again,
    after = snapshot(repo, research_env)
    # then the manifest lists the directory as it is now, as a snapshot without the cache does.
    prefix = str(package.relative_to(research_env["venv"])) + "/"
    files = after.manifest["interpreters"][0]["prefix_tree"]["files"]
    assert [f["path"] for f in files if f["path"].startswith(prefix)] == [
        p for p in listed if "__pycache__" not in p
    ]
    assert without_time(after.manifest) == without_time(cold_snapshot(repo, research_env).manifest)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped"])
def test_a_damaged_record_cache_is_ignored_and_written_again(repo, research_env, damage):
    # Given a snapshot and its record cache damaged,
    first = snapshot(repo, research_env)
    (cache,) = record_caches(repo)
    data = cache.read_bytes()
    if damage == "garbage":
        cache.write_bytes(b"not a record cache")
    elif damage == "truncated":
        cache.write_bytes(data[: len(data) // 2])
    else:
        cache.write_bytes(data[:-10] + bytes(b ^ 0xFF for b in data[-10:]))
    # when the environment is snapshotted again,
    again = snapshot(repo, research_env)
    # then the snapshot is the same as before,
    assert without_time(again.manifest) == without_time(first.manifest)
    # and the cache was written again, whole: the next snapshot reuses it.
    assert cache.read_bytes() != b"not a record cache"
    (repo.cache_dir / "statcache.sqlite").unlink()
    env_files = sum(
        1 for f in first.manifest["interpreters"][0]["prefix_tree"]["files"] if f["kind"] == "file"
    )
    assert snapshot(repo, research_env).unchanged_files >= env_files


def test_records_naming_chunks_a_prune_removed_are_built_again(repo, research_env):
    # Given a snapshot, deleted with its data (its chunks are no longer in the store),
    first = snapshot(repo, research_env)
    delete_snapshot(repo, first.id)
    # when the environment is snapshotted again with the record cache still there,
    again = snapshot(repo, research_env)
    # then every chunk its manifest names is in the store again.
    report = repo.check(read_data=True)
    assert not report.problems and not report.damaged_chunks
    assert without_time(again.manifest) == without_time(first.manifest)


def encoded_run(number: int) -> EncodedRun:
    chunk = number.to_bytes(32, "big")
    record = b'{"path":"d%d/f","size":4096}' % number
    return EncodedRun(record * 20, b"line %d\n" % number, (chunk,), 1, 4096)


def test_runs_are_written_as_they_are_kept_and_put_in_place_once_saved(tmp_path):
    # Given a cache with no file yet,
    cache = RecordCache.of_area(tmp_path, "env0", "/srv/env")
    runs = {bytes([n]) * 32: encoded_run(n) for n in range(200)}
    # when a snapshot keeps its runs,
    for key, run in runs.items():
        cache.keep(key, run)
    # then they are already on disk, staged beside the cache (not held until the end),
    (staged,) = staged_files(cache.path.parent)
    assert staged.stat().st_size > sum(len(r.json) for r in runs.values()) // 2
    # but no cache is in place until the snapshot is saved;
    assert not cache.path.exists()
    cache.save()
    # then the staged file is the cache, and the next snapshot finds every run.
    assert cache.path.exists() and not staged_files(cache.path.parent)
    again = RecordCache(cache.path)
    assert all(again.get(key) == run for key, run in runs.items())


def test_reused_runs_are_kept_and_a_cache_all_reused_is_not_written_again(tmp_path):
    # Given a saved cache of two runs,
    first = RecordCache.of_area(tmp_path, "env0", "/srv/env")
    first.keep(b"k" * 32, encoded_run(1))
    first.keep(b"j" * 32, encoded_run(2))
    first.save()
    # when the next snapshot reuses one of them only,
    again = RecordCache(first.path)
    reused = again.get(b"k" * 32)
    assert reused is not None
    again.keep(b"k" * 32, reused)
    again.save()
    # then the cache holds just that run,
    third = RecordCache(first.path)
    assert third.get(b"k" * 32) == encoded_run(1) and third.get(b"j" * 32) is None
    # and a snapshot reusing every run stages nothing and leaves the file in place.
    inode = first.path.stat().st_ino
    third.keep(b"k" * 32, encoded_run(1))
    assert not staged_files(first.path.parent)
    third.save()
    assert first.path.stat().st_ino == inode


def test_a_failed_snapshot_leaves_the_cache_as_it_was_and_nothing_staged(repo, research_env):
    # Given a snapshot and its record cache, then a file added early in the environment's
    # walk (its directory's records are built again, and staged),
    snapshot(repo, research_env)
    (cache,) = record_caches(repo)
    before = cache.read_bytes()
    (research_env["venv"] / "bin" / "extra-tool").write_text("#!/bin/sh\n")

    # when the next snapshot fails half-way through the environment's files,
    staged_when_failing = []

    def fail_half_way(progress):
        if progress.files_done > progress.files_total // 2:
            staged_when_failing.extend(staged_files(cache.parent))
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed") as failure:
        snapshot(repo, research_env, progress=fail_half_way)
    assert staged_when_failing, "the rebuilt directory's runs were staged as built"
    # then, while the failure (and its traceback) is still held, the cache in place is
    # the one before, whole, and no staged file is left.
    assert failure.value is not None
    assert cache.read_bytes() == before
    assert not staged_files(cache.parent)


def test_staged_files_of_killed_snapshots_are_removed(repo, research_env):
    # Given a staged cache file left by a snapshot killed two days ago, and one being
    # written right now by another snapshot,
    records = repo.cache_dir / "records"
    records.mkdir(parents=True)
    killed = records / ".0123.bin.abcd.staged"
    killed.write_bytes(b"half a cache")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(killed, (two_days_ago, two_days_ago))
    running = records / ".4567.bin.efgh.staged"
    running.write_bytes(b"a cache being written")
    # when a snapshot writes its cache,
    snapshot(repo, research_env)
    # then the killed snapshot's file is gone, the other one is left alone.
    assert staged_files(records) == [running]
