"""Capture: what a snapshot records about a researcher's environment.

Plain typed functions that *list* things — interpreters and their distributions,
kernelspecs, Jupyter config files, lab extensions, workspace files — and never store file
contents: every file comes back as a :class:`FileEntry` (absolute ``source`` + metadata)
for the snapshot layer to store. Secrets are excluded or redacted unless asked otherwise;
files whose redacted replacement must be stored instead are in ``ConfigCapture.redacted``
and ``KernelCapture.redacted``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from westtek_core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from westtek_core.capture.environment import capture_environment, workspace_exclusions
    from westtek_core.capture.interpreters import (
        ProbeError,
        capture_interpreter,
        default_interpreters,
        install_dirs,
        probe_interpreter,
    )
    from westtek_core.capture.jupyter_env import (
        capture_config,
        capture_kernels,
        capture_labextensions,
        is_lab_layout,
        is_lab_preference,
        jupyter_versions,
    )
    from westtek_core.capture.kernelspecs import kernel_interpreter
    from westtek_core.capture.model import (
        Capture,
        ConfigCapture,
        FileEntry,
        FileTree,
        InterpreterCapture,
        KernelCapture,
        SecretFinding,
        Skipped,
        TreeScan,
    )
    from westtek_core.capture.secret_rules import REDACTION_MARKER
    from westtek_core.capture.secret_scan import SecretScanner
    from westtek_core.capture.secret_text import find_secrets
    from westtek_core.capture.walk import (
        DEFAULT_IGNORES,
        PREFIX_IGNORES,
        SESSION_NOISE_IGNORES,
        WorkspaceIgnores,
        walk_tree,
    )

# Where each public name lives. They are imported on first use: importing one submodule
# (the knowledge base needs only ``secret_text``) must not load Jupyter's paths, pathspec
# and the probe machinery too (~45 ms of a cold ``westtek kb search``).
_SUBMODULE_OF = {
    "capture_environment": "environment",
    "workspace_exclusions": "environment",
    "ProbeError": "interpreters",
    "capture_interpreter": "interpreters",
    "default_interpreters": "interpreters",
    "install_dirs": "interpreters",
    "probe_interpreter": "interpreters",
    "capture_config": "jupyter_env",
    "capture_kernels": "jupyter_env",
    "capture_labextensions": "jupyter_env",
    "is_lab_layout": "jupyter_env",
    "is_lab_preference": "jupyter_env",
    "jupyter_versions": "jupyter_env",
    "kernel_interpreter": "kernelspecs",
    "Capture": "model",
    "ConfigCapture": "model",
    "FileEntry": "model",
    "FileTree": "model",
    "InterpreterCapture": "model",
    "KernelCapture": "model",
    "SecretFinding": "model",
    "Skipped": "model",
    "TreeScan": "model",
    "REDACTION_MARKER": "secret_rules",
    "SecretScanner": "secret_scan",
    "find_secrets": "secret_text",
    "DEFAULT_IGNORES": "walk",
    "PREFIX_IGNORES": "walk",
    "SESSION_NOISE_IGNORES": "walk",
    "WorkspaceIgnores": "walk",
    "walk_tree": "walk",
}


__all__ = [
    "DEFAULT_IGNORES",
    "PREFIX_IGNORES",
    "REDACTION_MARKER",
    "SESSION_NOISE_IGNORES",
    "Capture",
    "ConfigCapture",
    "FileEntry",
    "FileTree",
    "InterpreterCapture",
    "KernelCapture",
    "ProbeError",
    "SecretFinding",
    "SecretScanner",
    "WorkspaceIgnores",
    "Skipped",
    "TreeScan",
    "capture_config",
    "capture_environment",
    "capture_interpreter",
    "capture_kernels",
    "capture_labextensions",
    "default_interpreters",
    "find_secrets",
    "install_dirs",
    "is_lab_layout",
    "is_lab_preference",
    "jupyter_versions",
    "kernel_interpreter",
    "probe_interpreter",
    "walk_tree",
    "workspace_exclusions",
]


__getattr__ = lazy_exports(__name__, _SUBMODULE_OF)
