"""Carrying out a rollback's steps on the live environment, from the snapshot's stored files.

A distribution is removed by the RECORD of the live one and written back byte-exact, mode
and mtime included, from the snapshot's copy of the interpreter's prefix; nothing comes
from a package index (no pip runs). A kernelspec or a Jupyter config file is written from
the store too, with the live file's secrets put back where the snapshot holds them
redacted (:func:`with_live_secrets`). Every step is safe to repeat after an interruption:
files are written beside and renamed, metadata last, and nothing is written where a
symlink would lead out of its prefix or directory.
"""

from __future__ import annotations

import ast
import json
import os
import posixpath
import shutil
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from westtek_core.capture import REDACTION_MARKER
from westtek_core.capture.secret_rules import ByteSpans, assignments, redact_config
from westtek_core.paths import is_within
from westtek_core.rollback.plan import (
    NotRestorable,
    RollbackError,
    RollbackStep,
    checked_kernel_dir,
    distribution_entries,
    live_interpreter,
    normal_dirs,
    prefix_tree_index,
)
from westtek_core.snapshot.manifest import first_by_name, safe_relative_path
from westtek_core.store import FileContent, Repository

_UNSAFE_MODE_BITS = 0o6000  # setuid/setgid never come back from a snapshot

# -- secrets of redacted files -------------------------------------------------------------

_MARKER_JSON = json.dumps(REDACTION_MARKER).encode()
_MARKERS = (REDACTION_MARKER, REDACTION_MARKER.encode())


def _python_secrets(stored: bytes, live: bytes) -> bytes:
    """Put the live file's values back into the stored file's redacted assignments."""
    stored_tree, live_tree = ast.parse(stored), ast.parse(live)
    live_spans = ByteSpans(live)
    values: dict[str, list[bytes]] = {}
    for target, value in assignments(live_tree):
        start, end = live_spans.of(value)
        values.setdefault(ast.unparse(target), []).append(live[start:end])
    seen: dict[str, int] = {}
    spans: list[tuple[int, int, bytes]] = []
    stored_spans = ByteSpans(stored)
    for target, value in assignments(stored_tree):
        name = ast.unparse(target)
        occurrence = seen.get(name, 0)
        seen[name] = occurrence + 1
        redacted = any(isinstance(n, ast.Constant) and n.value in _MARKERS for n in ast.walk(value))
        candidates = values.get(name, [])
        if redacted and candidates:
            replacement = candidates[min(occurrence, len(candidates) - 1)]
            start, end = stored_spans.of(value)
            spans.append((start, end, replacement))
    out = bytearray(stored)
    for start, end, replacement in sorted(spans, reverse=True):
        out[start:end] = replacement
    return bytes(out)


def _json_marker_values(stored: Any, live: Any) -> Iterator[Any]:
    """For each redaction marker of ``stored`` in document order, the live value (or None)."""
    if isinstance(stored, str):
        if stored == REDACTION_MARKER:
            yield live if isinstance(live, str) and live != REDACTION_MARKER else None
    elif isinstance(stored, dict):
        for key, value in stored.items():
            yield from _json_marker_values(value, live.get(key) if isinstance(live, dict) else None)
    elif isinstance(stored, list):
        for i, value in enumerate(stored):
            other = live[i] if isinstance(live, list) and i < len(live) else None
            yield from _json_marker_values(value, other)


def _json_secrets(stored: bytes, live: bytes) -> bytes:
    """Put the live values back where the stored JSON says ``<redacted-by-westtek>``.

    Done on the text, marker by marker in document order, so the stored formatting stays.
    """
    values = list(_json_marker_values(json.loads(stored), json.loads(live)))
    pieces = stored.split(_MARKER_JSON)
    if len(pieces) != len(values) + 1:
        return stored
    out = [pieces[0]]
    for value, piece in zip(values, pieces[1:], strict=True):
        out.append(
            _MARKER_JSON if value is None else json.dumps(value, ensure_ascii=False).encode()
        )
        out.append(piece)
    return b"".join(out)


def with_live_secrets(path: str, stored: bytes, live: bytes | None) -> bytes:
    """The stored (redacted) content of a config file with the live file's secrets put back.

    When the live file differs from the stored one only in its secrets, the live content
    is the answer. Otherwise each redacted value takes the live file's value of the same
    setting; a setting the live file lacks keeps ``<redacted-by-westtek>``.
    """
    if live is None:
        return stored
    redacted = redact_config(path, live)
    if redacted is not None and redacted[0] == stored:
        return live
    try:
        if path.endswith(".py"):
            return _python_secrets(stored, live)
        return _json_secrets(stored, live)
    except (SyntaxError, ValueError, RecursionError):
        return stored


# -- applying steps ------------------------------------------------------------------------


def _check_inside(path: Path, root: str) -> None:
    """Refuse to write where a symlink would lead out of ``root``."""
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if not is_within(real, real_root):
        raise RollbackError(f"refusing to write {path}: it leads outside {root}")


def _remove_path(path: Path) -> bool:
    if path.is_symlink() or path.is_file():
        path.unlink()
        return True
    if path.is_dir():
        shutil.rmtree(path)
        return True
    return False


