"""What a capture returns: typed records of files, skipped paths, secrets and environments.

Nothing here reads file contents; a :class:`FileEntry` names a file on this machine
(``source``) and the metadata the snapshot layer records beside the stored content.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from westtek_core.paths import FileVersion

FileKind = Literal["file", "symlink", "dir"]
SecretAction = Literal["excluded", "redacted"]

# Reasons a path is reported in ``FileTree.skipped`` (``Skipped.reason``).
REASON_UNREADABLE = "unreadable"
REASON_SECRET = "ignored-secret"
REASON_SOCKET = "socket"
REASON_FIFO = "fifo"
REASON_DEVICE = "device"
REASON_SYMLINK_OUTSIDE = "symlink-outside-root"
REASON_VANISHED = "vanished"
REASON_UNDECODABLE_NAME = "undecodable-name"
REASON_REDACTED_ELSEWHERE = "redacted-elsewhere"


# Not frozen: a frozen dataclass's __init__ costs 2.7 µs against 0.6 µs, a walk makes one per
# entry (60 ms of an unchanged re-snapshot of a 23k-file env); nothing changes an entry.
@dataclass(slots=True)
class FileEntry:
    """One file, directory or symlink of an area, with the metadata a restore needs.

    ``path`` is POSIX, relative to the area root, never absolute and never containing
    ``..``. ``source`` is where the content is on this machine, an absolute path (a
    string: a ``Path`` per file costs a third of a walk). Symlinks are never followed:
    ``link_target`` is the target as stored (``os.readlink``). Directories have ``size``
    0. ``version`` is the file's :func:`~westtek_core.paths.file_version` as the walk saw
    it, so storing it need not ``stat`` it again (None when not known).
    """

    path: str
    source: str
    kind: FileKind
    mode: int
    size: int
    mtime_ns: int
    link_target: str | None = None
    version: FileVersion | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form (no ``source``; ``link_target`` only for symlinks)."""
        data: dict[str, Any] = {
            "path": self.path,
            "kind": self.kind,
            "mode": self.mode,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
        }
        if self.link_target is not None:
            data["link_target"] = self.link_target
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str | os.PathLike[str]) -> FileEntry:
        """Rebuild an entry from its manifest form and where its content is now."""
        return cls(
            path=data["path"],
            source=os.path.abspath(source),
            kind=data["kind"],
            mode=int(data["mode"]),
            size=int(data["size"]),
            mtime_ns=int(data["mtime_ns"]),
            link_target=data.get("link_target"),
        )


@dataclass(frozen=True, slots=True)
class Skipped:
    """A path of an area that was not captured as-is, and why.

    ``reason`` is one of the ``REASON_*`` codes of this module. ``stored`` is True for
    warnings about entries that *are* in the tree anyway: a symlink whose target is outside
    the root is kept as a link (``REASON_SYMLINK_OUTSIDE``) but reported here, because a
    restore elsewhere may leave it dangling.
    """

    path: str
    reason: str
    detail: str = ""
    stored: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form."""
        return {
            "path": self.path,
            "reason": self.reason,
            "detail": self.detail,
            "stored": self.stored,
        }


@dataclass(frozen=True, slots=True)
class SecretFinding:
    """A secret found while capturing: a file left out, or a value replaced in a config file.

    ``area`` names where: ``workspace``, ``config:<dir>``, ``kernel:<name>``. ``kind`` is a
    category (``dotenv``, ``private-key``, ``token``, ``password``…); ``detail`` names the
    setting redacted (``c.ServerApp.token``) when there is one; ``line`` the line (from 1)
    a secret found in a file's content is on. Secret values never appear.
    """

    area: str
    path: str
    kind: str
    action: SecretAction
    detail: str = ""
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form (``line`` only for a secret found in content)."""
        data: dict[str, Any] = {
            "area": self.area,
            "path": self.path,
            "kind": self.kind,
            "action": self.action,
            "detail": self.detail,
        }
        if self.line is not None:
            data["line"] = self.line
        return data


