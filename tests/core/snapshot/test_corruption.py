"""Corruption: damaged packs, index files and manifests in local, encrypted and S3 stores.

Each case takes two snapshots (A, then B with new data), damages one object, and then:
``westtek snapshot verify --all`` names every damaged snapshot and file (and nothing
else), an undamaged snapshot still restores byte for byte, and ``westtek snapshot repair``
re-reads what it can from the live environment, after which the store verifies and every
snapshot restores.
"""

from __future__ import annotations

import json
import os
import random
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.core.store.crash import westtek
from tests.core.stress import Lab, make_lab, tree_digest
from westtek_core.store import S3Backend


class Objects:
    """Raw access to a store's objects, around West Tek, as damage would come."""

    def __init__(self, url: str, backend: S3Backend | None = None) -> None:
        self.url = url
        self.s3 = backend

    def keys(self, prefix: str) -> set[str]:
        if self.s3 is not None:
            return set(self.s3.list(prefix))
        root = Path(self.url)
        return {str(p.relative_to(root)) for p in (root / prefix).rglob("*") if p.is_file()}

    def read(self, key: str) -> bytes:
        if self.s3 is not None:
            return self.s3.load(key)
        return Path(self.url, key).read_bytes()

    def overwrite(self, key: str, data: bytes) -> None:
        if self.s3 is not None:  # a plain PUT: the backend itself never overwrites
            self.s3.client.put_object(Bucket=self.s3.bucket, Key=self.s3._key(key), Body=data)
            return
        path = Path(self.url, key)
        os.chmod(path, 0o644)
        path.write_bytes(data)

    def delete(self, key: str) -> None:
        if self.s3 is not None:
            self.s3.remove(key)
        else:
            Path(self.url, key).unlink()


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """A small live environment, its variables set in this process for the in-process CLI."""
    made = make_lab(tmp_path / "lab", data_mib=2, small_files=30)
    for name, value in made.env.items():
        if name.startswith(("JUPYTER", "XDG_", "WESTTEK_")) or name == "HOME":
            monkeypatch.setenv(name, value)
    return made


