"""Installed kernelspecs and the Python interpreter each one runs."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

_PYTHON_NAME_RE = re.compile(r"^(python|pypy)(\d+(\.\d+)?)?w?(\.exe)?$")


# jupyter_client's rules (kernelspec.py): a kernel is a directory holding kernel.json, named
# by its lower-cased directory name; the native kernel is ipykernel's, when not installed.
_NATIVE_KERNEL_NAME = "python3"


def _kernel_dirs() -> list[str]:
    """Where jupyter_client's ``KernelSpecManager`` looks, first wins (``kernel_dirs``)."""
    from jupyter_core.paths import jupyter_path

    dirs = jupyter_path("kernels")
    if importlib.util.find_spec("IPython") is not None:
        # IPython.paths.get_ipython_dir() without importing IPython (~0.1 s)
        ipython_dir = os.environ.get("IPYTHONDIR") or os.path.join(
            os.path.expanduser("~"), ".ipython"
        )
        dirs.append(os.path.join(ipython_dir, "kernels"))
    return dirs


def _find_kernel_specs() -> dict[str, str]:
    """Kernel name → resource directory, as ``KernelSpecManager().find_kernel_specs()``.

    Listed here rather than through jupyter_client, which pulls in zmq and asyncio (~0.25 s,
    on every snapshot and drift check).
    """
    found: dict[str, str] = {}
    for kernel_dir in _kernel_dirs():
        try:
            names = os.listdir(kernel_dir)
        except OSError:
            continue
        for name in names:
            path = os.path.join(kernel_dir, name)
            if os.path.isfile(os.path.join(path, "kernel.json")):
                found.setdefault(name.lower(), path)
    if _NATIVE_KERNEL_NAME not in found:
        spec = importlib.util.find_spec("ipykernel")
        if spec is not None and spec.origin:
            found[_NATIVE_KERNEL_NAME] = os.path.join(os.path.dirname(spec.origin), "resources")
    return found


def installed_kernelspecs() -> dict[str, tuple[str, dict[str, Any]]]:
    """Map each installed kernel name to ``(resource_dir, kernel.json content)``, sorted."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, resource_dir in sorted(_find_kernel_specs().items()):
        spec: dict[str, Any] | None = None
        try:
            with open(os.path.join(resource_dir, "kernel.json"), encoding="utf-8") as f:
                loaded = json.load(f)
            spec = loaded if isinstance(loaded, dict) else None
        except FileNotFoundError:
            # The native kernel of ipykernel has no kernel.json: jupyter_client builds it.
            try:
                from jupyter_client.kernelspec import KernelSpecManager

                spec = KernelSpecManager().get_kernel_spec(name).to_dict()
            except Exception as exc:  # noqa: BLE001 - any failure means "unusable spec"
                log.warning("kernel %s: cannot load its spec: %s", name, exc)
        except (OSError, ValueError) as exc:
            log.warning("kernel %s: unreadable kernel.json: %s", name, exc)
        if spec is not None:
            found[name] = (resource_dir, spec)
    return found


def kernel_interpreter(argv: Sequence[str]) -> str | None:
    """Return the Python a kernel command line runs, or None when it is not a Python.

    ``python``, ``python3`` and ``python3.N`` of the running version become
    ``sys.executable``, exactly as ``jupyter_client`` does when it launches the kernel;
    other bare names are looked up on ``PATH``. The result may not exist.
    """
    if not argv:
        return None
    first = argv[0]
    if not _PYTHON_NAME_RE.match(os.path.basename(first)):
        return None
    vi = sys.version_info
    if first in {"python", f"python{vi[0]}", f"python{vi[0]}.{vi[1]}"} and sys.executable:
        return sys.executable
    if os.sep in first:
        return os.path.abspath(first)
    return shutil.which(first) or first
