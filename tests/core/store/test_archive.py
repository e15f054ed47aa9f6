"""A ten-year store stays readable: packs in Deep Archive are brought back, then restored.

The lifecycle (infra/lib/storage-stack.ts) moves only a store's packs (``data/``) to
S3 Glacier Deep Archive; config, keys, indexes, manifests and locks stay in Standard.
On moto: such a store opens and lists; a restore or verify asks S3 to restore the packs it
needs (RestoreObject, the configured tier) and says how long to wait; while they thaw it
asks nothing again; once they are back the snapshot restores byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.store.archived import (
    FILES,
    MORE_FILES,
    RestoreCalls,
    archive_packs,
    set_restore_state,
    storage_class,
    write_snapshot,
)
from westtek_core.snapshot import (
    load_snapshot,
    referenced_chunks,
    restore_snapshot,
    verify_snapshots,
)
from westtek_core.snapshot.archive import ArchivePoller, archive_wait
from westtek_core.store import (
    ArchiveWait,
    Availability,
    ObjectArchived,
    Repository,
    S3Backend,
    StoreBackend,
)
from westtek_core.store.s3 import availability_of, make_restore_request


@pytest.fixture
def archived(s3_bucket: str, tmp_path: Path) -> Iterator[tuple[S3Backend, str, list[str]]]:
    """A lab store whose packs (two) are in Deep Archive: (backend, snapshot id, pack keys)."""
    backend = S3Backend(bucket=s3_bucket, prefix="labs/lab-a")
    with Repository.open(backend, cache_dir=tmp_path / "writer-cache") as repo:
        snapshot_id = write_snapshot(repo, FILES, MORE_FILES)
    packs = archive_packs(backend)
    assert len(packs) == 2
    yield backend, snapshot_id, packs
    backend.close()


def reopen(backend: S3Backend, tmp_path: Path) -> Repository:
    return Repository.open(backend, create=False, cache_dir=tmp_path / "cache")


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- the store opens and lists; restore waits, then completes --------------------------------


def test_only_packs_are_archived_and_the_store_still_opens_and_lists(archived, tmp_path):
    backend, snapshot_id, packs = archived
    others = sorted(set(backend.list("")) - set(packs))
    assert {k.split("/")[0] for k in others} >= {"config", "index", "snapshots"}
    assert [storage_class(backend, k) for k in packs] == ["DEEP_ARCHIVE"] * 2
    assert {storage_class(backend, k) for k in others} == {"STANDARD"}
    with reopen(backend, tmp_path) as repo:
        assert repo.list_manifests() == [snapshot_id]
        assert load_snapshot(repo, snapshot_id[:8])["environment_id"] == "alice"
        # a pack read straight away is refused in one clear line, not a botocore dump
        with pytest.raises(ObjectArchived, match=r"data/\w\w/\w+ .* is in archive storage"):
            backend.load(packs[0])


@pytest.mark.usefixtures("thawing_held")
@pytest.mark.parametrize(("tier", "hours"), [("Standard", 12), ("Bulk", 48)])
def test_a_restore_requests_the_packs_back_waits_while_they_thaw_then_restores_byte_exact(
    archived, tmp_path, tier, hours
):
    backend, snapshot_id, packs = archived
    backend.restore_tier = tier
    calls = RestoreCalls(backend)
    target = tmp_path / "restored"
    with reopen(backend, tmp_path) as repo:
        manifest = load_snapshot(repo, snapshot_id)

        # When: the first restore finds both packs archived
        with pytest.raises(ArchiveWait) as first:
            restore_snapshot(repo, manifest, target, validate=False)
        # Then: it asked for both back, with the configured tier, and said how long
        assert str(first.value) == (
            f"waiting for archive, ready in about {hours} hours: 2 packs of snapshot"
            f" {snapshot_id[:12]} coming back from archive storage, {tier} retrieval"
        )
        assert (first.value.waiting, first.value.requested) == (2, 2)
        assert first.value.ready_in_hours == hours and first.value.tier == tier
        body = (
            '<RestoreRequest xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Days>7</Days>'
            f"<GlacierJobParameters><Tier>{tier}</Tier></GlacierJobParameters></RestoreRequest>"
        )
        assert sorted(calls.requests) == [(k.rpartition("/")[2], body.encode()) for k in packs]
        assert not target.exists()

        # When: S3 is still thawing them
        for key in packs:
            set_restore_state(backend.bucket, backend._key(key), "IN_PROGRESS")
        assert {s.state for s in backend.availability(packs).values()} == {Availability.THAWING}
        with pytest.raises(ArchiveWait) as second:
            restore_snapshot(repo, manifest, target, validate=False)
        # Then: it waits without asking again
        assert (second.value.waiting, second.value.requested) == (2, 0)
        assert len(calls.requests) == 2

        # When: they are back
        for key in packs:
            set_restore_state(backend.bucket, backend._key(key), "RESTORED")
        report = restore_snapshot(repo, manifest, target, validate=False)
    # Then: every file comes back byte for byte
    assert report.files == 3
    assert tree(target / "workspace") == FILES | MORE_FILES


@pytest.mark.usefixtures("thawing_held")
def test_a_poller_waits_until_the_packs_are_back_and_the_restore_completes_by_itself(
    archived, tmp_path
):
    backend, snapshot_id, packs = archived
    heard: list[str] = []
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # S3 moves on while we sleep: thawing, then back
        slept.append(seconds)
        state = "IN_PROGRESS" if len(slept) == 1 else "RESTORED"
        for key in packs:
            set_restore_state(backend.bucket, backend._key(key), state)

    poller = ArchivePoller(interval=600, on_wait=lambda w: heard.append(str(w)), sleep=sleep)
    with reopen(backend, tmp_path) as repo:
        manifest = load_snapshot(repo, snapshot_id)
        report = restore_snapshot(repo, manifest, tmp_path / "out", validate=False, archive=poller)
    assert slept == [600, 600]
    assert len(heard) == 2
    assert all(h.startswith("waiting for archive, ready in about 12 hours") for h in heard)
    assert report.files == 3
    assert tree(tmp_path / "out" / "workspace") == FILES | MORE_FILES


def test_verify_waits_for_the_packs_it_needs_and_leaves_other_archived_packs_unread(
    s3_bucket, tmp_path
):
    # Given: an old snapshot whose packs are archived and a new one in Standard
    backend = S3Backend(bucket=s3_bucket, prefix="labs/lab-b")
    with Repository.open(backend, cache_dir=tmp_path / "writer-cache") as repo:
        old = write_snapshot(repo, FILES)
        old_packs = archive_packs(backend)
        new = write_snapshot(repo, {"fresh.txt": b"new work\n"})
    with reopen(backend, tmp_path) as repo:
        # Then: the new one verifies, the archived pack unread but not called damaged
        report = verify_snapshots(repo, [new])
        assert report.ok and report.to_json()["archived_packs"] == len(old_packs) == 1
        # and the old one first has its pack brought back (moto restores at once)
        with pytest.raises(ArchiveWait, match=f"1 pack of snapshot {old[:12]} coming back"):
            verify_snapshots(repo, [old])
        report = verify_snapshots(repo, [old])
        assert report.ok and "archived_packs" not in report.to_json()


# -- the backend query, on every backend, and its pure parts --------------------------------


def test_every_backend_says_fresh_objects_are_readable_and_nothing_waits(
    backend: StoreBackend, tmp_path
):
    with Repository.open(backend, cache_dir=tmp_path / "cache") as repo:
        chunks = referenced_chunks(repo.load_manifest(write_snapshot(repo, FILES)))
        keys = repo.pack_keys(chunks)
        assert keys == sorted(backend.list("data/")) and len(keys) == 1
        states = backend.availability(keys)
        assert {s.state for s in states.values()} == {Availability.READABLE}
        assert archive_wait(repo, chunks) is None


@pytest.mark.parametrize(
    ("head", "tier", "state", "hours"),
    [
        ({}, "Standard", Availability.READABLE, 0),
        ({"StorageClass": "STANDARD_IA"}, "Standard", Availability.READABLE, 0),
        ({"StorageClass": "GLACIER_IR"}, "Bulk", Availability.READABLE, 0),
        ({"StorageClass": "DEEP_ARCHIVE"}, "Standard", Availability.ARCHIVED, 12),
        ({"StorageClass": "DEEP_ARCHIVE"}, "Bulk", Availability.ARCHIVED, 48),
        ({"StorageClass": "GLACIER"}, "Standard", Availability.ARCHIVED, 5),
        ({"StorageClass": "GLACIER", "Restore": 'ongoing-request="true"'}, "Bulk",
         Availability.THAWING, 12),
        ({"StorageClass": "DEEP_ARCHIVE",
          "Restore": 'ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"'},
         "Standard", Availability.READABLE, 0),
    ],
)  # fmt: skip
def test_availability_is_read_from_the_storage_class_and_restore_header(head, tier, state, hours):
    found = availability_of(head, tier)
    assert (found.state, found.ready_in_hours) == (state, hours)


def test_the_restore_request_names_days_and_tier():
    assert make_restore_request(7, "Bulk") == {"Days": 7, "GlacierJobParameters": {"Tier": "Bulk"}}


def test_a_bad_tier_from_the_environment_is_refused_in_one_line(monkeypatch):
    from westtek_core.store import StoreError

    monkeypatch.setenv("WESTTEK_S3_RESTORE_TIER", "expedited")
    with pytest.raises(StoreError, match="WESTTEK_S3_RESTORE_TIER='Expedited' is not one of"):
        _ = S3Backend(bucket="b").restore_tier
    monkeypatch.setenv("WESTTEK_S3_RESTORE_TIER", "bulk")
    assert S3Backend(bucket="b").restore_tier == "Bulk"
