"""Crash consistency: ``snapshot create`` SIGKILLed at random moments, or out of disk space.

After each kill the whole store verifies, the newest earlier snapshot restores byte for
byte and a re-run completes; at the end every snapshot restores and ``snapshot repair``
removes what the killed writers left. bench/soak.py runs the same at 50 moments.

The full disk is a real one: a small tmpfs mounted for the test (we run as root in CI).
Where mounting is not allowed, the same checks run against a store whose backend raises
ENOSPC past a quota, through the in-process CLI.
"""

from __future__ import annotations

import errno
import json
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.core.store.crash import run_crash_moments, westtek
from tests.core.stress import make_lab, tree_digest
from westtek_core.store import LocalDirectoryBackend
from westtek_core.store.backend import StagedObject

MiB = 1 << 20


@pytest.mark.slow
def test_sigkill_at_ten_random_moments_loses_no_snapshot(tmp_path: Path):
    lab = make_lab(tmp_path / "lab", data_mib=4, small_files=100)
    store = str(tmp_path / "store")
    run = run_crash_moments(lab, store, moments=10, fresh_mib=6)
    assert run.snapshots >= 11  # the first run and every re-run at least
    assert sum(run.outcomes.values()) == 10
    assert run.outcomes["killed while writing"] >= 1, run.outcomes

    # What the killed writers left (orphan packs, partial files in tmp/) goes with repair
    code, out, err = westtek("snapshot", "repair", "--store", store, "--json")
    repaired = json.loads(out)
    assert code == 0, (err, repaired)
    assert repaired["removed_partial_writes"] == run.leftover_partials
    assert repaired["damaged_packs"] == [] and repaired["recovered_chunks"] == 0
    assert not any(Path(store, "tmp").iterdir())
    code, out, _ = westtek("snapshot", "verify", "--all", "--store", store, "--json")
    assert code == 0 and len(json.loads(out)["snapshots"]) == run.snapshots


class QuotaBackend(LocalDirectoryBackend):
    """A local store that raises ENOSPC once ``quota`` bytes are stored (no mount needed)."""

    quota = 0

    def _check_quota(self, size: int) -> None:
        used = sum(p.stat().st_size for p in Path(self.root).rglob("*") if p.is_file())
        if used + size > self.quota:
            raise OSError(errno.ENOSPC, "No space left on device")

    def _save(self, key: str, data: bytes) -> None:
        self._check_quota(len(data))
        super()._save(key, data)

    def _save_staged(self, key: str, staged: StagedObject) -> None:
        self._check_quota(0)  # the staged file, in tmp/, already counts
        super()._save_staged(key, staged)


@pytest.fixture
def small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A 20 MiB store location: a tmpfs when mounting works, else a quota'd backend."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    mounted = not os.environ.get("WESTTEK_TEST_NO_MOUNT") and (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=20m,mode=0755", "tmpfs", str(mount)],
            capture_output=True,
        ).returncode
        == 0
    )
    if not mounted:
        import westtek_core.store.location as location_module
        import westtek_core.store.repository.repository as repository_module

        QuotaBackend.quota = 20 * MiB
        real = location_module.open_backend

        def open_backend(url: str) -> Any:
            return QuotaBackend(root=url) if url == str(mount / "store") else real(url)

        monkeypatch.setattr(location_module, "open_backend", open_backend)
        monkeypatch.setattr(repository_module, "open_backend", open_backend)
    yield {"store": str(mount / "store"), "mount": mount, "how": "tmpfs" if mounted else "quota"}
    if mounted:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_a_clean_error_and_leaves_nothing_half_written(
    tmp_path: Path, small_disk: dict[str, Any], monkeypatch: pytest.MonkeyPatch
):
    lab = make_lab(tmp_path / "lab", data_mib=1, small_files=20)
    for name, value in lab.env.items():
        if name.startswith(("JUPYTER", "XDG_", "WESTTEK_")) or name == "HOME":
            monkeypatch.setenv(name, value)
    store = small_disk["store"]

    def create(note: str) -> tuple[int, str, str]:
        return westtek(
            "snapshot", "create", "--python", str(lab.python), "--root", str(lab.workspace),
            "--store", store, "--note", note, "--json",
        )  # fmt: skip

    # Given an earlier snapshot that fits,
    earlier_state = tree_digest(lab.workspace)
    code, out, err = create("fits")
    assert code == 0, err
    earlier = json.loads(out)["id"]
    # when the workspace grows past the free space (two packs' worth, one pack fits),
    (lab.workspace / "data" / "big.bin").write_bytes(random.Random(3).randbytes(30 * MiB))
    code, out, err = create("too big")

    # then the snapshot fails with one clear line naming the store and the way out,
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "is out of space" in err and store in err, err
    assert "westtek snapshot repair" in err
    # no partial file and no lock stay behind, nothing was committed, the store verifies
    assert list(Path(store, "tmp").iterdir()) == []
    assert list(Path(store, "locks").iterdir()) == []
    code, out, _ = westtek("snapshot", "verify", "--all", "--store", store, "--json")
    assert code == 0 and json.loads(out)["snapshots"] == [earlier], out
    # and the earlier snapshot restores.
    target = tmp_path / "restored"
    code, _, err = westtek(
        "snapshot", "restore", earlier, "--to", str(target), "--store", store, "--no-validate"
    )
    assert code == 0, err
    assert tree_digest(target / "workspace") == earlier_state

    # Once the big file goes, repair frees the complete pack the failed run left, and a
    # re-run completes.
    (lab.workspace / "data" / "big.bin").unlink()
    (lab.workspace / "data" / "more.bin").write_bytes(random.Random(4).randbytes(6 * MiB))
    code, out, err = westtek("snapshot", "repair", "--store", store, "--json")
    assert code == 0, err
    assert json.loads(out)["removed_orphan_packs"] >= 1
    code, out, err = create("after repair")
    assert code == 0, (small_disk["how"], err)
    code, out, _ = westtek("snapshot", "verify", "--all", "--store", store, "--json")
    assert code == 0 and len(json.loads(out)["snapshots"]) == 2