@dataclass
class FileTree:
    """One area: a root directory, its entries sorted by path, and what was skipped."""

    root: Path
    entries: list[FileEntry]
    skipped: list[Skipped]

    def to_json(self) -> dict[str, Any]:
        """Return the manifest form (entries without sources)."""
        return {
            "root": str(self.root),
            "entries": [entry.to_json() for entry in self.entries],
            "skipped": [skip.to_json() for skip in self.skipped],
        }


@dataclass
class InterpreterCapture:
    """One Python interpreter: the probe's report and, for a venv/conda env, its files.

    ``prefix_tree`` is the whole ``sys.prefix`` (``bin/``, ``lib/``, ``pyvenv.cfg``,
    ``conda-meta/``…) except ``__pycache__/`` (and, for a conda base install, its
    ``pkgs/`` cache and nested ``envs/``). It is None for a base/system interpreter: then
    the distributions' RECORD file lists in ``info`` are what is known.
    """

    python: str
    info: dict[str, Any]
    prefix_tree: FileTree | None


@dataclass
class KernelCapture:
    """One installed kernelspec.

    ``spec`` is the kernel.json content with secret-looking ``env`` values redacted (unless
    secrets are included); ``interpreter`` is the Python the kernel runs, when it is a
    Python kernel whose interpreter exists. ``redacted`` maps tree paths to replacement
    content to store instead of the original file; ``secrets`` lists what was redacted.
    """

    name: str
    spec: dict[str, Any]
    resource_dir: str
    interpreter: str | None
    tree: FileTree
    redacted: dict[str, bytes] = field(default_factory=dict)
    secrets: list[SecretFinding] = field(default_factory=list)


@dataclass
class ConfigCapture:
    """The Jupyter configuration files of one directory.

    ``redacted`` maps tree paths to the content to store instead of the original (tokens,
    passwords… replaced by ``REDACTION_MARKER``). ``role`` says what the directory is:
    ``config`` (a ``jupyter_config_path()`` entry), ``lab-app-settings``, or
    ``lab-user-settings``/``lab-workspaces`` when moved out of the config dir by
    ``JUPYTERLAB_SETTINGS_DIR``/``JUPYTERLAB_WORKSPACES_DIR``.
    """

    dir: str
    tree: FileTree
    redacted: dict[str, bytes]
    role: str = "config"
    secrets: list[SecretFinding] = field(default_factory=list)


@dataclass
class TreeScan:
    """What a scan of a tree's file contents found, for a snapshot to store.

    ``redacted`` maps tree paths to the content to store instead of the file's (the
    secrets replaced); ``clean`` maps the other files' paths to the version
    (``os.stat_result``) found clean: only that version may be stored.
    """

    redacted: dict[str, bytes]
    findings: list[SecretFinding]
    clean: dict[str, os.stat_result]


class ContentScanner(Protocol):
    """What scans a tree's file contents for secrets as a snapshot stores them.

    Files it leaves out leave the tree. The implementation is
    :class:`westtek_core.capture.secret_scan.SecretScanner`.
    """

    def scan_tree(self, tree: FileTree, area: str, only: Collection[str] | None = None) -> TreeScan:
        """Scan ``tree``'s files: what to store instead, what was found, what is clean.

        ``only`` names the only files (by name) to scan.
        """
        ...


@dataclass
class Capture:
    """Everything a snapshot records about an environment, before any content is stored.

    ``jupyter`` maps Jupyter distribution names to their versions in the capturing process
    (None when not installed). ``warnings`` are human-readable notes about what could not
    be captured (an interpreter that failed to probe, …). ``secret_scanner`` scans the
    workspace files' contents as a snapshot stores them (None: secrets included).
    """

    interpreters: list[InterpreterCapture]
    kernels: list[KernelCapture]
    jupyter: dict[str, Any]
    config: list[ConfigCapture]
    labextensions: list[dict[str, Any]]
    workspace: FileTree
    secrets: list[SecretFinding]
    warnings: list[str] = field(default_factory=list)
    secret_scanner: ContentScanner | None = None
