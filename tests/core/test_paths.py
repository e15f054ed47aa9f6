"""The one lexical test of a path lying in a directory."""

from __future__ import annotations

import pytest

from westtek_core.paths import is_within


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
