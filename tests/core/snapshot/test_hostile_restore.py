"""Hostile restores: manifests crafted by someone who can write to a shared store.

Whoever can write objects into a store (a lab's S3 prefix, a shared directory) can plant a
manifest. Restoring it must never write outside the target directory, never create a
device file or a setuid program, and never fill the disk: each crafted manifest is refused
with one clear line (exit 1), or, for mode bits, restored without the dangerous bits and
reported. The attacker's manifest is committed the normal way (``save_manifest``), exactly
as a writer with store access would.
"""

from __future__ import annotations

import copy
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.core.store.crash import westtek
from tests.core.stress import make_lab
from westtek_core.store import Repository

Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A real snapshot of a small lab, and one stored chunk the crafted entries can use."""
    root = tmp_path_factory.mktemp("hostile")
    lab = make_lab(root / "lab", data_mib=0, small_files=3)
    store = str(root / "store")
    done = lab.cli(*lab.create_args(store))
    assert done.returncode == 0, done.stderr
    repo = Repository.open(store, create=False, cache_dir=root / "cache")
    manifest = repo.load_manifest(json.loads(done.stdout)["id"])
    with repo.writer() as writer:
        content = writer.add_bytes(b"#!/bin/sh\necho pwned\n")
    repo.save_manifest({"keeps": content.to_json()})  # the chunk is committed, like any
    repo.close()
    # where the crafted links point: an existing directory, with a kernelspec to overwrite
    (root / "outside" / "victim").mkdir(parents=True)
    (root / "outside" / "victim" / "kernel.json").write_text('{"argv": ["python"]}')
    return {"store": store, "manifest": manifest, "chunk": content.chunks[0], "root": root}


def plant(base: dict[str, Any], craft: Callable[[Manifest, str], None]) -> str:
    """Commit a crafted copy of the base manifest; return its id."""
    manifest = copy.deepcopy(base["manifest"])
    craft(manifest, base["chunk"])
    for entry in manifest["workspace"]["files"]:
        if entry.get("content") == [""]:  # a placeholder for "some stored chunk"
            entry["content"] = [base["chunk"]]
    with Repository.open(base["store"], create=False, cache_dir=base["root"] / "cache") as repo:
        return repo.save_manifest(manifest)


def plant_blob(base: dict[str, Any], stored: bytes, raw_length: int) -> str:
    """Commit a pack holding one zstd blob of ``stored`` bytes and an index entry claiming
    ``raw_length``, as a writer with store access could; the blob's id (hex)."""
    import secrets

    import blake3
    import zstandard

    from westtek_core.store.crypto import Crypto
    from westtek_core.store.index import encode_index_file
    from westtek_core.store.repository import _PackBuilder

    blob_id = secrets.token_bytes(32)
    with Repository.open(base["store"], create=False, cache_dir=base["root"] / "cache") as repo:
        builder = _PackBuilder(Crypto(), repo.backend)
        builder.add(blob_id, 1, stored, raw_length)
        pack_id, entries = builder.save()
        index = encode_index_file([(pack_id, entries)], Crypto(), zstandard.ZstdCompressor())
        repo.backend.save(f"index/{blake3.blake3(index).hexdigest()}", index)
    return blob_id.hex()


def file_entry(path: str, **extra: Any) -> dict[str, Any]:
    """A file entry whose content is the stored chunk (filled in by :func:`plant`)."""
    return {"path": path, "kind": "file", "mode": 0o644, "size": 21, "mtime_ns": 0,
            "content": [""]} | extra  # fmt: skip


def workspace(*entries: dict[str, Any]) -> Callable[[Manifest, str], None]:
    def craft(manifest: Manifest, chunk: str) -> None:
        manifest["workspace"]["files"].extend(entries)

    return craft


