"""Restore a snapshot into a new directory, offline, and check that what came back works.

Layout (ARCHITECTURE.md): ``workspace/`` (the files of the captured root), ``envs/<n>/``
(one prefix per captured interpreter), ``jupyter/`` (config files and ``kernels/``, usable
as JUPYTER_CONFIG_DIR and JUPYTER_DATA_DIR) and ``RESTORE.json``.

Every file comes back byte-identical except the relocated ones: text files of an
environment prefix that name the old prefix (shebangs, ``pyvenv.cfg``, activate scripts,
``.pth`` files), absolute symlinks into the old prefix, and kernelspecs repointed to the
restored interpreter. Those are listed in ``RESTORE.json``. Compiled ``.pyc`` files keep the
old path inside: it only shows in tracebacks.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from westtek_core.paths import write_atomic
from westtek_core.snapshot.archive import ArchivePoller, require_readable
from westtek_core.snapshot.create import Progress, ProgressCallback
from westtek_core.snapshot.interpreters import (
    RestoreError,
    rebuild_environment,
    validate_interpreter,
)
from westtek_core.snapshot.manifest import (
    AREA_CONFIG,
    AREA_ENV,
    AREA_KERNEL,
    AREA_WORKSPACE,
    ManifestError,
    ManifestFile,
    iter_files,
    safe_relative_path,
)
from westtek_core.store import FileContent, Repository

# Files up to this size are relocated in memory; larger ones are data, streamed as they are.
RELOCATE_MAX_BYTES = 16 * 1024 * 1024
_UNSAFE_MODE_BITS = stat.S_ISUID | stat.S_ISGID


RESTORE_THREADS = 4


@dataclass(frozen=True)
class _Written:
    display: str
    size: int
    relocated: bool
    mode_dropped: bool


@dataclass
class RestoreReport:
    """What was restored, what was relocated, and how validation went (RESTORE.json)."""

    snapshot: str
    target: str
    files: int = 0
    bytes: int = 0
    relocated: list[str] = field(default_factory=list)
    modes_dropped: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    interpreters: list[dict[str, Any]] = field(default_factory=list)
    kernels: list[dict[str, Any]] = field(default_factory=list)
    validation: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every validation passed and nothing conflicted."""
        return not self.conflicts and all(v.get("ok") for v in self.validation)

    def to_json(self) -> dict[str, Any]:
        """The content of RESTORE.json."""
        return {
            "snapshot": self.snapshot,
            "target": self.target,
            "ok": self.ok,
            "files": self.files,
            "bytes": self.bytes,
            "interpreters": self.interpreters,
            "kernels": self.kernels,
            "relocated": self.relocated,
            "modes_dropped": self.modes_dropped,
            "conflicts": self.conflicts,
            "validation": self.validation,
        }


# Where each kind of captured config dir goes under jupyter/ (the capture's ConfigCapture.role).
CONFIG_ROLE_DIRS = {
    "config": "",
    "lab-user-settings": "lab/user-settings",
    "lab-workspaces": "lab/workspaces",
    "lab-app-settings": "lab/settings",
}


def _area_root(target: Path, item: ManifestFile) -> Path:
    if item.area == AREA_WORKSPACE:
        return target / "workspace"
    if item.area == AREA_ENV:
        return target / "envs" / item.area_key
    if item.area == AREA_KERNEL:
        return target / "jupyter" / "kernels" / item.area_key
    return target / "jupyter" / CONFIG_ROLE_DIRS.get(item.role, "")


# What a manifest entry may be; walks record nothing else (devices, fifos and sockets are
# skipped at capture), so any other kind comes from a crafted manifest.
RESTORABLE_KINDS = ("file", "dir", "symlink")
_LIMIT = 1 << 63  # sizes and nanosecond times beyond this are not real files
_CHUNK_ID = frozenset("0123456789abcdef")


def _unsafe(item: ManifestFile, problem: str) -> ManifestError:
    return ManifestError(f"unsafe manifest: {item.display}: {problem}")


