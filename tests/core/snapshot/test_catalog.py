"""Finding snapshots: summaries of a shared store come from a cache of manifests read before."""

from __future__ import annotations

import time

from tests.store_contents import store_snapshot
from westtek_core.rollback import latest_snapshot
from westtek_core.snapshot import delete_snapshot, snapshot_summaries
from westtek_core.snapshot.catalog import SUMMARIES_CACHE
from westtek_core.store import Repository


def open_store(tmp_path):
    return Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")


def counting_loads(repo, monkeypatch) -> list[str]:
    loaded: list[str] = []
    real = repo.load_manifest

    def load(snapshot_id):
        loaded.append(snapshot_id)
        return real(snapshot_id)

    monkeypatch.setattr(repo, "load_manifest", load)
    return loaded


def test_each_manifest_is_read_once_for_every_later_listing(tmp_path, monkeypatch):
    # Given a lab store shared by alice and bob, with a snapshot each,
    store = tmp_path / "store"
    alice = store_snapshot(store, "alice", {"a.txt": b"alice"})
    time.sleep(0.01)
    bob = store_snapshot(store, "bob", {"b.txt": b"bob"})
    repo = open_store(tmp_path)
    loaded = counting_loads(repo, monkeypatch)
    # the first listing reads both manifests, the next none,
    assert {s["id"] for s in snapshot_summaries(repo)} == {alice, bob}
    assert sorted(loaded) == sorted([alice, bob])
    loaded.clear()
    assert sorted(s["environment_id"] for s in snapshot_summaries(repo)) == ["alice", "bob"]
    assert loaded == []
    # and alice's latest snapshot is found by reading her one manifest.
    assert latest_snapshot(repo, "alice")["id"] == alice
    assert loaded == [alice]
    repo.close()


def test_a_new_or_deleted_snapshot_and_a_damaged_cache_are_seen(tmp_path, monkeypatch):
    store = tmp_path / "store"
    first = store_snapshot(store, "alice", {"a.txt": b"1"})
    repo = open_store(tmp_path)
    assert [s["id"] for s in snapshot_summaries(repo)] == [first]
    # a snapshot another process adds is read once it is listed,
    second = store_snapshot(store, "alice", {"a.txt": b"2"})
    loaded = counting_loads(repo, monkeypatch)
    assert {s["id"] for s in snapshot_summaries(repo)} == {first, second}
    assert loaded == [second]
    # a deleted one leaves the listing,
    delete_snapshot(repo, first)
    assert [s["id"] for s in snapshot_summaries(repo)] == [second]
    # and a damaged cache is read past, not trusted.
    (repo.cache_dir / SUMMARIES_CACHE).write_text("{not json")
    assert [s["id"] for s in snapshot_summaries(repo)] == [second]
    repo.close()
