"""Jupyter's side of an environment: kernelspecs, config files, lab extensions, versions.

Locations come from ``jupyter_core.paths`` and ``jupyter_client.kernelspec`` (so
``JUPYTER_CONFIG_DIR``, ``JUPYTER_DATA_DIR``, ``JUPYTER_PATH``… are honoured as Jupyter
itself honours them); JupyterLab and the server are never imported.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_config_dir, jupyter_config_path, jupyter_path

from westtek_core.capture.kernelspecs import installed_kernelspecs, kernel_interpreter
from westtek_core.capture.model import (
    REASON_SECRET,
    REASON_UNREADABLE,
    ConfigCapture,
    FileTree,
    KernelCapture,
    SecretFinding,
    Skipped,
)
from westtek_core.capture.secret_rules import (
    REDACTION_MARKER,
    has_url_credentials,
    is_secret_name,
    redact_config,
)
from westtek_core.capture.walk import walk_tree

log = logging.getLogger(__name__)

# Distributions whose versions describe "the Jupyter" of the capturing process.
JUPYTER_DISTRIBUTIONS: tuple[str, ...] = (
    "jupyter_core",
    "jupyter_client",
    "jupyter_server",
    "jupyterlab",
    "jupyterlab_server",
    "notebook",
    "nbclassic",
    "ipykernel",
    "ipywidgets",
    "nbformat",
    "nbconvert",
    "traitlets",
    "jupyterhub",
    "jupyter_server_terminals",
    "jupyter-lsp",
    "jupyter_collaboration",
)

# What of a Jupyter config directory is configuration (gitignore patterns, relative to
# it): config files, their ``*.d/`` drop-in directories, front-end config, JupyterLab user
# settings and workspaces. Everything else there (runtime files, caches…) is left out.
# Subdirectories of a config directory that are configuration throughout.
CONFIG_SUBDIRS: tuple[str, ...] = ("nbconfig", "labconfig", "serverconfig", "custom")
CONFIG_SELECTION: tuple[str, ...] = (
    "/*",
    "!/jupyter*_config.py",
    "!/jupyter*_config.json",
    "!/*.d/",
    *(f"!/{name}/" for name in CONFIG_SUBDIRS),
    "!/lab/",
    "/lab/*",
    "!/lab/user-settings/",
    "__pycache__/",
)
LAB_APP_SETTINGS_SELECTION: tuple[str, ...] = ("/*", "!/*.json", "!/*.json5")


def is_config_subdir(name: str) -> bool:
    """Whether a config directory's subdirectory ``name`` holds configuration throughout."""
    return name.endswith(".d") or name in CONFIG_SUBDIRS


def is_lab_layout(path: str) -> bool:
    """Whether a path in a config dir is JupyterLab's layout autosave, not configuration.

    Snapshots made before this rule hold ``lab/workspaces/`` files: drift and rollback
    pass over them.
    """
    return "/lab/workspaces/" in f"/{path}"


def is_lab_preference(path: str) -> bool:
    """Whether a path in a config dir is a JupyterLab user setting (theme, shortcuts…).

    Those shape the interface, never what a notebook computes: captured and restored like
    any config, but no drift.
    """
    return "/lab/user-settings/" in f"/{path}"


_REDACTABLE_SUFFIXES = (".py", ".json", ".jupyterlab-settings", ".jupyterlab-workspace")


