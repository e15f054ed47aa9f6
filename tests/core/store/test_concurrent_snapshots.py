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
