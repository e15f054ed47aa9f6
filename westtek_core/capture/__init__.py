"""Capture: what a snapshot records about a researcher's environment.

Plain typed functions that *list* things — interpreters and their distributions,
kernelspecs, Jupyter config files, lab extensions, workspace files — and never store file
contents: every file comes back as a :class:`FileEntry` (absolute ``source`` + metadata)
for the snapshot layer to store. Secrets are excluded or redacted unless asked otherwise;
files whose redacted replacement must be stored instead are in ``ConfigCapture.redacted``
and ``KernelCapture.redacted``.
"""

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