def _check_int(item: ManifestFile, name: str, low: int, high: int) -> int:
    value = item.entry.get(name, 0)
    if type(value) is not int or not low <= value < high:
        raise _unsafe(item, f"{name} {value!r} is not a number a real file has")
    return value


def check_manifest(manifest: Mapping[str, Any], target: Path, with_envs: bool = True) -> int:
    """Refuse a manifest that could harm the machine; return the bytes its files need.

    Refused: anything that could write outside ``target`` or create what a capture never
    records. Every path is relative and free of ``..``; every kernel name is one plain folder name;
    entries are files, folders or symlinks with sane numbers and chunk ids; no symlink, and
    no kernelspec the restore rewrites, lies below another symlink (a restore never writes
    through a link it made). :class:`ManifestError` says which entry and why.
    """
    for kernel in manifest.get("kernels", []):
        name = str(kernel.get("name", ""))
        if "/" in name or name in ("", ".") or safe_relative_path(name).parts != (name,):
            raise ManifestError(f"unsafe manifest: kernel name {name!r} is not a folder name")
    items = [i for i in iter_files(manifest) if with_envs or i.area != AREA_ENV]
    needed = 0
    links: set[Path] = set()
    for item in items:
        safe_relative_path(item.path)
        kind = item.entry.get("kind")
        if kind not in RESTORABLE_KINDS:
            raise _unsafe(item, f"a {kind!r} is not restorable (only files, folders, symlinks)")
        _check_int(item, "mode", 0, 1 << 32)
        _check_int(item, "mtime_ns", -_LIMIT, _LIMIT)
        size = _check_int(item, "size", 0, _LIMIT)
        if "stored_size" in item.entry:
            size = _check_int(item, "stored_size", 0, _LIMIT)
        content = item.entry.get("content") or []
        if not isinstance(content, list) or not all(
            isinstance(c, str) and len(c) == 64 and _CHUNK_ID.issuperset(c) for c in content
        ):
            raise _unsafe(item, "its content is not a list of chunk ids")
        if kind == "file":
            needed += size
        elif kind == "symlink":
            link = item.entry.get("link_target")
            if not isinstance(link, str) or not link or "\x00" in link:
                raise _unsafe(item, "its link target is not a path")
            links.add(_area_root(target, item) / item.path)
    # a later symlink, or a kernel.json rewritten after the links, must not go through one
    written_late = [
        (i.display, _area_root(target, i) / i.path) for i in items if i.entry["kind"] == "symlink"
    ] + [
        (f"kernel {k['name']}", target / "jupyter" / "kernels" / str(k["name"]) / "kernel.json")
        for k in manifest.get("kernels", [])
    ]
    for display, path in written_late:
        for parent in path.parents:
            if parent in links:
                link = parent.relative_to(target)
                raise ManifestError(
                    f"unsafe manifest: {display} lies below the symlink {link}: a restore"
                    " never writes through a link, nor outside the restore target"
                )
    return needed