def snapshot_of_everything_outside(tmp_path: Path) -> dict[str, float]:
    """Every path under tmp_path but the restore target, with its mtime."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(tmp_path):
        dirnames[:] = [d for d in dirnames if Path(dirpath, d) != tmp_path / "target"]
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            seen[str(path)] = path.lstat().st_mtime
    return seen


def restore(base: dict[str, Any], snapshot_id: str, target: Path) -> tuple[int, str]:
    code, _, err = westtek(
        "snapshot", "restore", snapshot_id, "--to", str(target), "--store", base["store"],
        "--no-validate", "--json",
    )  # fmt: skip
    return code, err


def kernel_without_files(name: str) -> Callable[[Manifest, str], None]:
    """A kernel the restore would repoint (its argv names the captured interpreter)."""

    def craft(manifest: Manifest, chunk: str) -> None:
        python = manifest["interpreters"][0]["path"]
        manifest["kernels"].append(
            {"name": name, "spec": {"argv": [python, "-c", "print('attacker')"]},
             "resource_dir": "/nowhere", "interpreter": python, "files": []}
        )  # fmt: skip

    return craft


def link_then_file_below(manifest: Manifest, chunk: str) -> None:
    outside = str(Path(manifest["workspace"]["root"]).parent.parent / "outside")
    manifest["workspace"]["files"] += [
        {"path": "escape", "kind": "symlink", "mode": 0o777, "size": 0, "mtime_ns": 0,
         "link_target": outside},
        {"path": "escape/planted", "kind": "symlink", "mode": 0o777, "size": 0,
         "mtime_ns": 0, "link_target": "/bin/sh"},
    ]  # fmt: skip


def config_link_into_kernels(manifest: Manifest, chunk: str) -> None:
    # a config dir restores into jupyter/: its link named "kernels" would redirect every
    # kernel.json the restore rewrites afterwards
    outside = str(Path(manifest["workspace"]["root"]).parent.parent / "outside")
    manifest["kernels"] = []  # no kernel files make jupyter/kernels/ a real folder first
    manifest["jupyter"]["config"].append(
        {"dir": "/attacker", "role": "config", "files": [
            {"path": "kernels", "kind": "symlink", "mode": 0o777, "size": 0, "mtime_ns": 0,
             "link_target": outside}]}
    )  # fmt: skip
    kernel_without_files("victim")(manifest, chunk)


REFUSED: dict[str, tuple[Callable[[Manifest, str], None], str]] = {
    "absolute path": (workspace(file_entry("/tmp/westtek-pwned")), "unsafe path"),
    "dot-dot path": (workspace(file_entry("notes/../../../pwned")), "unsafe path"),
    "NUL in a path": (workspace(file_entry("a\x00b")), "unsafe path"),
    "kernel name escaping": (kernel_without_files("../../../outside/k"), "unsafe"),
    "absolute kernel name": (kernel_without_files("/tmp/westtek-kernel"), "unsafe"),
    "symlink then a path below it": (link_then_file_below, "below the symlink"),
    "config symlink redirecting kernels": (config_link_into_kernels, "outside the restore"),
    "character device": (
        workspace(
            {
                "path": "null",
                "kind": "chardev",
                "mode": 0o20666,
                "size": 0,
                "mtime_ns": 0,
                "rdev": 259,
            }
        ),  # fmt: skip
        "not restorable",
    ),
    "fifo": (
        workspace({"path": "pipe", "kind": "fifo", "mode": 0o10644, "size": 0, "mtime_ns": 0}),
        "not restorable",
    ),
    "huge size": (workspace(file_entry("big.bin", size=1 << 60)), "free"),
    "negative size": (workspace(file_entry("neg.bin", size=-5)), "size"),
    "absurd mtime": (workspace(file_entry("t.txt", mtime_ns=10**30)), "mtime"),
    "chunk id that is not one": (workspace(file_entry("c.txt", content=["../../x"])), "chunk"),
    "mode that is not a number": (workspace(file_entry("m.txt", mode="0777")), "mode"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_crafted_manifest_is_refused_and_nothing_is_written_outside(base, case, tmp_path):
    craft, message = REFUSED[case]
    snapshot_id = plant(base, craft)
    (tmp_path / "outside").mkdir()
    victim = tmp_path / "outside" / "k" / "kernel.json"
    victim.parent.mkdir()
    victim.write_text('{"argv": ["python"]}')
    before = snapshot_of_everything_outside(tmp_path)
    shared_outside = snapshot_of_everything_outside(base["root"] / "outside")

    code, err = restore(base, snapshot_id, tmp_path / "target")

    assert code == 1, err
    assert err.startswith("westtek: error:") and err.count("\n") == 1, err
    assert message in err, err
    assert snapshot_of_everything_outside(tmp_path) == before
    assert snapshot_of_everything_outside(base["root"] / "outside") == shared_outside
    assert victim.read_text() == '{"argv": ["python"]}'
    assert (base["root"] / "outside" / "victim" / "kernel.json").read_text() == victim.read_text()
    assert not Path("/tmp/westtek-pwned").exists() and not Path("/tmp/westtek-kernel").exists()


def test_setuid_and_setgid_bits_never_come_back_and_are_reported(base, tmp_path):
    snapshot_id = plant(
        base,
        workspace(
            file_entry("suid-shell", mode=0o104755),
            file_entry("sgid-tool", mode=0o102755),
            {"path": "shared", "kind": "dir", "mode": 0o43777, "size": 0, "mtime_ns": 0},
        ),
    )

    code, _, err = westtek(
        "snapshot", "restore", snapshot_id, "--to", str(tmp_path / "target"),
        "--store", base["store"], "--no-validate", "--json",
    )  # fmt: skip
    assert code == 0, err
    restored = tmp_path / "target" / "workspace"
    for name in ("suid-shell", "sgid-tool", "shared"):
        mode = (restored / name).stat().st_mode
        assert not mode & (stat.S_ISUID | stat.S_ISGID), (name, oct(mode))
    assert (restored / "suid-shell").stat().st_mode & 0o777 == 0o755
    report = json.loads((tmp_path / "target" / "RESTORE.json").read_text())
    assert {"workspace/suid-shell", "workspace/sgid-tool"} <= set(report["modes_dropped"])


def test_a_restore_target_that_is_a_symlink_to_elsewhere_is_not_followed_into(base, tmp_path):
    # --force into a directory holding a link planted where a restored folder will go
    snapshot_id = plant(base, workspace(file_entry("notes/extra.txt")))
    target = tmp_path / "target"
    (target / "workspace").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (target / "workspace" / "notes").symlink_to(tmp_path / "elsewhere")
    code, _, err = westtek(
        "snapshot", "restore", snapshot_id, "--to", str(target), "--store", base["store"],
        "--no-validate", "--force", "--json",
    )  # fmt: skip
    assert code == 1 and "never writes through a link" in err, err
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_crafted_chunk_that_inflates_to_a_gigabyte_is_refused_before_it_is_inflated(
    base, tmp_path
):
    # A pack holding a zstd bomb (32 KiB that inflate to 1 GiB of zeros; without the
    # check, 1 GiB of memory before any hash is compared), an index entry claiming 4 GiB,
    # and a manifest whose file uses the blob: write access to a shared store plants all.
    import zstandard

    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    zeros = bytes(1 << 24)
    bomb = b"".join(compressor.compress(zeros) for _ in range(64)) + compressor.flush()
    assert len(bomb) < 1 << 20
    blob_id = plant_blob(base, bomb, (1 << 32) - 1)
    snapshot_id = plant(base, workspace(file_entry("inflated.bin", content=[blob_id], size=1024)))

    code, err = restore(base, snapshot_id, tmp_path / "target")
    assert code == 1 and "claims 4294967295 bytes" in err, err
    # verify names it as damaged too, without inflating it
    code, out, _ = westtek("snapshot", "verify", snapshot_id, "--store", base["store"], "--json")
    assert code == 1
    assert {"snapshot": snapshot_id, "file": "workspace/inflated.bin"} in json.loads(out)["damaged"]
