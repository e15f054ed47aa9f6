"""A successor takes over a predecessor's environment: their work in a folder, their kernel.

From the latest snapshot of the handed-over environment in the lab's store, offline:

- the predecessor's notebooks and data go into ``from-<predecessor>/`` of the successor's
  workspace, without their private files (:data:`PRIVATE_LOCATIONS`: Jupyter secrets, shell
  and IPython history, chat history, West Tek's own state, credentials);
- their packages and kernels come back byte-exact as a kernel environment of its own under
  ``~/.kernels/<name>/`` (the successor's own environment is never touched), installed as
  kernelspecs named after the predecessor, which the copied notebooks are set to use;
- ``START_HERE.md`` in the folder says what came over and what to do next, from the same
  notebook facts and checklist as the hub's transfer package (:mod:`.succession`).

Nothing is half-written: the folder appears by a rename once complete, and a record in
``<data dir>/taken-over.json`` is written last; taking over the same snapshot again returns
that record. A snapshot whose packs are in archive storage (a predecessor who left years ago)
raises :class:`~westtek_core.store.ArchiveWait` before anything is written, their restore
requested: taking over again once they are back completes it.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from westtek_core.capture.secret_rules import CREDENTIAL_LOCATIONS, CredentialLocations
from westtek_core.kb.succession import notebook_facts, onboarding_checklist
from westtek_core.notebooks import analyse_workspace
from westtek_core.paths import data_dir, write_atomic
from westtek_core.snapshot import RestoreError, restore_snapshot
from westtek_core.snapshot.catalog import load_snapshot
from westtek_core.snapshot.manifest import safe_relative_path
from westtek_core.store import Repository, StoreError

START_PAGE = "START_HERE.md"
START_URL = "/westtek/start-here"
"""Where a server opens on its latest take-over's start page (relative to its base URL)."""
START_PAGE_PARAMETER = "westtek-start-page"
"""JupyterLab's query parameter for a page its West Tek extension opens rendered at start."""
KERNELS_DIR = ".kernels"
RECORD_FILE = "taken-over.json"

PRIVATE_LOCATIONS: dict[str, str] = {
    **CREDENTIAL_LOCATIONS,
    ".bash_history": "shell history",
    ".zsh_history": "shell history",
    ".sh_history": "shell history",
    ".python_history": "Python history",
    ".node_repl_history": "shell history",
    ".psql_history": "shell history",
    ".sqlite_history": "shell history",
    ".mysql_history": "shell history",
    ".lesshst": "shell history",
    ".viminfo": "editor history",
    ".ipython/": "IPython history and profile",
    ".jupyter/": "Jupyter config and secrets",
    ".local/share/jupyter/": "Jupyter runtime secrets",
    "jupyter_cookie_secret": "Jupyter secrets",
    ".westtek/": "West Tek's own state (chat history)",
    ".local/share/westtek/": "West Tek's own state (chat history)",
    ".config/westtek/": "West Tek's store key",
    ".cache/": "caches",
    ".venv/": "their kernel environment (comes back as a kernel of its own)",
    KERNELS_DIR + "/": "kernel environments they took over",
}
"""What of a predecessor's workspace never reaches a successor, in the pattern syntax of
:data:`~westtek_core.capture.secret_rules.CREDENTIAL_LOCATIONS`: path pattern → why."""

_PRIVATE = CredentialLocations(PRIVATE_LOCATIONS)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class TakeOverError(RestoreError):
    """The snapshot cannot be taken over (none of the environment, a folder in the way)."""


@dataclass
class TakeOver:
    """What a take-over brought into the successor's workspace (also its record)."""

    environment_id: str
    predecessor: str
    snapshot: str
    folder: str  # relative to the workspace
    start_page: str  # relative to the workspace
    kernels: list[dict[str, str]] = field(default_factory=list)
    left_out: list[dict[str, str]] = field(default_factory=list)
    files: int = 0
    bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        """The record as JSON."""
        return asdict(self)


def private_reason(path: str) -> str | None:
    """Why a workspace path is the predecessor's own (None when it is their work)."""
    parts = path.split("/")
    for depth in range(1, len(parts)):
        reason = _PRIVATE.kind_of("/".join(parts[:depth]), True)
        if reason:
            return reason
    return _PRIVATE.kind_of(path, False)


def _name(text: str) -> str:
    return _UNSAFE_NAME.sub("-", text).strip("-.").lower() or "predecessor"


