"""What a snapshot never stores: credential locations, and secrets inside text files.

:class:`SecretScanner` leaves out the credential locations (configurable) and scans the
content of every text file a snapshot is about to store with
:func:`~westtek_core.capture.secret_text.find_secrets`. A file holding a private key is
left out (a notebook's key block is redacted instead, the notebook is the researcher's
work); any other secret is replaced by :data:`REDACTION_MARKER` in the stored copy. Every
finding is a path, a line and a kind, never the value.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Collection
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from traitlets import Dict, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from westtek_core.capture import secret_rules, secret_text
from westtek_core.capture.model import (
    REASON_SECRET,
    REASON_UNREADABLE,
    FileTree,
    SecretAction,
    SecretFinding,
    Skipped,
    TreeScan,
)
from westtek_core.capture.scan_cache import CleanFileCache
from westtek_core.capture.secret_rules import (
    CREDENTIAL_LOCATIONS,
    REDACTION_MARKER,
    CredentialLocations,
)
from westtek_core.capture.secret_text import PRIVATE_KEY, find_secrets, replace_spans
from westtek_core.paths import SQLITE_HEADER_BYTES, cache_dir, is_own_database

WESTTEK_STATE = "westtek-state"

ENVIRONMENT_CONFIG_FILES = frozenset({"pip.conf", "pip.ini", ".condarc", "condarc"})
"""The files of an interpreter's prefix that are scanned: pip's and conda's config, whose
index and channel URLs may carry credentials. The rest of a prefix is packages' files,
stored byte for byte (a package's test data may hold example keys)."""

_RACY_NS = 2_000_000_000


class _Lines:
    """Line numbers (from 1) of offsets in a text."""

    def __init__(self, text: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def of(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)


@dataclass(frozen=True)
class FileScan:
    """What a file's content scan found: the spans, and the content to store instead.

    ``content`` is None when the file must be left out: it holds a private key, its
    redacted copy would no longer parse as the JSON it was, or it is West Tek's own state
    (a knowledge-base index, chat history, outbox… configured to live in the workspace).
    """

    findings: tuple[tuple[int | None, str], ...]  # (line, kind)
    content: bytes | None


class SecretScanner(LoggingConfigurable):
    """What a snapshot never stores: credential locations, and secrets inside text files."""

    credential_locations = Dict(
        Unicode(),
        default_value=CREDENTIAL_LOCATIONS,
        config=True,
        help="Files and folders a snapshot leaves out as credentials, as path patterns "
        "mapped to the kind of credential reported. A pattern without a slash matches that "
        "file name anywhere; 'parent/name' matches a path ending with those components; a "
        "trailing '/' makes it a whole folder; '*', '?' and '[...]' glob within one "
        "component. Extend it with c.SecretScanner.credential_locations.update("
        "{'.mytool/token': 'mytool-token'}).",
    )

    max_scan_bytes = Integer(
        4 * 1024 * 1024,
        config=True,
        help="Text files up to this size are scanned for secrets before a snapshot stores "
        "them (secrets redacted, files holding a private key left out); larger files are "
        "data, stored as they are. Binary files are never scanned.",
    )

    clean_cache = Unicode(
        config=True,
        help="SQLite file of the files found clean, so that a snapshot does not read and "
        "scan again a file unchanged since (same size, times and inode, same rules). "
        "Empty: every file is scanned each time. Default: secret-scan.sqlite in West "
        "Tek's cache directory.",
    )

    @default("clean_cache")
    def _default_clean_cache(self) -> str:
        return str(cache_dir() / "secret-scan.sqlite")

    _compiled: CredentialLocations | None = None

    @property
    def locations(self) -> CredentialLocations:
        """The credential locations, compiled for the walk."""
        table = dict(self.credential_locations)
        if self._compiled is None or self._compiled.table != table:
            self._compiled = CredentialLocations(table)
        return self._compiled

    def scan_file(self, path: Path, name: str) -> FileScan | None:
        """Scan one file's content; None when it holds no secret (or is not scanned).

        Raises OSError when the file cannot be read.
        """
        # os-level calls: a buffered file object costs as much as a small file's scan
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            data = _read_up_to(fd, SQLITE_HEADER_BYTES if size > self.max_scan_bytes else size)
        finally:
            os.close(fd)
        if is_own_database(path, data[:SQLITE_HEADER_BYTES]):
            return FileScan(((None, WESTTEK_STATE),), None)
        if size > self.max_scan_bytes or b"\0" in data[:8192]:
            return None  # data, or binary: stored as it is
        # latin-1 maps every byte to one character: the redacted copy keeps every other byte
        text = data.decode("latin-1")
        spans = find_secrets(text, name)
        if not spans:
            return None
        lines = _Lines(text)
        findings = tuple((lines.of(s.start), s.kind) for s in spans)
        is_notebook = name.endswith(".ipynb")
        if any(s.kind == PRIVATE_KEY for s in spans) and not is_notebook:
            return FileScan(findings, None)
        redacted = replace_spans(text, spans, REDACTION_MARKER).encode("latin-1")
        if name.endswith((".ipynb", ".json")) and _parses(data) and not _parses(redacted):
            return FileScan(findings, None)
        return FileScan(findings, redacted)

    def scan_tree(self, tree: FileTree, area: str, only: Collection[str] | None = None) -> TreeScan:
        """Scan every file of ``tree``: redacted copies to store, findings, clean versions.

        Files left out leave the tree (listed in ``tree.skipped``); every finding of a
        file is reported, each with its line and kind. A file found clean before and
        unchanged since (``clean_cache``) is not read again. ``only`` names the only
        files (by name) to scan, the others being kept as they are.
        """
        redacted: dict[str, bytes] = {}
        findings: list[SecretFinding] = []
        clean_versions: dict[str, os.stat_result] = {}
        kept = []
        clean = (
            CleanFileCache(Path(self.clean_cache), _rules_fingerprint())
            if self.clean_cache
            else None
        )
        now_ns = time.time_ns()
        scanned: set[str] = set()
        for entry in tree.entries:
            if entry.kind != "file" or (
                only is not None and entry.path.rsplit("/", 1)[-1] not in only
            ):
                kept.append(entry)
                continue
            scanned.add(entry.source)
            try:
                st = os.stat(entry.source)
                if clean is not None and clean.is_clean(entry.source, st):
                    clean_versions[entry.path] = st
                    kept.append(entry)
                    continue
                scan = self.scan_file(Path(entry.source), entry.path)
            except OSError as exc:
                tree.skipped.append(Skipped(entry.path, REASON_UNREADABLE, str(exc)))
                continue
            if scan is None:
                # a file changed within the file system's clock tick may change again with
                # the same size and times: only older versions are remembered clean
                if clean is not None and st.st_ctime_ns < now_ns - _RACY_NS:
                    clean.add(entry.source, st)
                clean_versions[entry.path] = st
                kept.append(entry)
                continue
            action: SecretAction = "excluded" if scan.content is None else "redacted"
            findings.extend(
                SecretFinding(area, entry.path, kind, action, line=line)
                for line, kind in scan.findings
            )
            if scan.content is None:
                tree.skipped.append(Skipped(entry.path, REASON_SECRET, "holds a secret"))
                continue
            redacted[entry.path] = scan.content
            kept.append(entry)
        if clean is not None:  # only scanned files have verdicts: the others need no look
            clean.save(tree.root, scanned)
        tree.entries = kept
        tree.skipped.sort(key=lambda s: s.path)
        return TreeScan(redacted, findings, clean_versions)


def _read_up_to(fd: int, size: int) -> bytes:
    """Up to ``size`` bytes of ``fd`` (less when the file is shorter)."""
    chunks = []
    while size > 0 and (chunk := os.read(fd, size)):
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


@functools.cache
def _rules_fingerprint() -> str:
    """What a clean verdict depends on: the rules' code and detect-secrets' version."""
    digest = hashlib.blake2b(digest_size=16)
    for path in (__file__, secret_text.__file__, secret_rules.__file__):
        digest.update(Path(str(path)).read_bytes())
    digest.update(metadata.version("detect-secrets").encode())
    return digest.hexdigest()


def _parses(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True