@pytest.fixture(params=["local", "local-encrypted", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, lab: Lab) -> Iterator[Objects]:
    if request.param == "local":
        yield Objects(str(tmp_path / "store"))
        return
    if request.param == "local-encrypted":
        # an AES-256-GCM store: chunk ids are keyed, blobs and trailers sealed
        url = str(tmp_path / "encrypted-store")
        (tmp_path / "empty").mkdir()
        code, _, err = westtek(
            "snapshot", "create", "--python", str(lab.python), "--root",
            str(tmp_path / "empty"), "--store", url, "--encrypt", "--json",
        )  # fmt: skip
        assert code == 0, err
        code, _, err = westtek("snapshot", "delete", "--store", url, _only_id(url))
        assert code == 0, err
        assert json.loads(Path(url, "config").read_text())["encryption"]["cipher"] == "AES-256-GCM"
        yield Objects(url)
        return
    bucket = request.getfixturevalue("s3_bucket")
    prefix = f"stores/{secrets.token_hex(4)}"
    backend = S3Backend(bucket=bucket, prefix=prefix)
    yield Objects(f"s3://{bucket}/{prefix}", backend)
    backend.close()


def _only_id(url: str) -> str:
    code, out, err = westtek("snapshot", "list", "--store", url, "--json")
    assert code == 0, err
    (row,) = json.loads(out)["snapshots"]
    return str(row["id"])


def create(lab: Lab, store: Objects, note: str) -> str:
    code, out, err = westtek(
        "snapshot", "create", "--python", str(lab.python), "--root", str(lab.workspace),
        "--store", store.url, "--note", note, "--json",
    )  # fmt: skip
    assert code == 0, err
    return str(json.loads(out)["id"])


def verify(store: Objects) -> tuple[int, dict[str, Any]]:
    code, out, err = westtek("snapshot", "verify", "--all", "--store", store.url, "--json")
    return code, json.loads(out) if out else {"error": err}


def restores_as(store: Objects, snapshot_id: str, target: Path, expected: dict[str, str]) -> None:
    code, _, err = westtek(
        "snapshot", "restore", snapshot_id, "--to", str(target), "--store", store.url,
        "--no-validate", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert tree_digest(target / "workspace") == expected


def flip(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(damaged) // 3] ^= 0x5A
    return bytes(damaged)


DAMAGE = {
    "flip-pack-byte": lambda s, key: s.overwrite(key, flip(s.read(key))),
    "truncate-pack": lambda s, key: s.overwrite(key, s.read(key)[: len(s.read(key)) // 2]),
    "delete-pack": lambda s, key: s.delete(key),
}


def two_snapshots(lab: Lab, store: Objects) -> dict[str, Any]:
    """Snapshot A; new data; snapshot B. Returns ids, workspace states and B's own objects."""
    state_a = tree_digest(lab.workspace)
    id_a = create(lab, store, "A")
    packs_a, index_a = store.keys("data/"), store.keys("index/")
    rng = random.Random(5)
    (lab.workspace / "data" / "new-results.bin").write_bytes(rng.randbytes(1 << 20))
    (lab.workspace / "notes" / "new-finding.txt").write_text("B only: a finding\n" * 50)
    state_b = tree_digest(lab.workspace)
    id_b = create(lab, store, "B")
    return {
        "a": id_a,
        "b": id_b,
        "state_a": state_a,
        "state_b": state_b,
        "packs_a": sorted(packs_a),
        "packs_b": sorted(store.keys("data/") - packs_a),
        "index_b": sorted(store.keys("index/") - index_a),
    }


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damage_to_a_pack_is_named_survived_and_repaired(lab, store, damage, tmp_path):
    # Given snapshots A and B, B's new data in packs of its own,
    snaps = two_snapshots(lab, store)
    assert snaps["packs_b"], "B wrote no pack of its own"
    # when one of B's packs is damaged,
    DAMAGE[damage](store, snaps["packs_b"][0])

    # then verify fails and names B's new files, and only B;
    code, report = verify(store)
    assert code == 1 and not report["ok"]
    damaged = {(d["snapshot"], d["file"]) for d in report["damaged"]}
    only_b = {
        (snaps["b"], "workspace/data/new-results.bin"),
        (snaps["b"], "workspace/notes/new-finding.txt"),
    }
    # (a flipped byte or a cut damages the chunks it hits; a deleted pack, all of them)
    assert damaged == only_b if damage == "delete-pack" else damaged and damaged <= only_b
    # A, undamaged, still restores byte for byte;
    restores_as(store, snaps["a"], tmp_path / "restored-a", snaps["state_a"])

    # repair re-reads B's files from the live workspace,
    code, out, err = westtek("snapshot", "repair", "--store", store.url, "--json")
    repaired = json.loads(out)
    assert code == 0, (err, repaired)
    assert repaired["recovered_chunks"] >= 1
    assert {(snaps["b"], f["file"]) for f in repaired["recovered_files"]} == damaged
    # and afterwards the store verifies and both snapshots restore.
    assert verify(store) == (
        0,
        {"ok": True, "snapshots": sorted([snaps["a"], snaps["b"]]), "problems": [], "damaged": []},
    )
    restores_as(store, snaps["b"], tmp_path / "restored-b", snaps["state_b"])
    restores_as(store, snaps["a"], tmp_path / "restored-a2", snaps["state_a"])


def test_damage_to_a_shared_pack_names_every_snapshot_that_uses_it(lab, store, tmp_path):
    # A's pack holds chunks B deduplicated against: both snapshots are damaged
    snaps = two_snapshots(lab, store)
    key = snaps["packs_a"][0]
    store.overwrite(key, flip(store.read(key)))
    code, report = verify(store)
    assert code == 1
    assert {d["snapshot"] for d in report["damaged"]} == {snaps["a"], snaps["b"]}
    # repair salvages the pack's intact chunks and re-reads the damaged one
    code, out, err = westtek("snapshot", "repair", "--store", store.url, "--json")
    repaired = json.loads(out)
    assert code == 0, (err, repaired)
    assert repaired["damaged_packs"] == [key]
    assert verify(store)[0] == 0
    restores_as(store, snaps["a"], tmp_path / "a", snaps["state_a"])


def test_a_changed_live_file_cannot_be_repaired_and_is_named(lab, store):
    snaps = two_snapshots(lab, store)
    store.delete(snaps["packs_b"][0])
    # the researcher changed the file since the snapshot: its lost chunk is gone for good
    (lab.workspace / "data" / "new-results.bin").write_bytes(b"rewritten")
    code, out, _ = westtek("snapshot", "repair", "--store", store.url, "--json")
    repaired = json.loads(out)
    assert code == 1 and not repaired["ok"]
    assert [(u["snapshot"], u["file"]) for u in repaired["unrecoverable"]] == [
        (snaps["b"], "workspace/data/new-results.bin")
    ]
    assert "changed since" in repaired["unrecoverable"][0]["reason"]
    # the file that could be re-read was; verify names only what is still lost
    code, report = verify(store)
    assert {(d["snapshot"], d["file"]) for d in report["damaged"]} == {
        (snaps["b"], "workspace/data/new-results.bin")
    }


@pytest.mark.parametrize("damage", ["flip-index", "delete-index"])
def test_a_damaged_or_lost_index_file_is_rebuilt_from_the_packs(lab, store, damage, tmp_path):
    snaps = two_snapshots(lab, store)
    (key,) = snaps["index_b"]
    if damage == "flip-index":
        store.overwrite(key, flip(store.read(key)))
    else:
        store.delete(key)
    # B's chunks are no longer indexed: verify must say B is damaged, not "ok"
    code, report = verify(store)
    assert code == 1, report
    assert snaps["b"] in {d["snapshot"] for d in report["damaged"]}
    assert snaps["a"] not in {d["snapshot"] for d in report["damaged"]}
    restores_as(store, snaps["a"], tmp_path / "a", snaps["state_a"])
    # the packs describe themselves: repair rebuilds the index without the live files
    for path in (lab.workspace / "data").glob("*.bin"):
        path.unlink()
    code, out, err = westtek("snapshot", "repair", "--store", store.url, "--json")
    repaired = json.loads(out)
    assert code == 0, (err, repaired)
    assert repaired["recovered_chunks"] == 0 and repaired["removed_packs"] == 0
    assert verify(store)[0] == 0
    restores_as(store, snaps["b"], tmp_path / "b", snaps["state_b"])


@pytest.mark.parametrize("damage", ["flip-manifest", "truncate-manifest"])
def test_a_damaged_manifest_is_named_and_the_others_survive(lab, store, damage, tmp_path):
    snaps = two_snapshots(lab, store)
    key = f"snapshots/{snaps['b']}"
    data = store.read(key)
    store.overwrite(key, flip(data) if damage == "flip-manifest" else data[: len(data) // 2])
    code, report = verify(store)
    assert code == 1
    assert any(snaps["b"] in problem for problem in report["problems"]), report
    restores_as(store, snaps["a"], tmp_path / "a", snaps["state_a"])
    # a manifest cannot be re-read from anywhere: repair names it and how to get rid of it
    code, out, _ = westtek("snapshot", "repair", "--store", store.url, "--json")
    repaired = json.loads(out)
    assert code == 1
    (bad,) = repaired["damaged_snapshots"]
    assert bad["snapshot"] == snaps["b"] and "westtek snapshot delete" in bad["problem"]
    # restoring it is a clean one-line error, and deleting it leaves a healthy store
    code, _, err = westtek(
        "snapshot", "restore", snaps["b"], "--to", str(tmp_path / "b"), "--store", store.url
    )
    assert code == 1 and err.startswith("westtek: error:") and err.count("\n") == 1
    assert westtek("snapshot", "delete", snaps["b"], "--store", store.url, "--json")[0] == 0
    assert verify(store)[0] == 0
    restores_as(store, snaps["a"], tmp_path / "a2", snaps["state_a"])


class _Crash(BaseException):
    """The process died: nothing after this point happens."""


def test_repair_crashing_before_any_of_its_writes_then_rerun_loses_nothing(tmp_path, monkeypatch):
    # A kill -9 lands between two of repair's writes or removals; each of those moments is
    # reproduced exactly by failing every store mutation from the N-th on, for every N.
    import shutil

    from tests.core.stress import init_store
    from westtek_core.snapshot import load_snapshot, restore_snapshot, verify_snapshots
    from westtek_core.snapshot.repair import repair_store
    from westtek_core.store import LocalDirectoryBackend, Repository
    from westtek_core.store.backend import StagedObject

    lab = make_lab(tmp_path / "lab", data_mib=2, small_files=30)
    for name, value in lab.env.items():
        if name.startswith(("JUPYTER", "XDG_", "WESTTEK_")) or name == "HOME":
            monkeypatch.setenv(name, value)
    pristine = Objects(str(tmp_path / "damaged"))
    init_store(pristine.url, pack_size=128 << 10)
    snaps = two_snapshots(lab, pristine)
    for key in snaps["packs_b"][:2]:
        pristine.overwrite(key, flip(pristine.read(key)))
    pristine.delete(snaps["packs_a"][1])
    pristine.delete(snaps["index_b"][0])

    class Dying(LocalDirectoryBackend):
        mutations = 0
        die_at = -1

        def _mutate(self) -> None:
            type(self).mutations += 1
            if type(self).mutations >= type(self).die_at >= 0:
                raise _Crash()

        def save(self, key: str, data: bytes) -> None:
            if not key.startswith("locks/"):
                self._mutate()
            super().save(key, data)

        def save_staged(self, key: str, staged: StagedObject) -> None:
            self._mutate()  # packs
            super().save_staged(key, staged)

        def remove(self, key: str) -> None:
            if not key.startswith("locks/"):
                self._mutate()
            super().remove(key)

    def repaired(root: Path, die_at: int) -> bool:
        Dying.mutations, Dying.die_at = 0, die_at
        repo = Repository.open(Dying(root=str(root)), create=False, cache_dir=tmp_path / "c")
        try:
            repair_store(repo)
            return True
        except _Crash:
            return False
        finally:
            Dying.die_at = -1
            repo.close()

    # how many mutations a whole repair makes
    whole = tmp_path / "whole"
    shutil.copytree(pristine.url, whole)
    assert repaired(whole, -1)
    total = Dying.mutations
    assert total >= 5, total
    for die_at in range(1, total + 1):
        store = tmp_path / f"crash-{die_at}"
        shutil.copytree(pristine.url, store)
        assert not repaired(store, die_at)
        for lock in (store / "locks").glob("*"):  # a dead process's lock is ignored
            lock.unlink()
        assert repaired(store, -1), die_at
        with Repository.open(str(store), create=False, cache_dir=tmp_path / "c") as repo:
            assert verify_snapshots(repo).ok, die_at
            for sid, state in ((snaps["a"], "state_a"), (snaps["b"], "state_b")):
                target = tmp_path / f"r-{die_at}-{sid[:6]}"
                restore_snapshot(repo, load_snapshot(repo, sid), target, validate=False)
                assert tree_digest(target / "workspace") == snaps[state], (die_at, sid)
        shutil.rmtree(store)