def latest_of(repo: Repository, environment_id: str) -> dict[str, Any]:
    """The newest snapshot of ``environment_id`` in ``repo``; one line when there is none."""
    from westtek_core.rollback import latest_snapshot

    newest = latest_snapshot(repo, environment_id)
    if newest is None:
        raise TakeOverError(f"the lab's store holds no snapshot of {environment_id}")
    return newest


def _of(repo: Repository, snapshot: str) -> dict[str, Any]:
    """A snapshot's manifest; a one-line error when the store lacks it."""
    try:
        return load_snapshot(repo, snapshot)
    except StoreError as e:
        raise TakeOverError(f"the lab's store cannot give snapshot {snapshot}: {e}") from e


def records(state: Path | None = None) -> list[dict[str, Any]]:
    """Every take-over made in this workspace, oldest first."""
    path = (state or data_dir()) / RECORD_FILE
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def _kept(manifest: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The manifest without private workspace files, Jupyter config or unused interpreters."""
    kept, left_out = [], []
    for entry in manifest.get("workspace", {}).get("files", []):
        path = str(entry.get("path", ""))
        reason = private_reason(path)
        if reason is None:
            kept.append(entry)
        elif entry.get("kind", "file") == "file":
            left_out.append({"path": path, "why": reason})
    argv0s = {str((k.get("spec") or {}).get("argv", [""])[0]) for k in manifest.get("kernels", [])}

    def used(interp: Mapping[str, Any]) -> bool:
        prefix = str(interp.get("prefix") or "").rstrip("/")
        names = {interp.get("path"), interp.get("executable")}
        return any(a in names or (prefix and a.startswith(prefix + "/")) for a in argv0s)

    interpreters = [
        dict(i) if used(i) else {k: v for k, v in i.items() if k != "prefix_tree"}
        for i in manifest.get("interpreters", [])
    ]
    return {
        **manifest,
        "workspace": {**manifest.get("workspace", {}), "files": kept},
        "jupyter": {**manifest.get("jupyter", {}), "config": []},
        "interpreters": interpreters,
    }, left_out


def _install_kernels(
    restored: Path, report_kernels: list[dict[str, Any]], predecessor: str, kernels_dir: Path
) -> dict[str, dict[str, str]]:
    """Install the restored kernelspecs under the predecessor's name; old name → new spec."""
    installed: dict[str, dict[str, str]] = {}
    for kernel in report_kernels:
        if "interpreter" not in kernel:
            continue  # its interpreter was not preserved: nothing to run it with
        source = restored / "jupyter" / "kernels" / str(kernel["name"])
        name = _name(f"{predecessor}-{kernel['name']}")
        spec = json.loads((source / "kernel.json").read_text())
        # their display names often say "your environment": name whose it is instead
        spec["display_name"] = f"{predecessor}'s {kernel['name']}"
        target = kernels_dir / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target, symlinks=True)
        (target / "kernel.json").write_text(json.dumps(spec, indent=1))
        installed[str(kernel["name"])] = {"name": name, "display_name": spec["display_name"]}
    return installed


