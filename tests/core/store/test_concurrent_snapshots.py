"""Load: many ``westtek snapshot create`` processes at once into one store.

Twenty writers start together (bench/soak.py runs the design document's 100), each with
its own workspace plus a file all of them share, so they race to store the same chunks.
Every one must succeed, the store must verify, and every snapshot must read back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.stress import run_concurrent_snapshots, tree_digest
from westtek_core.snapshot import load_snapshot, restore_snapshot
from westtek_core.store import Repository


@pytest.mark.slow
def test_twenty_concurrent_snapshots_all_commit_and_verify(tmp_path: Path):
    store = str(tmp_path / "store")
    run = run_concurrent_snapshots(tmp_path, store, writers=20)
    assert run.failed == []
    assert len(set(run.snapshot_ids)) == 20
    assert run.verify_ok
    # every snapshot reads back: restore three of them and compare with their workspaces
    repo = Repository.open(store, create=False, cache_dir=tmp_path / "cache")
    for snapshot_id in run.snapshot_ids[:: len(run.snapshot_ids) // 3][:3]:
        manifest = load_snapshot(repo, snapshot_id)
        target = tmp_path / f"restored-{snapshot_id[:8]}"
        restore_snapshot(repo, manifest, target, validate=False)
        workspace = Path(manifest["workspace"]["root"])
        assert tree_digest(target / "workspace") == tree_digest(workspace)
    repo.close()


def test_a_prune_longer_than_the_stale_age_keeps_writers_out(tmp_path: Path, monkeypatch):
    # Given a pack that prune must repack (it holds a kept and a dropped file),
    import random
    import time

    import westtek_core.store.locks as locks
    from westtek_core.store import StoreLockedError
    from westtek_core.store.locks import StoreLock

    repo = Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")
    with repo.writer() as writer:
        keep = writer.add_bytes(b"kept " * 20_000)
        writer.add_bytes(random.Random(2).randbytes(2 << 20))
    repo.save_manifest({"keep": keep.to_json()})
    clock = [time.time()]
    monkeypatch.setattr(locks.time, "time", lambda: clock[0])
    outcomes: list[str] = []
    real_load = repo.backend.load

    def load(key: str) -> bytes:
        if key.startswith("data/") and not outcomes:  # mid-prune: another host's writer
            try:
                StoreLock(repo.backend, repo._crypto, exclusive=False, purpose="writer").acquire()
                outcomes.append("a writer got in")
            except StoreLockedError:
                outcomes.append("writers kept out")
        return real_load(key)

    monkeypatch.setattr(repo.backend, "load", load)

    def referenced() -> set[str]:
        clock[0] += 31 * 60  # computing the references took longer than the stale age
        return set(keep.chunks)

    # when the prune runs past the 30 minutes after which a lock counts as abandoned,
    stats = repo.prune(referenced)
    # then its lock was renewed: the writer that tried meanwhile was kept out
    assert stats.repacked_packs == 1
    assert outcomes == ["writers kept out"]
    repo.close()
