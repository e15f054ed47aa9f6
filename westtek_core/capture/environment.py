"""Capture a whole environment: interpreters, kernels, Jupyter config, extensions, workspace."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_dir, jupyter_runtime_dir

from westtek_core.capture.interpreters import ProbeError, capture_interpreter, default_interpreters
from westtek_core.capture.jupyter_env import (
    capture_config,
    capture_kernels,
    capture_labextensions,
    jupyter_versions,
)
from westtek_core.capture.model import (
    REASON_REDACTED_ELSEWHERE,
    Capture,
    ConfigCapture,
    FileTree,
    InterpreterCapture,
    KernelCapture,
    SecretFinding,
    Skipped,
)
from westtek_core.capture.secret_rules import DEFAULT_CREDENTIAL_LOCATIONS
from westtek_core.capture.secret_scan import SecretScanner
from westtek_core.capture.walk import walk_tree
from westtek_core.paths import is_within, own_state_dirs

log = logging.getLogger(__name__)


def _drop_redacted(tree: FileTree, redacted_sources: dict[str, str], include_secrets: bool) -> None:
    """Remove from ``tree`` the files whose redacted version another area stores.

    A venv's ``etc/jupyter/jupyter_server_config.py`` is both in the prefix and in the
    config capture; only the redacted copy may reach the store.
    """
    if include_secrets or not redacted_sources:
        return
    kept = []
    for entry in tree.entries:
        where = redacted_sources.get(os.path.realpath(entry.source))
        if where is not None and entry.kind == "file":
            tree.skipped.append(Skipped(entry.path, REASON_REDACTED_ELSEWHERE, where))
        else:
            kept.append(entry)
    tree.entries = kept
    tree.skipped.sort(key=lambda s: s.path)


def _redacted_sources(config: list[ConfigCapture], kernels: list[KernelCapture]) -> dict[str, str]:
    """Map the real path of every file stored redacted to the area that stores it."""
    sources: dict[str, str] = {}
    for cfg in config:
        for path in cfg.redacted:
            sources[os.path.realpath(cfg.tree.root / path)] = f"config:{cfg.dir}"
    for kernel in kernels:
        for path in kernel.redacted:
            sources[os.path.realpath(kernel.tree.root / path)] = f"kernel:{kernel.name}"
    return sources


def workspace_exclusions(
    root: Path, interpreter_infos: Sequence[Mapping[str, Any]], extra: Sequence[Path] = ()
) -> list[Path]:
    """Directories inside ``root`` that are never its data, whatever the ignore files say.

    Captured venvs' and conda envs' prefixes (captured as those interpreters), the user's
    Jupyter config directory (captured as config: in a home workspace its files were listed
    twice, as data and as config), the Jupyter runtime directory (connection files hold
    kernel keys), West Tek's own state (:func:`westtek_core.paths.own_state_dirs`) and
    ``extra``.
    """
    root_abs = os.path.abspath(root)
    left_out = [os.path.abspath(p) for p in extra]
    left_out.append(os.path.abspath(jupyter_config_dir()))
    left_out.append(os.path.abspath(jupyter_runtime_dir()))
    left_out.extend(os.path.abspath(p) for p in own_state_dirs())
    for info in interpreter_infos:
        if info.get("is_venv") or info.get("is_conda"):
            left_out.append(os.path.abspath(str(info["prefix"])))
    return sorted({Path(p) for p in left_out if is_within(p, root_abs) and p != root_abs})


def capture_environment(
    pythons: Sequence[str] | None,
    root: Path,
    *,
    include_secrets: bool = False,
    secret_scanner: SecretScanner | None = None,
    exclude: Sequence[Path] = (),
    probe_timeout: float = 60,
    walk_prefixes: bool = True,
) -> Capture:
    """Capture everything a snapshot records, without storing any content.

    ``pythons`` are the interpreters to capture (None: :func:`default_interpreters`; an
    explicitly named one that cannot be probed raises :class:`ProbeError`, a default one
    becomes a warning). ``root`` is the workspace. ``exclude`` lists more directories to
    leave out of the workspace (e.g. a local snapshot store inside it); the prefixes of
    captured venvs and the Jupyter runtime directory (connection files hold kernel keys)
    are always left out. ``include_secrets`` turns off secret exclusion and redaction;
    otherwise ``secret_scanner`` (default: one with the default settings) names the
    credential locations left out, and scans the workspace files' contents when a
    snapshot stores them (``Capture.secret_scanner``). ``walk_prefixes=False`` skips
    listing the environments' files (drift needs only their packages, which the probe
    reports).
    """
    explicit = pythons is not None
    chosen = list(pythons) if pythons is not None else default_interpreters()
    warnings: list[str] = []
    interpreters: list[InterpreterCapture] = []
    with ThreadPoolExecutor(max_workers=min(4, max(1, len(chosen)))) as pool:
        futures = [
            pool.submit(capture_interpreter, python, timeout=probe_timeout, walk=walk_prefixes)
            for python in chosen
        ]
        for future in futures:
            try:
                interpreters.append(future.result())
            except ProbeError as exc:
                if explicit:
                    raise
                log.warning("%s", exc)
                warnings.append(str(exc))

    kernels = capture_kernels(include_secrets=include_secrets)
    config = capture_config(include_secrets=include_secrets)
    secrets: list[SecretFinding] = []
    for kernel in kernels:
        secrets.extend(kernel.secrets)
    for cfg in config:
        secrets.extend(cfg.secrets)

    scanner = None if include_secrets else (secret_scanner or SecretScanner())
    root_abs = os.path.abspath(root)
    workspace, found = walk_tree(
        Path(root_abs),
        detect_secrets=scanner is not None,
        credential_locations=scanner.locations if scanner else DEFAULT_CREDENTIAL_LOCATIONS,
        exclude=workspace_exclusions(Path(root_abs), [i.info for i in interpreters], extra=exclude),
    )
    secrets.extend(found)

    redacted = _redacted_sources(config, kernels)
    for interp in interpreters:
        if interp.prefix_tree is not None:
            _drop_redacted(interp.prefix_tree, redacted, include_secrets)
    _drop_redacted(workspace, redacted, include_secrets)

    return Capture(
        interpreters=interpreters,
        kernels=kernels,
        jupyter=dict(jupyter_versions()),
        config=config,
        labextensions=capture_labextensions(),
        workspace=workspace,
        secrets=secrets,
        warnings=warnings,
        secret_scanner=scanner,
    )