def _point_notebooks(folder: Path, kernels: Mapping[str, Mapping[str, str]]) -> None:
    """Set each copied notebook to run on the kernel taken over with it.

    Only ``metadata.kernelspec`` changes (as JSON: nbformat would also add cell ids and
    re-validate); a notebook that is not valid JSON is left as it is.
    """
    if not kernels:
        return
    fallback = next(iter(kernels.values()))
    for path in folder.rglob("*.ipynb"):
        try:
            notebook = json.loads(path.read_bytes())
            metadata = notebook.setdefault("metadata", {})
            spec = metadata.get("kernelspec") or {}
        except (ValueError, AttributeError):
            continue
        new = kernels.get(str(spec.get("name")), fallback)
        metadata["kernelspec"] = {**spec, **new}
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def _as_installed(
    facts: Mapping[str, Any], kernels: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    """Notebook facts naming the kernels as installed (a kernel not installed keeps its name)."""
    notebooks = [
        {**nb, "kernel": kernels[nb["kernel"]]["name"]} if nb.get("kernel") in kernels else nb
        for nb in facts.get("notebooks") or []
    ]
    return {**facts, "notebooks": notebooks, "kernels": [dict(k) for k in kernels.values()]}


def start_page(take_over: TakeOver, facts: Mapping[str, Any], checklist: list[str]) -> str:
    """The ``START_HERE.md`` of a take-over, in Markdown."""
    lines = [
        f"# Start here: {take_over.predecessor}'s work",
        "",
        f"You took over environment `{take_over.environment_id}` from "
        f"{take_over.predecessor}, as snapshot `{take_over.snapshot[:12]}` preserved it.",
        "",
        "## What came over",
        "",
        f"- Their notebooks and data: this folder, `{take_over.folder}/` "
        f"({take_over.files} files).",
    ]
    for kernel in take_over.kernels:
        lines.append(
            f"- Their packages, as kernel **{kernel['display_name']}** (`{kernel['name']}`); "
            "the notebooks here are set to use it. Your own environment is unchanged."
        )
    if not take_over.kernels:
        lines.append("- No kernel: the snapshot preserved no interpreter to run one with.")
    if take_over.left_out:
        reasons = sorted({item["why"] for item in take_over.left_out})
        lines.append(
            f"- Left out as {take_over.predecessor}'s own ({len(take_over.left_out)} files): "
            + "; ".join(reasons)
            + "."
        )
    lines += ["", "## Checklist", ""]
    lines += [f"{n}. {step}" for n, step in enumerate(checklist, 1)]
    notebooks = list(facts.get("notebooks") or [])
    if notebooks:
        lines += ["", "## Notebooks, in the order to run them", ""]
        for nb in notebooks:
            detail = []
            if nb.get("imports"):
                detail.append("imports " + ", ".join(nb["imports"]))
            if nb.get("reads"):
                detail.append("reads " + ", ".join(nb["reads"]))
            suffix = f": {'; '.join(detail)}" if detail else ""
            lines.append(f"- [{nb['path']}]({nb['path']}){suffix}")
    return "\n".join(lines) + "\n"


def take_over(
    repo: Repository,
    environment_id: str,
    predecessor: str,
    workspace: Path,
    *,
    kernels_dir: Path,
    snapshot: str | None = None,
    state: Path | None = None,
) -> TakeOver:
    """Bring the latest snapshot of ``environment_id`` into ``workspace`` (see the module).

    ``kernels_dir`` is the Jupyter data dir's ``kernels/`` the successor's server reads.
    ``snapshot`` (an id or prefix) takes that snapshot of the environment instead: the
    latest the hub registered, which a predecessor still working in the lab under the same
    environment id cannot have overtaken.
    """
    manifest = latest_of(repo, environment_id) if not snapshot else _of(repo, snapshot)
    if manifest.get("environment_id") != environment_id:
        raise TakeOverError(f"snapshot {snapshot} is not one of {environment_id}")
    snapshot_id = str(manifest["id"])
    for earlier in records(state):
        if earlier.get("snapshot") == snapshot_id and (workspace / earlier["folder"]).is_dir():
            return TakeOver(**earlier)
    short = snapshot_id[:12]
    folder_name = f"from-{_name(predecessor)}"
    if (workspace / folder_name).exists():
        folder_name = f"{folder_name}-{short}"
    if (workspace / folder_name).exists():
        raise TakeOverError(f"{folder_name} is in the way in your workspace: move it first")
    safe_relative_path(folder_name)
    restored = workspace / KERNELS_DIR / _name(f"{predecessor}-{short}")
    if restored.exists():  # an earlier attempt cut short: its record was never written
        shutil.rmtree(restored)
    kept, left_out = _kept(manifest)
    try:
        report = restore_snapshot(repo, kept, restored, validate=False)
    except RestoreError as e:
        shutil.rmtree(restored, ignore_errors=True)
        raise TakeOverError(f"snapshot {short} could not be restored: {e}") from e
    kernels_dir.mkdir(parents=True, exist_ok=True)
    kernels = _install_kernels(restored, report.kernels, predecessor, kernels_dir)
    staged = restored / "workspace"
    staged.mkdir(exist_ok=True)
    notebooks = sorted(str(p.relative_to(staged)) for p in staged.rglob("*.ipynb"))
    analyses = [asdict(a) for a in analyse_workspace(staged, files=notebooks) if not a.error]
    facts = _as_installed(notebook_facts(manifest, analyses), kernels)
    _point_notebooks(staged, kernels)
    copied = [p for p in staged.rglob("*") if p.is_file()]
    result = TakeOver(
        environment_id=environment_id,
        predecessor=predecessor,
        snapshot=snapshot_id,
        folder=folder_name,
        start_page=f"{folder_name}/{START_PAGE}",
        kernels=list(kernels.values()),
        left_out=left_out,
        files=len(copied),
        bytes=sum(p.stat().st_size for p in copied),
    )
    steps = onboarding_checklist(environment_id, snapshot_id, facts, taken_over=True)
    (staged / START_PAGE).write_text(start_page(result, facts, steps))
    shutil.move(staged, workspace / folder_name)
    record = (state or data_dir()) / RECORD_FILE
    write_atomic(record, json.dumps([*records(state), result.to_json()], indent=1))
    return result