def _prune_empty_dirs(paths: Iterable[Path], root: str, stop: Collection[str] = ()) -> None:
    """Remove directories left empty below ``root``, walking up; never ``root`` or ``stop``."""
    for start in sorted({p.parent for p in paths}, key=lambda p: -len(p.parts)):
        current = start
        while str(current) != root and str(current) not in stop and is_within(str(current), root):
            try:
                current.rmdir()
            except OSError:
                break
            current = current.parent


class StepApplier:
    """Applies steps to the live environment from the target manifest's stored files.

    ``live`` is the live description the plan was made from; it follows the removals, so a
    later step never sees a distribution already removed. ``notes`` gathers what the steps
    could not do as planned (a secret left redacted, a file outside the prefix).
    """

    def __init__(
        self, repo: Repository, target: Mapping[str, Any], live: Mapping[str, Any]
    ) -> None:
        self.repo = repo
        self.target = target
        self.live = live
        self.notes: list[str] = []
        self._owners: dict[int, dict[str, set[str]]] = {}

    # files

    def _read(self, entry: Mapping[str, Any]) -> bytes:
        size = int(entry.get("stored_size", entry.get("size", 0)))
        content = FileContent(size=size, chunks=tuple(entry.get("content") or ()))
        return b"".join(self.repo.iter_file(content))

    def _write_entry(
        self, entry: Mapping[str, Any], dest: Path, root: str, data: bytes | None = None
    ) -> None:
        kind = entry.get("kind")
        dest.parent.mkdir(parents=True, exist_ok=True)
        _check_inside(dest.parent, root)
        mtime = int(entry.get("mtime_ns", 0))
        mode = int(entry.get("mode", 0o644)) & 0o7777 & ~_UNSAFE_MODE_BITS
        if kind == "dir":
            if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
                dest.unlink()
            dest.mkdir(exist_ok=True)
            os.chmod(dest, mode)
            return
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        if kind == "symlink":
            if dest.is_symlink() or dest.exists():
                dest.unlink()
            os.symlink(str(entry.get("link_target") or ""), dest)
            os.utime(dest, ns=(mtime, mtime), follow_symlinks=False)
            return
        # written beside, then renamed: an interruption never leaves a truncated file
        tmp = dest.with_name(f".{dest.name}.westtek-rollback")
        try:
            with open(tmp, "wb") as out:
                if data is not None:
                    out.write(data)
                else:
                    size = int(entry.get("size", 0))
                    for block in self.repo.iter_file(
                        FileContent(size=size, chunks=tuple(entry.get("content") or ()))
                    ):
                        out.write(block)
            os.chmod(tmp, mode)
            os.utime(tmp, ns=(mtime, mtime))
            tmp.replace(dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _write_config_like(
        self, entry: Mapping[str, Any], dest: Path, root: str, label: str
    ) -> None:
        """Write a kernel or config file, putting live secrets back into redacted copies."""
        if "stored_size" not in entry or entry.get("kind") != "file":
            self._write_entry(entry, dest, root)
            return
        live = dest.read_bytes() if dest.is_file() else None
        data = with_live_secrets(dest.name, self._read(entry), live)
        if REDACTION_MARKER.encode() in data:
            self.notes.append(f"{label}: written with its secrets redacted; set them again")
        self._write_entry(entry, dest, root, data)

    # packages

    def _interp(self, step: RollbackStep) -> Mapping[str, Any]:
        assert step.interpreter is not None
        return dict(self.target["interpreters"][step.interpreter])

    def _target_owners(self, index: int) -> dict[str, set[str]]:
        """Prefix-relative path → the target distributions that own it."""
        if index not in self._owners:
            interp = self.target["interpreters"][index]
            tree_index = prefix_tree_index(interp)
            owners: dict[str, set[str]] = {}
            for package in interp.get("packages", []):
                try:
                    entries, _ = distribution_entries(interp, package, tree_index)
                except NotRestorable:
                    continue
                for entry in entries:
                    owners.setdefault(str(entry["path"]), set()).add(
                        canonicalize_name(str(package["name"]))
                    )
            self._owners[index] = owners
        return self._owners[index]

    def _remove_distribution(self, step: RollbackStep) -> None:
        interp = self._interp(step)
        prefix = posixpath.normpath(str(interp["prefix"]))
        current = live_interpreter(interp, self.live)
        name = canonicalize_name(step.name)
        dist = first_by_name(current.get("packages", []) if current else []).get(name)
        if dist is None:
            return  # already gone (a resumed step)
        assert step.interpreter is not None
        owners = self._target_owners(step.interpreter)
        location = str(dist.get("location") or "")
        removed: list[Path] = []
        if not dist.get("files"):
            self.notes.append(f"{step.name} has no RECORD: only its metadata was removed")
        for record_path in dist.get("files", []):
            path = posixpath.normpath(posixpath.join(location, str(record_path)))
            if not is_within(path, prefix):
                self.notes.append(f"{step.name}: {path} is outside {prefix}; not removed")
                continue
            if owners.get(posixpath.relpath(path, prefix), {name}) - {name}:
                continue  # another distribution of the target owns it too
            target = Path(path)
            if target.is_symlink() or target.is_file():
                target.unlink()
                removed.append(target)
            if path.endswith(".py"):
                cache = target.parent / "__pycache__"
                for compiled in cache.glob(f"{target.stem}.*.pyc") if cache.is_dir() else ():
                    compiled.unlink()
                    removed.append(compiled)
        metadata_dir = posixpath.normpath(str(dist.get("metadata_dir") or ""))
        if (
            metadata_dir.startswith("/")
            and is_within(metadata_dir, prefix)
            and metadata_dir != prefix
        ):
            if _remove_path(Path(metadata_dir)):
                removed.append(Path(metadata_dir) / "RECORD")
        paths = interp.get("paths") or {}
        stop = {posixpath.normpath(str(p)) for p in paths.values() if p}
        stop |= {posixpath.join(prefix, top) for top in ("bin", "lib", "include", "share", "etc")}
        _prune_empty_dirs(removed, prefix, stop)
        # the live description now lacks it: a later step must not see it again
        if current is not None:
            current["packages"] = [
                p for p in current.get("packages", []) if canonicalize_name(str(p["name"])) != name
            ]
            self._replace_live_interpreter(current)

    def _replace_live_interpreter(self, updated: Mapping[str, Any]) -> None:
        interpreters = [
            updated if i.get("path") == updated.get("path") else i
            for i in self.live.get("interpreters", [])
        ]
        self.live = {**self.live, "interpreters": interpreters}

    def _install_distribution(self, step: RollbackStep) -> None:
        interp = self._interp(step)
        prefix = posixpath.normpath(str(interp["prefix"]))
        package = first_by_name(interp.get("packages", []))[canonicalize_name(step.name)]
        try:
            entries, _ = distribution_entries(interp, package)
        except NotRestorable as e:
            raise RollbackError(f"{step.name} cannot be restored: {e}") from None
        # metadata last: a half-written distribution is invisible to importlib.metadata
        entries.sort(key=lambda e: ".dist-info/" in str(e["path"]))
        for entry in entries:
            self._write_entry(entry, Path(prefix, str(entry["path"])), prefix)

    def _restore_prefix(self, step: RollbackStep) -> None:
        interp = self._interp(step)
        prefix = posixpath.normpath(str(interp["prefix"]))
        Path(prefix).mkdir(parents=True, exist_ok=True)
        entries = list((interp.get("prefix_tree") or {}).get("files", []))
        order = {"dir": 0, "file": 1, "symlink": 2}
        for entry in sorted(entries, key=lambda e: order.get(str(e.get("kind")), 3)):
            self._write_entry(entry, Path(prefix, str(entry["path"])), prefix)

    # kernels and config

    def _kernel(self, step: RollbackStep) -> None:
        present = next((k for k in self.live.get("kernels", []) if k["name"] == step.name), None)
        if step.action == "remove":
            if posixpath.dirname(step.where) not in normal_dirs(self.live.get("kernel_dirs", [])):
                raise RollbackError(f"kernel {step.name}: {step.where} is not a kernelspec dir")
            _remove_path(Path(step.where))
            return
        kernel = next(k for k in self.target.get("kernels", []) if k["name"] == step.name)
        where = checked_kernel_dir(kernel, normal_dirs(self.live.get("kernel_dirs", [])))
        wanted = {str(e["path"]) for e in kernel.get("files", [])}
        if present is not None and posixpath.normpath(str(present["resource_dir"])) == where:
            for entry in sorted(present.get("files", []), key=lambda e: -len(str(e["path"]))):
                if str(entry["path"]) not in wanted:
                    _remove_path(Path(where, str(entry["path"])))
        files = sorted(kernel.get("files", []), key=lambda e: e.get("kind") != "dir")
        for entry in files:
            dest = Path(where, str(safe_relative_path(str(entry["path"]))))
            self._write_config_like(entry, dest, where, f"kernel {step.name}/{entry['path']}")

    def _config(self, step: RollbackStep) -> None:
        dest = Path(step.where, str(safe_relative_path(step.name)))
        if step.action == "remove":
            _check_inside(dest.parent, step.where)
            if dest.is_symlink() or dest.is_file():
                dest.unlink()  # its directory stays: config dirs are the user's layout
            return
        entry = next(
            e
            for c in self.target.get("jupyter", {}).get("config", [])
            if posixpath.normpath(str(c.get("dir"))) == step.where
            for e in c.get("files", [])
            if str(e["path"]) == step.name
        )
        self._write_config_like(entry, dest, step.where, f"config {step.where}/{step.name}")

    def apply(self, step: RollbackStep) -> None:
        """Carry out one step; safe to repeat after an interruption."""
        if step.area == "packages":
            if step.action == "restore-prefix":
                self._restore_prefix(step)
                return
            if step.action in ("remove", "replace"):
                self._remove_distribution(step)
            if step.action in ("install", "replace"):
                self._install_distribution(step)
        elif step.area == "kernels":
            self._kernel(step)
        else:
            self._config(step)
