"""The one lexical test of a path lying in a directory."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from westtek_core.paths import is_within, write_atomic


@pytest.mark.parametrize(
    ("path", "directory"),
    [
        ("/home/alice", "/home/alice"),  # the directory itself
        ("/home/alice/notes.md", "/home/alice"),
        ("/home/alice/a/b/c", "/home/alice"),
        ("/home/alice/notes.md", "/home/alice/"),  # a trailing separator is ignored
        ("/home/alice", "/home/alice/"),
        ("/", "/"),
        ("/etc/passwd", "/"),  # the root holds every absolute path
    ],
)
def test_a_path_at_or_below_the_directory_is_within_it(path, directory):
    assert is_within(path, directory)


@pytest.mark.parametrize(
    ("path", "directory"),
    [
        ("/home/alicex", "/home/alice"),  # a sibling sharing the name's start
        ("/home/alice-old/notes.md", "/home/alice"),
        ("/home", "/home/alice"),  # the parent
        ("/srv/home/alice", "/home/alice"),
        ("home/alice/notes.md", "/home/alice"),  # relative: never within an absolute one
    ],
)
def test_a_sibling_parent_or_elsewhere_is_not_within_it(path, directory):
    assert not is_within(path, directory)


def test_writers_racing_on_one_file_leave_one_whole_version_and_no_temporaries(tmp_path: Path):
    target = tmp_path / "state" / "cache.json"
    versions = [json.dumps({"writer": n, "pad": "x" * 50_000}) for n in range(8)]
    start = threading.Barrier(len(versions))

    def write(text: str) -> None:
        start.wait()
        for _ in range(20):
            write_atomic(target, text)

    threads = [threading.Thread(target=write, args=(text,)) for text in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert target.read_text() in versions
    assert [p.name for p in target.parent.iterdir()] == ["cache.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path):
    target = tmp_path / "record.json"
    write_atomic(target, "old")

    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "half \udc80 written")

    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]
