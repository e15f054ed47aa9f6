"""Repository behaviour, run on every backend (the ``backend`` fixture is parametrized)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import blake3
import pytest

from tests.core.store.conftest import OpenRepo, random_bytes, text_bytes, write_tree
from westtek_core.store import (
    FileContent,
    ObjectCorrupt,
    ObjectMissing,
    Repository,
    StoreBackend,
    StoreError,
    StoreFormatError,
    StoreKeyError,
)
from westtek_core.store.repository import canonical_json, pack_key

MiB = 1 << 20


def all_objects(backend: StoreBackend) -> dict[str, bytes]:
    return {key: backend.load(key) for key in backend.list("")}


def read_back(repo: Repository, content: FileContent) -> bytes:
    return b"".join(repo.iter_file(content))


def only_pack(backend: StoreBackend) -> str:
    (key,) = backend.list("data/")
    return key


# -- roundtrip and dedup -------------------------------------------------------------------


def test_roundtrip_of_empty_small_and_multi_chunk_files(open_repo: OpenRepo, tmp_path: Path):
    files = {
        "empty": b"",
        "small.py": text_bytes(3000, 1),
        "large.bin": random_bytes(3 * MiB + 17, 2),
    }
    paths = write_tree(tmp_path / "src", files)
    repo = open_repo()
    with repo.writer() as writer:
        contents = {name: writer.add_file(path) for name, path in paths.items()}

    assert contents["empty"] == FileContent(0, ())
    assert len(contents["small.py"].chunks) == 1
    assert len(contents["large.bin"].chunks) >= 2
    for name, content in contents.items():
        assert content.size == len(files[name])
        assert read_back(repo, content) == files[name]
    # A second handle on the store reads the same data from the index files.
    again = open_repo(create=False)
    assert read_back(again, contents["large.bin"]) == files["large.bin"]
    assert contents["large.bin"].to_json() == list(contents["large.bin"].chunks)


def test_add_bytes_matches_add_file(open_repo: OpenRepo, tmp_path: Path):
    data = random_bytes(2 * MiB, 3)
    (path,) = write_tree(tmp_path, {"f": data}).values()
    repo = open_repo()
    with repo.writer() as writer:
        from_bytes = writer.add_bytes(data)
        from_file = writer.add_file(path)
    assert from_bytes == from_file
    assert writer.new_bytes < len(data) * 1.01  # stored once


def test_chunk_ids_are_blake3_of_plaintext(open_repo: OpenRepo):
    repo = open_repo()
    with repo.writer() as writer:
        content = writer.add_bytes(b"hello world")
    assert content.chunks == (blake3.blake3(b"hello world").hexdigest(),)


def test_identical_files_are_stored_once(open_repo: OpenRepo, tmp_path: Path):
    big = random_bytes(2 * MiB, 4)
    small = text_bytes(5000, 5)
    paths = write_tree(
        tmp_path,
        {f"copy{i}/big": big for i in range(3)} | {f"copy{i}/small": small for i in range(3)},
    )
    repo = open_repo()
    with repo.writer() as writer:
        contents = [writer.add_file(p) for p in paths.values()]
    assert len({c.chunks for c in contents}) == 2
    stats = repo.stats()
    unique_chunks = {chunk for c in contents for chunk in c.chunks}
    assert stats["blobs"] == len(unique_chunks)
    assert stats["raw_bytes"] == len(big) + len(small)
    assert stats["stored_bytes"] < len(big) + len(small)  # text compresses
    assert stats["packs"] == 1  # everything packed together, not one object per file


def test_dedup_across_writer_sessions(open_repo: OpenRepo, tmp_path: Path):
    data = random_bytes(3 * MiB, 6)
    repo = open_repo()
    with repo.writer() as writer:
        first = writer.add_bytes(data)
    before = repo.stats()
    # Another process (another Repository) writing the same data adds nothing.
    other = open_repo(create=False)
    with other.writer() as writer:
        second = writer.add_bytes(data)
    assert second == first
    assert writer.new_bytes == 0
    assert other.stats() == before


def test_near_identical_environment_adds_under_5_percent(open_repo: OpenRepo, tmp_path: Path):
    # Given an "environment" of many small source files and a few big binaries…
    env = {f"lib/pkg{i // 50}/mod{i}.py": text_bytes(2000 + i, i) for i in range(300)}
    env |= {f"lib/bin{i}.so": random_bytes(6 * MiB + i * 4096, 1000 + i) for i in range(6)}
    first_paths = write_tree(tmp_path / "env1", env)
    # …and a second one that differs in a few source files and in a rebuilt binary.
    env2 = dict(env)
    for i in (3, 77, 150):
        env2[f"lib/pkg{i // 50}/mod{i}.py"] = text_bytes(2000, 9000 + i)
    bin0 = env["lib/bin0.so"]
    at = 4 * MiB + MiB // 2  # inside a ~0.6 MiB chunk of this seed
    env2["lib/bin0.so"] = bin0[:at] + b"build-id-2" + bin0[at + 10 :]
    second_paths = write_tree(tmp_path / "env2", env2)

    repo = open_repo()
    with repo.writer() as writer:
        for path in first_paths.values():
            writer.add_file(path)
    first_bytes = writer.new_bytes
    with repo.writer() as writer:
        contents = {rel: writer.add_file(path) for rel, path in second_paths.items()}
    assert writer.new_bytes < 0.05 * first_bytes
    assert read_back(repo, contents["lib/bin0.so"]) == env2["lib/bin0.so"]


# -- manifests -----------------------------------------------------------------------------


def test_manifest_id_is_hash_of_canonical_json_and_prefixes_resolve(open_repo: OpenRepo):
    repo = open_repo()
    manifest = {"name": "café", "files": {"b": [1], "a": [2]}}
    sid = repo.save_manifest(manifest)
    expected = b'{"files":{"a":[2],"b":[1]},"name":"caf\xc3\xa9"}'
    assert canonical_json(manifest) == expected
    assert sid == blake3.blake3(expected).hexdigest()
    assert repo.save_manifest({"name": "café", "files": {"a": [2], "b": [1]}}) == sid
    assert repo.load_manifest(sid) == manifest
    assert repo.load_manifest(sid[:6]) == manifest
    assert repo.list_manifests() == [sid]


def test_manifest_lookup_errors(open_repo: OpenRepo):
    repo = open_repo()
    ids = {repo.save_manifest({"n": n}) for n in range(40)}
    with pytest.raises(StoreError, match="at least 6 hex"):
        repo.load_manifest("abc")
    with pytest.raises(StoreError, match="at least 6 hex"):
        repo.load_manifest("zzzzzzzz")
    unknown = next(
        p for p in (f"{n:06x}" for n in range(1 << 24)) if not any(i.startswith(p) for i in ids)
    )
    with pytest.raises(ObjectMissing, match=f"no snapshot {unknown}"):
        repo.load_manifest(unknown)
    # With 40 ids two share a first hex digit; a 1-character prefix is refused anyway, so
    # make an ambiguous 6-character prefix by planting two ids that share it.
    repo.backend.save("snapshots/" + "ab" * 32, b"x")
    repo.backend.save("snapshots/" + "ab" * 31 + "cd", b"x")
    with pytest.raises(StoreError, match="ambiguous: it matches 2 snapshots"):
        repo.load_manifest("ababab")


def test_delete_manifest(open_repo: OpenRepo):
    repo = open_repo()
    keep, drop = repo.save_manifest({"n": 1}), repo.save_manifest({"n": 2})
    repo.delete_manifest(drop[:10])
    assert repo.list_manifests() == [keep]
    with pytest.raises(ObjectMissing):
        repo.delete_manifest(drop)


def test_save_manifest_inside_writer_is_refused(open_repo: OpenRepo):
    repo = open_repo()
    with repo.writer():
        with pytest.raises(StoreError, match="after the writer has exited"):
            repo.save_manifest({"n": 1})


# -- crash consistency ---------------------------------------------------------------------


def test_exception_in_writer_commits_nothing(open_repo: OpenRepo):
    repo = open_repo()
    with repo.writer() as writer:
        kept = writer.add_bytes(random_bytes(MiB, 10))
    earlier = repo.save_manifest({"files": kept.to_json()})
    index_files = set(repo.backend.list("index/"))

    # When a writer session fails half-way…
    lost_data = random_bytes(4 * MiB, 11)
    with pytest.raises(RuntimeError, match="boom"):
        with repo.writer() as writer:
            lost = writer.add_bytes(lost_data)
            raise RuntimeError("boom")

    # …no index or manifest names its chunks; orphan packs are allowed, nothing else.
    assert set(repo.backend.list("index/")) == index_files
    assert repo.list_manifests() == [earlier]
    assert not any(repo.has_chunk(c) for c in lost.chunks)
    assert read_back(repo, kept) == random_bytes(MiB, 10)
    report = repo.check()
    assert report.ok, report.problems
    # A later session stores the same data again instead of trusting the orphans.
    with repo.writer() as writer:
        redo = writer.add_bytes(lost_data)
    assert redo == lost and writer.new_bytes > 0
    assert read_back(repo, redo) == lost_data


def test_open_without_create_on_empty_location(backend: StoreBackend, tmp_path: Path):
    with pytest.raises(StoreError, match=f"^no West Tek store at {backend.url}$"):
        Repository.open(backend, create=False, cache_dir=tmp_path)
    assert list(backend.list("")) == []


def test_newer_format_is_refused(backend: StoreBackend, tmp_path: Path):
    backend.save(
        "config", json.dumps({"format": "westtek-store", "version": 3, "id": "x"}).encode()
    )
    with pytest.raises(StoreFormatError) as err:
        Repository.open(backend, cache_dir=tmp_path)
    assert str(err.value) == (
        f"store at {backend.url} was written by a newer West Tek (format 3, this one reads up"
        " to 1): upgrade westtek"
    )


def test_unreadable_config_is_a_format_error(backend: StoreBackend, tmp_path: Path):
    backend.save("config", b"not json")
    with pytest.raises(StoreFormatError, match="unreadable config"):
        Repository.open(backend, cache_dir=tmp_path)


def test_config_records_format_and_chunker(open_repo: OpenRepo, backend: StoreBackend):
    repo = open_repo()
    config = json.loads(backend.load("config"))
    assert config["version"] == 1
    assert config["id"] == repo.id and len(repo.id) == 32
    assert config["chunker"]["min_size"] == 256 << 10
    assert config["encryption"] is None
    assert open_repo(create=False).id == repo.id


# -- check ---------------------------------------------------------------------------------


def _store_two_files(repo: Repository) -> tuple[FileContent, FileContent]:
    with repo.writer() as writer:
        a = writer.add_bytes(random_bytes(1 * MiB, 20))
        b = writer.add_bytes(text_bytes(200_000, 21))
    repo.save_manifest({"a": a.to_json(), "b": b.to_json()})
    return a, b


def test_check_detects_a_flipped_byte_and_names_chunk_and_pack(open_repo: OpenRepo):
    repo = open_repo()
    a, b = _store_two_files(repo)
    assert repo.check().ok
    key = only_pack(repo.backend)
    data = bytearray(repo.backend.load(key))
    data[100] ^= 0x01  # inside the first blob
    repo.backend.remove(key)
    repo.backend.save(key, bytes(data))

    report = repo.check()
    assert not report.ok
    damaged = set(a.chunks) | set(b.chunks)
    assert len(report.damaged_chunks) == 1 and report.damaged_chunks < damaged
    (bad,) = report.damaged_chunks
    assert any(key in p and bad in p for p in report.problems)
    assert any(key in p and "does not match its id" in p for p in report.problems)
    with pytest.raises(ObjectCorrupt, match=bad):
        repo.read_chunk(bad)
    # Without reading data, the damage is invisible (only structure is checked).
    assert repo.check(read_data=False).ok


def test_check_detects_a_deleted_pack(open_repo: OpenRepo):
    repo = open_repo()
    a, b = _store_two_files(repo)
    key = only_pack(repo.backend)
    repo.backend.remove(key)
    for read_data in (True, False):
        report = repo.check(read_data=read_data)
        assert report.damaged_chunks == set(a.chunks) | set(b.chunks)
        assert any(key in p and "missing" in p for p in report.problems)
    with pytest.raises(ObjectMissing, match=key):
        repo.read_chunk(a.chunks[0])


def test_check_detects_a_truncated_pack(open_repo: OpenRepo):
    repo = open_repo()
    a, b = _store_two_files(repo)
    key = only_pack(repo.backend)
    data = repo.backend.load(key)
    repo.backend.remove(key)
    repo.backend.save(key, data[: len(data) // 2])
    report = repo.check()
    assert not report.ok
    assert report.damaged_chunks  # those beyond the cut
    assert any(key in p and ("truncated" in p or "trailer" in p) for p in report.problems)


def make_orphan_pack(repo: Repository) -> str:
    """A pack no index lists, as an interrupted writer leaves behind."""
    indexes = set(repo.backend.list("index/"))
    packs = set(repo.backend.list("data/"))
    with repo.writer() as writer:
        writer.add_bytes(random_bytes(MiB, 99))
    repo.close()  # release the writer's lock: nothing will commit this data
    for key in set(repo.backend.list("index/")) - indexes:
        repo.backend.remove(key)
    (orphan,) = set(repo.backend.list("data/")) - packs
    return orphan


def test_check_reports_orphan_packs_without_failing(open_repo: OpenRepo):
    repo = open_repo()
    orphan = make_orphan_pack(open_repo(create=False))
    report = repo.check()
    assert report.ok
    assert report.orphan_packs == [orphan]


# -- encryption ----------------------------------------------------------------------------


def test_encrypted_roundtrip_hides_plaintext(open_repo: OpenRepo, backend: StoreBackend, tmp_path):
    key_file = tmp_path / "keys" / "store.key"
    repo = open_repo(encrypt=True, key_file=key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_bytes()) == 32
    secret = b"TOP-SECRET-RESEARCH-DATA " * 2000  # compressible: zstd would shrink it
    raw = random_bytes(700_000, 31)
    with repo.writer() as writer:
        a = writer.add_bytes(secret)
        b = writer.add_bytes(raw)
    sid = repo.save_manifest({"title": "TOP-SECRET-RESEARCH-DATA", "a": a.to_json()})

    # Chunk ids are keyed: not the plain BLAKE3 an attacker could compute.
    assert a.chunks[0] != blake3.blake3(secret).hexdigest()
    stored = b"".join(all_objects(backend).values())
    assert b"TOP-SECRET" not in stored
    assert raw[1000:1100] not in stored
    assert a.chunks[0].encode() not in stored and bytes.fromhex(a.chunks[0]) not in stored

    reopened = open_repo(create=False, key_file=key_file)
    assert read_back(reopened, a) == secret
    assert read_back(reopened, b) == raw
    assert reopened.load_manifest(sid)["title"] == "TOP-SECRET-RESEARCH-DATA"
    assert reopened.check().ok


def test_wrong_key_is_refused_before_anything_is_written(
    open_repo: OpenRepo, backend: StoreBackend, tmp_path: Path
):
    repo = open_repo(encrypt=True, key_file=tmp_path / "right.key")
    with repo.writer() as writer:
        writer.add_bytes(b"data")
    repo.save_manifest({"n": 1})
    before = all_objects(backend)
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(b"\x01" * 32)

    with pytest.raises(StoreKeyError, match="wrong key"):
        Repository.open(backend, key_file=wrong, cache_dir=tmp_path / "c2")
    with pytest.raises(StoreKeyError, match="key file is needed"):
        Repository.open(backend, cache_dir=tmp_path / "c2")
    with pytest.raises(StoreKeyError, match="does not exist"):
        Repository.open(backend, key_file=tmp_path / "absent.key", cache_dir=tmp_path / "c2")
    (tmp_path / "short.key").write_bytes(b"short")
    with pytest.raises(StoreKeyError, match="not a West Tek key"):
        Repository.open(backend, key_file=tmp_path / "short.key", cache_dir=tmp_path / "c2")
    assert all_objects(backend) == before
    assert not (tmp_path / "absent.key").exists()


def test_an_unencrypted_store_does_not_load_the_cipher_library(tmp_path: Path):
    # Given a fresh process that stores and reads back through an unencrypted store,
    script = """
