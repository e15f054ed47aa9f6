"""``restore --force`` into a folder that already holds links never writes through them.

A forced restore goes into a folder that is not empty, and what is already there may be a
link planted by whoever could write to it: a link at a file's path pointing at a file
outside, or a link in place of a folder pointing at a folder outside. The restore must not
follow either: it neither writes outside the target nor creates folders there before it
refuses (issue 18, item 9).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.core.snapshot.test_hostile_restore import base, file_entry, plant, restore
from tests.core.store.crash import westtek

__all__ = ["base"]  # the module-scoped store fixture, shared with the hostile-restore tests


def forced_restore(base: dict[str, Any], snapshot_id: str, target: Path) -> tuple[int, str]:
    code, _, err = westtek(
        "snapshot", "restore", snapshot_id, "--to", str(target), "--store", base["store"],
        "--no-validate", "--force", "--json",
    )  # fmt: skip
    return code, err


@pytest.fixture(scope="module")
def nested_snapshot(base: dict[str, Any]) -> str:
    """A snapshot with ``workspace/notes.txt`` and ``workspace/sub/deep/result.txt``."""

    def craft(manifest: dict[str, Any], chunk: str) -> None:
        manifest["workspace"]["files"].extend(
            [file_entry("notes.txt"), file_entry("sub/deep/result.txt")]
        )

    return plant(base, craft)


def test_a_link_at_a_files_path_is_replaced_not_written_through(base, nested_snapshot, tmp_path):
    victim = tmp_path / "outside" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("the victim's own file\n")
    target = tmp_path / "target"
    (target / "workspace").mkdir(parents=True)
    (target / "workspace" / "notes.txt").symlink_to(victim)

    code, err = forced_restore(base, nested_snapshot, target)

    assert victim.read_text() == "the victim's own file\n"  # never written through the link
    assert code == 0, err
    restored = target / "workspace" / "notes.txt"
    assert not restored.is_symlink() and restored.read_bytes() == b"#!/bin/sh\necho pwned\n"


def test_a_link_in_place_of_a_folder_is_refused_before_anything_is_made_outside(
    base, nested_snapshot, tmp_path
):
    elsewhere = tmp_path / "outside"
    elsewhere.mkdir()
    target = tmp_path / "target"
    (target / "workspace").mkdir(parents=True)
    (target / "workspace" / "sub").symlink_to(elsewhere, target_is_directory=True)

    code, err = forced_restore(base, nested_snapshot, target)

    assert code == 1 and "workspace/sub" in err and "link" in err, err
    assert list(elsewhere.iterdir()) == []  # no folder was created through the link


def test_an_unforced_restore_still_refuses_a_folder_that_is_not_empty(
    base, nested_snapshot, tmp_path
):
    target = tmp_path / "target"
    (target / "workspace").mkdir(parents=True)
    code, err = restore(base, nested_snapshot, target)
    assert code == 1 and "not empty" in err, err