def jupyter_versions() -> dict[str, str | None]:
    """Versions of the Jupyter distributions importable here (None when not installed)."""
    versions: dict[str, str | None] = {}
    for name in JUPYTER_DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _redact_kernel_env(spec: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Replace the secret ``env`` values of a kernelspec; return it and their names.

    Secret: a value under a secret-looking name, or a URL with a password in it
    (``DATABASE_URL=postgresql://u:pw@host/db``).
    """
    env = spec.get("env")
    if not isinstance(env, dict):
        return spec, []
    names = [
        k
        for k, v in env.items()
        if isinstance(v, str) and v and (is_secret_name(str(k)) or has_url_credentials(v))
    ]
    if not names:
        return spec, []
    new_env = {k: (REDACTION_MARKER if k in names else v) for k, v in env.items()}
    return {**spec, "env": new_env}, names


def capture_kernels(*, include_secrets: bool = False) -> list[KernelCapture]:
    """Capture every installed kernelspec: its spec, resource files and interpreter.

    Secret ``env`` values of ``kernel.json`` (secret-named, or URLs with a password) are
    redacted (in ``spec`` and in the ``redacted`` replacement content) unless
    ``include_secrets``.
    """
    captures: list[KernelCapture] = []
    for name, (resource_dir, spec) in installed_kernelspecs().items():
        python = kernel_interpreter(spec.get("argv") or [])
        if python is not None and not os.path.exists(python):
            log.warning("kernel %s: interpreter %s does not exist", name, python)
            python = None
        tree, _ = walk_tree(
            Path(resource_dir),
            ignore_file=None,
            default_ignores=("__pycache__/",),
            detect_secrets=False,
        )
        redacted: dict[str, bytes] = {}
        secrets: list[SecretFinding] = []
        if not include_secrets:
            spec, names = _redact_kernel_env(spec)
            if names:
                redacted["kernel.json"] = (json.dumps(spec, indent=1) + "\n").encode()
                kind = "kernel-env"
                secrets = [
                    SecretFinding(f"kernel:{name}", "kernel.json", kind, "redacted", f"env.{n}")
                    for n in names
                ]
        captures.append(
            KernelCapture(
                name=name,
                spec=spec,
                resource_dir=resource_dir,
                interpreter=python,
                tree=tree,
                redacted=redacted,
                secrets=secrets,
            )
        )
    return captures


def _redact_tree(
    tree: FileTree, area: str, include_secrets: bool
) -> tuple[dict[str, bytes], list[SecretFinding]]:
    """Redact every config-like file of ``tree``; files that cannot be redacted are dropped."""
    redacted: dict[str, bytes] = {}
    findings: list[SecretFinding] = []
    if include_secrets:
        return redacted, findings
    kept = []
    for entry in tree.entries:
        if entry.kind != "file" or not entry.path.endswith(_REDACTABLE_SUFFIXES):
            kept.append(entry)
            continue
        try:
            data = Path(entry.source).read_bytes()
        except OSError as exc:
            tree.skipped.append(Skipped(entry.path, REASON_UNREADABLE, str(exc)))
            continue
        result = redact_config(entry.path, data)
        if result is None:
            findings.append(SecretFinding(area, entry.path, "unparsable-secret", "excluded"))
            tree.skipped.append(Skipped(entry.path, REASON_SECRET, "cannot redact"))
            continue
        content, found = result
        if found:
            redacted[entry.path] = content
            findings.extend(
                SecretFinding(area, entry.path, r.kind, "redacted", r.setting) for r in found
            )
        kept.append(entry)
    tree.entries = kept
    tree.skipped.sort(key=lambda s: s.path)
    return redacted, findings


def _config_capture(
    directory: str, selection: tuple[str, ...], role: str, include_secrets: bool
) -> ConfigCapture:
    tree, _ = walk_tree(
        Path(directory), ignore_file=None, default_ignores=selection, detect_secrets=False
    )
    area = f"config:{directory}"
    redacted, findings = _redact_tree(tree, area, include_secrets)
    return ConfigCapture(dir=directory, tree=tree, redacted=redacted, role=role, secrets=findings)


def lab_app_dir() -> str:
    """JupyterLab's application directory, as ``jupyterlab.commands.get_app_dir`` finds it."""
    env = os.environ.get("JUPYTERLAB_DIR")
    if env:
        return str(Path(env).resolve())
    return os.path.join(sys.prefix, "share", "jupyter", "lab")


def capture_config(*, include_secrets: bool = False) -> list[ConfigCapture]:
    """Capture the Jupyter configuration of every ``jupyter_config_path()`` directory.

    Per directory: ``jupyter*_config.py``/``.json``, the ``*.d/`` drop-in directories,
    ``nbconfig/``, ``labconfig/``, ``serverconfig/``, ``custom/``, and JupyterLab's
    ``lab/user-settings/``. Also JupyterLab's application settings (``overrides.json``…)
    and user settings moved elsewhere by ``JUPYTERLAB_SETTINGS_DIR``. JupyterLab's
    workspaces (``lab/workspaces/``) are left out: they are its layout, autosaved as the
    researcher works, not configuration. Secret values are redacted unless
    ``include_secrets``.
    """
    captures: list[ConfigCapture] = []
    seen: set[str] = set()

    def add(directory: str, selection: tuple[str, ...], role: str) -> None:
        real = os.path.realpath(directory)
        if real in seen or not os.path.isdir(directory):
            return
        seen.add(real)
        captures.append(_config_capture(directory, selection, role, include_secrets))

    for directory in jupyter_config_path():
        add(os.path.abspath(directory), CONFIG_SELECTION, "config")
    user_lab = os.path.join(os.path.realpath(jupyter_config_dir()), "lab")
    moved = os.environ.get("JUPYTERLAB_SETTINGS_DIR")
    if moved and not os.path.realpath(moved).startswith(user_lab + os.sep):
        add(os.path.abspath(moved), ("__pycache__/",), "lab-user-settings")
    add(os.path.join(lab_app_dir(), "settings"), LAB_APP_SETTINGS_SELECTION, "lab-app-settings")
    return captures


def _load_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _merge(target: dict[str, Any], new: dict[str, Any]) -> None:
    """``recursive_update`` of jupyter_server's config manager (None deletes a key)."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif value is None:
            target.pop(key, None)
        else:
            target[key] = value


def disabled_extensions() -> dict[str, bool]:
    """The merged ``disabledExtensions`` of every ``labconfig/page_config.json``.

    Read like JupyterLab's page config: system dirs first, user last; ``page_config.d/``
    drop-ins before ``page_config.json``; a list means "all of these disabled".
    """
    merged: dict[str, Any] = {}
    for directory in reversed(jupyter_config_path()):
        labconfig = os.path.join(directory, "labconfig")
        drop_in = os.path.join(labconfig, "page_config.d")
        paths = []
        if os.path.isdir(drop_in):
            paths = sorted(
                os.path.join(drop_in, n) for n in os.listdir(drop_in) if n.endswith(".json")
            )
        for path in [*paths, os.path.join(labconfig, "page_config.json")]:
            data = _load_json(path)
            if data is None:
                continue
            disabled = data.get("disabledExtensions")
            if isinstance(disabled, list):
                data = {**data, "disabledExtensions": {str(n): True for n in disabled}}
            _merge(merged, data)
    disabled = merged.get("disabledExtensions")
    if not isinstance(disabled, dict):
        return {}
    return {str(k): bool(v) for k, v in disabled.items()}


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _extension_dirs(labextensions: str) -> list[str]:
    """Extension directories of a ``labextensions`` dir: ``name/`` and ``@scope/name/``."""
    found: list[str] = []
    try:
        names = sorted(os.listdir(labextensions))
    except OSError:
        return found
    for name in names:
        path = os.path.join(labextensions, name)
        if name.startswith("@") and os.path.isdir(path):
            found.extend(
                os.path.join(path, sub)
                for sub in sorted(os.listdir(path))
                if os.path.isfile(os.path.join(path, sub, "package.json"))
            )
        elif os.path.isfile(os.path.join(path, "package.json")):
            found.append(path)
    return found


def capture_labextensions() -> list[dict[str, Any]]:
    """List the prebuilt lab extensions of every ``labextensions`` data directory.

    Each: ``name``, ``version``, ``source_dir``, ``data_dir``, ``linked_to`` (the target
    of a ``--develop`` symlink), ``install`` (install.json: which Python package installed
    it), ``extension``/``mime_extension`` (what it provides), ``disabled`` (from the merged
    page config; extension-level), ``disabled_plugins``, and ``shadowed`` (a same-named
    extension in an earlier data dir wins, as in JupyterLab).
    """
    disabled = disabled_extensions()
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for data_dir in jupyter_path("labextensions"):
        for ext_dir in _extension_dirs(data_dir):
            package = _load_json(os.path.join(ext_dir, "package.json"))
            if package is None:
                log.warning("lab extension %s: unreadable package.json", ext_dir)
                continue
            name = str(package.get("name") or os.path.basename(ext_dir))
            lab = _as_dict(package.get("jupyterlab"))
            build = _as_dict(lab.get("_build"))
            result.append(
                {
                    "name": name,
                    "version": package.get("version"),
                    "source_dir": ext_dir,
                    "data_dir": data_dir,
                    "linked_to": os.path.realpath(ext_dir) if os.path.islink(ext_dir) else None,
                    "install": _load_json(os.path.join(ext_dir, "install.json")),
                    "extension": bool(build.get("extension") or lab.get("extension")),
                    "mime_extension": bool(build.get("mimeExtension") or lab.get("mimeExtension")),
                    "disabled": disabled.get(name, False),
                    "disabled_plugins": sorted(
                        key
                        for key, value in disabled.items()
                        if value and key.startswith(f"{name}:")
                    ),
                    "shadowed": name in seen,
                }
            )
            seen.add(name)
    return result
