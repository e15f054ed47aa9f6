"""Writers in other processes: killed with SIGKILL mid-write, or running side by side."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.core.store.conftest import random_bytes
from westtek_core.store import LocalDirectoryBackend, Repository

MiB = 1 << 20
REPO_ROOT = Path(__file__).resolve().parents[3]

ENDLESS_WRITER = """
import random, sys
from pathlib import Path
from westtek_core.store import Repository
repo = Repository.open(sys.argv[1], cache_dir=Path(sys.argv[2]))
rng = random.Random(int(sys.argv[3]))
with repo.writer() as writer:
    print("writing", flush=True)
    while True:
        writer.add_bytes(rng.randbytes(3 << 20))
"""

ONE_SNAPSHOT = """
import random, sys
from pathlib import Path
from westtek_core.store import Repository
repo = Repository.open(sys.argv[1], cache_dir=Path(sys.argv[2]))
shared = random.Random(1).randbytes(2 << 20)
own = random.Random(int(sys.argv[3])).randbytes(6 << 20)
with repo.writer() as writer:
    a, b = writer.add_bytes(shared), writer.add_bytes(own)
print(repo.save_manifest({"seed": int(sys.argv[3]), "a": a.to_json(), "b": b.to_json()}))
"""


def python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_sigkill_mid_write_leaves_earlier_snapshots_intact(
    local_backend: LocalDirectoryBackend, tmp_path: Path
):
    # Given a committed snapshot…
    repo = Repository.open(local_backend, cache_dir=tmp_path / "c")
    with repo.writer() as writer:
        kept = writer.add_bytes(random_bytes(3 * MiB, 1))
    sid = repo.save_manifest({"kept": kept.to_json()})
    packs = set(local_backend.list("data/"))

    # …when another process is SIGKILLed while it writes packs…
    proc = python(ENDLESS_WRITER, local_backend.root, str(tmp_path / "c2"), "2")
    assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
    deadline = time.monotonic() + 20
    while len(set(local_backend.list("data/")) - packs) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    # …the earlier snapshot still loads and reads, and the store checks clean.
    fresh = Repository.open(local_backend, create=False, cache_dir=tmp_path / "c")
    assert fresh.list_manifests() == [sid]
    manifest = fresh.load_manifest(sid)
    assert b"".join(fresh.read_chunk(c) for c in manifest["kept"]) == random_bytes(3 * MiB, 1)
    report = fresh.check()
    assert report.ok, report.problems
    assert len(report.orphan_packs) >= 2
    # The dead writer's lock names a gone process on this host: it does not block prune.
    stats = fresh.prune(set(kept.chunks))
    assert stats.removed_packs >= 2
    assert fresh.check().orphan_packs == []
    assert fresh.check().ok


def test_concurrent_writer_processes_both_commit(
    local_backend: LocalDirectoryBackend, tmp_path: Path
):
    Repository.open(local_backend, cache_dir=tmp_path / "c").close()
    procs = [
        python(ONE_SNAPSHOT, local_backend.root, str(tmp_path / f"c{n}"), str(n)) for n in (1, 2)
    ]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    repo = Repository.open(local_backend, create=False, cache_dir=tmp_path / "c")
    assert sorted(outputs) == repo.list_manifests()
    for sid in outputs:
        manifest = repo.load_manifest(sid)
        own = b"".join(repo.read_chunk(c) for c in manifest["b"])
        assert own == random_bytes(6 * MiB, manifest["seed"])
    assert repo.check().ok
