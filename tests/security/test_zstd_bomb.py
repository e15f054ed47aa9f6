"""A pack whose zstd frame declares a huge size is refused before anything is allocated.

zstandard allocates the content size a frame header declares before reading a block, so a
64 KiB pack declaring 2 GiB allocated 2 GiB in restore, verify and the hub service's
cross-lab copy, whatever the index said the blob's length was (issue 18, item 3). The
planted objects are written the way anyone with write access to a shared store could.
"""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest
import zstandard

from tests.core.snapshot.test_hostile_restore import (
    base,
    file_entry,
    plant,
    plant_blob,
    workspace,
)
from westtek_core.snapshot import load_snapshot, restore_snapshot, verify_snapshots
from westtek_core.store import Repository, StoreError
from westtek_hub.stores import LabStores

__all__ = ["base"]  # the module-scoped store fixture, shared with the hostile-restore tests

DECLARED = 2 << 30
# Far below the 2 GiB a frame declares, far above what reading this small store needs.
MEMORY_CEILING = 128 << 20


def frame_declaring(size: int) -> bytes:
    """A valid zstd frame of 100 bytes whose header declares ``size`` bytes of content."""
    real = zstandard.ZstdCompressor(level=3).compress(b"a" * 100)
    descriptor = real[4]
    assert descriptor >> 5 == 0b001, "expected a single-segment frame with a 1-byte size"
    # Frame_Content_Size_flag 2 (4 bytes), single segment, the rest of the descriptor kept.
    return (
        real[:4] + bytes([0b10_1_00000 | descriptor & 0b111]) + struct.pack("<I", size) + real[6:]
    )


def peak_bytes(action: Callable[[], Any]) -> tuple[int, BaseException | None]:
    """The peak of Python allocations while ``action`` runs, and what it raised."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        try:
            action()
            error = None
        except Exception as exc:  # noqa: BLE001 - the test asserts on what was raised
            error = exc
        return tracemalloc.get_traced_memory()[1], error
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def bomb(base: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A snapshot whose one file is a blob of 64 bytes declaring 2 GiB, its index entry 1 KiB."""
    blob_id = plant_blob(base, frame_declaring(DECLARED), 1024)
    snapshot_id = plant(base, workspace(file_entry("declared.bin", content=[blob_id], size=1024)))
    yield {"id": snapshot_id, "store": base["store"], "cache": base["root"] / "cache"}


def open_store(bomb: dict[str, Any]) -> Repository:
    return Repository.open(bomb["store"], create=False, cache_dir=bomb["cache"])


def test_frame_declares_two_gibibytes():
    assert zstandard.frame_content_size(frame_declaring(DECLARED)) == DECLARED


def test_restore_refuses_it_before_allocating(bomb, tmp_path):
    with open_store(bomb) as repo:
        manifest = load_snapshot(repo, bomb["id"])
        peak, error = peak_bytes(
            lambda: restore_snapshot(repo, manifest, tmp_path / "target", validate=False)
        )
    assert error is not None and f"declares {DECLARED} bytes" in str(error), error
    assert peak < MEMORY_CEILING, f"restore allocated {peak >> 20} MiB"


def test_verify_names_it_damaged_without_allocating(bomb):
    with open_store(bomb) as repo:
        reports: list[Any] = []
        peak, error = peak_bytes(lambda: reports.append(verify_snapshots(repo, [bomb["id"]])))
    assert error is None, error
    damaged = reports[0].to_json()["damaged"]
    assert {"snapshot": bomb["id"], "file": "workspace/declared.bin"} in damaged
    assert peak < MEMORY_CEILING, f"verify allocated {peak >> 20} MiB"


def test_the_hub_services_cross_lab_copy_refuses_it(bomb, tmp_path):
    # the hub service reaches each lab's store through its template, as for a share
    labs = tmp_path / "labs"
    labs.mkdir()
    (labs / "lab-a").symlink_to(Path(bomb["store"]).resolve())
    stores = LabStores(store_template=str(labs / "{lab_id}"))
    peak, error = peak_bytes(lambda: stores.copy(bomb["id"], "lab-a", "lab-b"))
    assert isinstance(error, StoreError) and f"declares {DECLARED} bytes" in str(error), error
    assert peak < MEMORY_CEILING, f"the copy allocated {peak >> 20} MiB"


def test_a_manifest_object_declaring_a_huge_size_is_refused(base, tmp_path):
    # a snapshot object (the manifest document itself) with the same trick
    with Repository.open(base["store"], create=False, cache_dir=base["root"] / "cache") as repo:
        fake_id = blake3.blake3(b"crafted manifest").hexdigest()
        repo.backend.save(f"snapshots/{fake_id}", frame_declaring(DECLARED))
        try:
            peak, error = peak_bytes(lambda: repo.load_manifest(fake_id))
        finally:
            repo.backend.remove(f"snapshots/{fake_id}")
    assert isinstance(error, StoreError) and "declares" in str(error), error
    assert peak < MEMORY_CEILING, f"loading the manifest allocated {peak >> 20} MiB"