import sys
from pathlib import Path
from westtek_core.store import Repository
repo = Repository.open(sys.argv[1], cache_dir=Path(sys.argv[2]))
with repo.writer() as writer:
    content = writer.add_bytes(b"data" * 1000)
repo.load_manifest(repo.save_manifest({"n": 1}))
assert b"".join(repo.iter_file(content)) == b"data" * 1000
print("cryptography" in sys.modules)
"""
    args = [str(tmp_path / "store"), str(tmp_path / "cache")]
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True
    )
    # then the cipher library (~7 MiB of a snapshot's memory) was never loaded.
    assert done.stdout.strip() == "False"


def test_encrypting_a_new_store_needs_a_key_file(backend: StoreBackend, tmp_path: Path):
    with pytest.raises(StoreKeyError, match="needs a key file"):
        Repository.open(backend, encrypt=True, cache_dir=tmp_path)
    assert list(backend.list("")) == []


def test_unencrypted_store_refuses_encrypt_flag(open_repo: OpenRepo, tmp_path: Path):
    open_repo()
    with pytest.raises(StoreError, match="is not encrypted"):
        open_repo(encrypt=True, key_file=tmp_path / "k")


# -- prune ---------------------------------------------------------------------------------


def test_prune_frees_unreferenced_packs_and_keeps_referenced_data(open_repo: OpenRepo):
    repo = open_repo()
    with repo.writer() as writer:
        old = writer.add_bytes(random_bytes(3 * MiB, 40))
    repo.save_manifest({"old": old.to_json()})
    with repo.writer() as writer:
        new = writer.add_bytes(random_bytes(2 * MiB, 41))
    new_sid = repo.save_manifest({"new": new.to_json()})
    packs_before = set(repo.backend.list("data/"))
    assert len(packs_before) == 2

    stats = repo.prune(set(new.chunks))

    assert stats.removed_packs == 1 and stats.repacked_packs == 0
    assert stats.removed_blobs == len(old.chunks)
    assert stats.freed_bytes >= 3 * MiB
    assert len(set(repo.backend.list("data/"))) == 1
    assert len(list(repo.backend.list("index/"))) == 1
    assert read_back(repo, new) == random_bytes(2 * MiB, 41)
    with pytest.raises(ObjectMissing):
        repo.read_chunk(old.chunks[0])
    assert repo.load_manifest(new_sid) == {"new": new.to_json()}
    assert repo.check().ok
    assert repo.stats()["blobs"] == len(new.chunks)


def test_prune_repacks_mostly_unused_packs(open_repo: OpenRepo):
    repo = open_repo()
    with repo.writer() as writer:
        keep = writer.add_bytes(text_bytes(100_000, 50))
        drop = writer.add_bytes(random_bytes(2 * MiB, 51))
    repo.save_manifest({"keep": keep.to_json()})
    (old_pack,) = repo.backend.list("data/")
    stats = repo.prune(set(keep.chunks))
    assert stats.repacked_packs == 1 and stats.removed_packs == 0
    (new_pack,) = repo.backend.list("data/")
    assert new_pack != old_pack
    assert read_back(repo, keep) == text_bytes(100_000, 50)
    assert not any(repo.has_chunk(c) for c in drop.chunks)
    assert repo.check().ok


def test_prune_removes_orphan_packs(open_repo: OpenRepo):
    repo = open_repo()
    with repo.writer() as writer:
        keep = writer.add_bytes(b"keep me")
    repo.save_manifest({"keep": keep.to_json()})
    make_orphan_pack(open_repo(create=False))
    assert repo.check().orphan_packs
    repo.prune(set(keep.chunks))
    assert repo.check().orphan_packs == []
    assert read_back(repo, keep) == b"keep me"


def test_prune_refuses_while_a_writer_holds_a_fresh_lock(open_repo: OpenRepo):
    repo = open_repo()
    other = open_repo(create=False)
    with repo.writer() as writer:
        content = writer.add_bytes(b"in progress")
        with pytest.raises(StoreError, match="in use by a writer .*try again"):
            other.prune(set())
    # Until the manifest commits the data, the lock stays: prune must not collect it.
    with pytest.raises(StoreError, match="in use by a writer"):
        other.prune(set())
    repo.save_manifest({"c": content.to_json()})
    other.prune(set(content.chunks))
    assert read_back(repo, content) == b"in progress"


def test_prune_computes_references_under_its_lock(open_repo: OpenRepo):
    repo = open_repo()
    with repo.writer() as writer:
        content = writer.add_bytes(b"committed")
    sid = repo.save_manifest({"c": content.to_json()})
    seen_locks = []

    def referenced() -> set[str]:
        seen_locks.extend(repo.backend.list("locks/"))
        return {c for s in repo.list_manifests() for c in repo.load_manifest(s)["c"]}

    assert repo.prune(referenced).removed_packs == 0
    assert len(seen_locks) == 1  # the prune's own exclusive lock was already held
    assert read_back(repo, content) == b"committed"
    assert repo.list_manifests() == [sid]


def test_writer_refused_while_prune_runs_and_stale_locks_are_ignored(open_repo: OpenRepo):
    repo = open_repo()
    crypto = repo._crypto
    from westtek_core.store.locks import StoreLock

    prune_lock = StoreLock(repo.backend, crypto, exclusive=True, purpose="prune").acquire()
    with pytest.raises(StoreError, match="cannot start a writer: .* in use by a prune"):
        with repo.writer():
            pass
    prune_lock.release()
    # A lock written 31 minutes ago by another host is stale.
    stale = {"time": 0.0, "pid": 1, "hostname": "elsewhere", "exclusive": False, "purpose": "w"}
    repo.backend.save("locks/" + "0" * 32, crypto.seal(json.dumps(stale).encode()))
    assert repo.prune(set()).removed_packs == 0


# -- concurrency ---------------------------------------------------------------------------


def test_concurrent_writers_both_succeed(open_repo: OpenRepo):
    shared = random_bytes(MiB, 60)
    repos = [open_repo(), open_repo(create=False)]
    results: dict[int, tuple[FileContent, FileContent, str]] = {}
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            repo = repos[n]
            with repo.writer() as writer:
                common = writer.add_bytes(shared)
                own = writer.add_bytes(random_bytes(2 * MiB, 61 + n))
            sid = repo.save_manifest({"writer": n, "common": common.to_json()})
            results[n] = (common, own, sid)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    checker = open_repo(create=False)
    assert len(checker.list_manifests()) == 2
    for n, (common, own, sid) in results.items():
        assert checker.load_manifest(sid)["writer"] == n
        assert read_back(checker, common) == shared
        assert read_back(checker, own) == random_bytes(2 * MiB, 61 + n)
    assert checker.check().ok
    assert len(list(checker.backend.list("index/"))) == 2


def test_read_chunk_errors(open_repo: OpenRepo):
    repo = open_repo()
    with pytest.raises(StoreError, match="not a chunk id"):
        repo.read_chunk("xyz")
    with pytest.raises(ObjectMissing, match="not in the store"):
        repo.read_chunk("00" * 32)


def test_pack_key_layout():
    assert pack_key("ab" + "0" * 62) == "data/ab/ab" + "0" * 62