def _free_bytes(target: Path) -> int:
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def _create_file(path: Path) -> int:
    """A descriptor of a new, empty file at ``path`` that never goes through a link there.

    A link already at the path (a forced restore into a folder that holds one) is replaced
    by the file, never followed: it lies in a folder :meth:`_Restorer._make_dirs` checked.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
    os.unlink(path)
    return os.open(path, flags | os.O_EXCL, 0o600)


class _Restorer:
    def __init__(
        self,
        repo: Repository,
        manifest: Mapping[str, Any],
        target: Path,
        *,
        with_envs: bool,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.repo = repo
        self.progress = progress
        self.files_total = self.bytes_total = 0
        self.manifest = manifest
        self.target = target
        self.with_envs = with_envs
        self.made_dirs: set[Path] = set()  # folders made or checked, as the manifest names them
        self.real_dirs: set[Path] = set()  # their components, below the real target
        self.real_target = os.path.realpath(target)
        self.report = RestoreReport(snapshot=str(manifest.get("id", "")), target=str(target))
        # old prefix → new prefix, per restored interpreter
        self.prefixes: dict[str, tuple[bytes, bytes]] = {}
        for index, interp in enumerate(manifest.get("interpreters", [])):
            if with_envs and interp.get("prefix_tree") and interp.get("prefix"):
                new_prefix = target / "envs" / str(index)
                self.prefixes[str(index)] = (
                    os.fsencode(interp["prefix"]),
                    os.fsencode(str(new_prefix)),
                )

    def run(self) -> RestoreReport:
        items = [i for i in iter_files(self.manifest) if self.with_envs or i.area != AREA_ENV]
        for item in items:
            safe_relative_path(item.path)
            if item.area == AREA_KERNEL:
                safe_relative_path(item.area_key)
        # dirs, then files, then links: nothing is ever written through a restored link
        dirs = [i for i in items if i.entry.get("kind") == "dir"]
        files = [i for i in items if i.entry.get("kind") == "file"]
        # config dirs merge into jupyter/: lower-priority dirs first, so the first listed wins
        config_dirs = [c["dir"] for c in self.manifest.get("jupyter", {}).get("config", [])]
        files.sort(key=lambda i: -config_dirs.index(i.area_key) if i.area == AREA_CONFIG else 1)
        self.files_total = len(files)
        self.bytes_total = sum(
            int(i.entry.get("stored_size", i.entry.get("size", 0))) for i in files
        )
        for item in dirs:
            self._make_dirs(_area_root(self.target, item) / item.path, item.display)
        # Creating files is the cost of a restore (syscalls release the GIL): run them in
        # parallel, except merged config files, whose order decides which one wins.
        parallel = [i for i in files if i.area != AREA_CONFIG]
        with ThreadPoolExecutor(max_workers=RESTORE_THREADS) as pool:
            for written in pool.map(self._restore_file, parallel):
                self._record(written)
        for item in files:
            if item.area == AREA_CONFIG:
                self._record(self._restore_file(item))
        for item in items:
            if item.entry.get("kind") == "symlink":
                self._restore_link(item)
        self._restore_dir_times(dirs)
        self._repoint_kernels()
        return self.report

    def _dest(self, item: ManifestFile) -> Path:
        dest = _area_root(self.target, item) / item.path
        self._make_dirs(dest.parent, item.display)
        return dest

    def _make_dirs(self, folder: Path, display: str) -> None:
        """Make ``folder`` below the target one component at a time, through no link.

        A forced restore goes into a folder that may already hold links (planted, or left
        by an earlier restore): each component is made or found, then checked to be a real
        folder before the next is made in it, so nothing is created outside the target.
        """
        if folder in self.made_dirs:  # a mkdir per file costs as much as the file
            return
        current = Path(self.real_target)
        for part in folder.relative_to(self.target).parts:
            current = current / part
            if current in self.real_dirs:
                continue
            try:
                os.mkdir(current)
            except FileExistsError:
                pass
            mode = os.lstat(current).st_mode
            if not stat.S_ISDIR(mode):
                what = "a link" if stat.S_ISLNK(mode) else "not a folder"
                raise ManifestError(
                    f"unsafe restore: {display} would be written through"
                    f" {current.relative_to(self.real_target)}, which is {what} in the target"
                    f" {self.target}; a restore never writes through a link"
                )
            self.real_dirs.add(current)
        self.made_dirs.add(folder)

    def _restore_file(self, item: ManifestFile) -> _Written:
        entry = item.entry
        dest = self._dest(item)
        size = int(entry.get("stored_size", entry.get("size", 0)))  # redacted files differ
        content = FileContent(size=size, chunks=tuple(item.chunks))
        relocate = self.prefixes.get(item.area_key) if item.area == AREA_ENV else None
        relocated, data = False, None
        if relocate and content.size <= RELOCATE_MAX_BYTES:
            data = b"".join(self.repo.iter_file(content))
            old, new = relocate
            if old in data and b"\0" not in data[:8192]:
                data = data.replace(old, new)
                relocated = True
        mode = int(entry.get("mode", 0o644))
        mtime = int(entry.get("mtime_ns", 0))
        with os.fdopen(_create_file(dest), "wb") as out:
            if data is not None:
                out.write(data)
            else:
                for block in self.repo.iter_file(content):
                    out.write(block)
            out.flush()
            os.chmod(out.fileno(), mode & 0o7777 & ~_UNSAFE_MODE_BITS)
            os.utime(out.fileno(), ns=(mtime, mtime))
        return _Written(item.display, content.size, relocated, bool(mode & _UNSAFE_MODE_BITS))

    def _record(self, written: _Written) -> None:
        self.report.files += 1
        self.report.bytes += written.size
        if written.relocated:
            self.report.relocated.append(written.display)
        if written.mode_dropped:
            self.report.modes_dropped.append(written.display)
        if self.progress:
            self.progress(
                Progress(self.report.files, self.files_total, self.report.bytes, self.bytes_total)
            )

    def _restore_link(self, item: ManifestFile) -> None:
        dest = self._dest(item)
        link = str(item.entry.get("link_target") or "")
        relocate = self.prefixes.get(item.area_key) if item.area == AREA_ENV else None
        if relocate and os.fsencode(link).startswith(relocate[0] + b"/"):
            link = os.fsdecode(relocate[1] + os.fsencode(link)[len(relocate[0]) :])
            self.report.relocated.append(item.display)
        if dest.exists() or dest.is_symlink():
            self.report.conflicts.append(f"{item.display}: exists, link not created")
            return
        os.symlink(link, dest)
        mtime = int(item.entry.get("mtime_ns", 0))
        os.utime(dest, ns=(mtime, mtime), follow_symlinks=False)

    def _restore_dir_times(self, dirs: Iterable[ManifestFile]) -> None:
        for item in sorted(dirs, key=lambda i: i.path.count("/"), reverse=True):
            path = _area_root(self.target, item) / item.path
            os.chmod(path, int(item.entry.get("mode", 0o755)) & 0o7777 & ~_UNSAFE_MODE_BITS)
            mtime = int(item.entry.get("mtime_ns", 0))
            os.utime(path, ns=(mtime, mtime))

    def restored_python(self, index: int) -> Path:
        """The restored interpreter of captured interpreter ``index``."""
        interp = self.manifest["interpreters"][index]
        if not self.with_envs:
            return self.target / "envs" / str(index) / "bin" / "python"
        executable = Path(str(interp.get("executable") or interp.get("path")))
        prefix = Path(str(interp.get("prefix")))
        try:
            relative = executable.relative_to(prefix)
        except ValueError:
            relative = Path("bin") / "python"
        return self.target / "envs" / str(index) / relative

    def restorable(self, interp: Mapping[str, Any]) -> bool:
        """Whether an interpreter comes back: from its stored files, or rebuilt from a lock."""
        return bool(interp.get("prefix_tree")) or not self.with_envs

    def _interpreter_of(self, argv0: str) -> int | None:
        for index, interp in enumerate(self.manifest.get("interpreters", [])):
            if not self.restorable(interp):
                continue
            names = {interp.get("path"), interp.get("executable")}
            prefix = str(interp.get("prefix") or "")
            if argv0 in names or (prefix and argv0.startswith(prefix.rstrip("/") + "/")):
                return index
        return None

    def _repoint_kernels(self) -> None:
        for interp_index, interp in enumerate(self.manifest.get("interpreters", [])):
            if self.restorable(interp):
                self.report.interpreters.append(
                    {
                        "captured": interp.get("path"),
                        "restored": str(self.restored_python(interp_index)),
                        "prefix": str(self.target / "envs" / str(interp_index)),
                    }
                )
        for kernel in self.manifest.get("kernels", []):
            spec_path = self.target / "jupyter" / "kernels" / kernel["name"] / "kernel.json"
            spec = dict(kernel.get("spec", {}))
            argv = list(spec.get("argv", []))
            index = self._interpreter_of(argv[0]) if argv else None
            record: dict[str, Any] = {"name": kernel["name"], "spec": str(spec_path)}
            if index is not None and spec_path.exists():
                self._make_dirs(spec_path.parent, f"kernel {kernel['name']}")
                if spec_path.is_symlink():
                    raise ManifestError(f"unsafe restore: kernel {kernel['name']}: a symlink")
                argv[0] = str(self.restored_python(index))
                spec["argv"] = argv
                with os.fdopen(_create_file(spec_path), "w") as out:
                    out.write(json.dumps(spec, indent=1))
                self.report.relocated.append(f"{AREA_KERNEL}:{kernel['name']}/kernel.json")
                record["interpreter"] = argv[0]
            self.report.kernels.append(record)


def restore_snapshot(
    repo: Repository,
    manifest: Mapping[str, Any],
    target: Path,
    *,
    force: bool = False,
    validate: bool = True,
    mode: str = "files",
    execute_notebooks: bool = False,
    progress: ProgressCallback | None = None,
    archive: ArchivePoller | None = None,
) -> RestoreReport:
    """Restore ``manifest`` into ``target`` and validate what came back.

    ``mode="files"`` brings every environment back byte-exact from the store, offline;
    ``mode="lock"`` rebuilds each environment as a fresh venv of the same Python version
    from the package index (pip's own configuration chooses which), for another OS or
    architecture. Workspace, config and kernels come from the store either way.
    ``execute_notebooks`` re-runs every restored notebook in its restored kernel and
    reports each cell whose outputs differ from the stored ones. ``progress`` is called
    after each file written. When packs it needs are in archive storage, their restore is
    requested and :class:`~westtek_core.store.ArchiveWait` raised before anything is
    written, or, given an ``archive`` poller, the restore waits until they are back.
    """
    if mode not in ("files", "lock"):
        raise RestoreError(f"unknown restore mode {mode!r}; choose files or lock")
    target = target.absolute()
    if target.exists() and not target.is_dir():
        raise RestoreError(f"restore target {target} exists and is not a directory")
    if target.exists() and any(target.iterdir()) and not force:
        raise RestoreError(
            f"restore target {target} is not empty: choose a new directory or pass --force"
        )
    needed = check_manifest(manifest, target, with_envs=mode == "files")
    free = _free_bytes(target)
    if needed > free:
        raise RestoreError(
            f"snapshot {str(manifest.get('id', ''))[:12]} needs {needed:,} bytes for its files"
            f" but {target} has only {free:,} bytes free"
        )
    with_envs = mode == "files"
    chunks = (
        chunk
        for item in iter_files(manifest)
        if with_envs or item.area != AREA_ENV
        for chunk in item.chunks
    )
    require_readable(repo, chunks, f"snapshot {str(manifest.get('id', ''))[:12]}", archive)
    target.mkdir(parents=True, exist_ok=True)
    restorer = _Restorer(repo, manifest, target, with_envs=mode == "files", progress=progress)
    if mode == "lock":
        for index in range(len(manifest.get("interpreters", []))):
            rebuild_environment(manifest, index, restorer.restored_python(index).parent.parent)
    report = restorer.run()
    if validate:
        for index, interp in enumerate(manifest.get("interpreters", [])):
            if restorer.restorable(interp):
                report.validation.append(
                    validate_interpreter(restorer.restored_python(index), interp)
                )
    if execute_notebooks:
        from westtek_core.snapshot.notebooks import rerun_notebooks

        for run in rerun_notebooks(target / "workspace", target / "jupyter" / "kernels"):
            report.validation.append({"interpreter": f"notebook {run['notebook']}", **run})
    write_atomic(target / "RESTORE.json", json.dumps(report.to_json(), indent=2))
    return report


def workspace_restore_target(root: Path, target: str) -> Path:
    """Where a restore into the workspace goes: a new or empty directory inside ``root``."""
    if not target.strip():
        raise ValueError("name a directory to restore into")
    path = (root / target).resolve()
    if path != root and root.resolve() not in path.parents:
        raise ValueError(f"restore target {target!r} is outside the workspace")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(f"restore target {target!r} exists and is not empty")
    return path


def ignore_in_workspace(root: Path, path: Path) -> None:
    """List a restored copy in ``root``'s ``.westtekignore``: it is not the workspace's data."""
    relative = path.relative_to(root.resolve()).as_posix()
    ignore = root / ".westtekignore"
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    entry = f"/{relative}/"
    if entry not in lines:
        with ignore.open("a") as out:
            out.write(("\n" if lines and lines[-1] else "") + entry + "\n")
