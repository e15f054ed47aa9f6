"""A restored interpreter: checking that it imports what it should, or rebuilding it.

``validate_interpreter`` imports every top-level module of every distribution in the
restored interpreter (in a clean subprocess) and runs ``pip check``; ``rebuild_environment``
makes a fresh venv and installs the captured versions, for ``restore --mode lock``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


class RestoreError(Exception):
    """A restore that cannot start (non-empty target, unsafe manifest…); one clear line."""


_IMPORT_CHECK = """
import importlib, json, sys
failed = {}
for name in json.load(sys.stdin):
    try:
        importlib.import_module(name)
    except BaseException as e:  # a module may raise anything, SystemExit included
        failed[name] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(failed))
"""


def _importable_names(interp: Mapping[str, Any]) -> list[str]:
    names = {
        name
        for package in interp.get("packages", [])
        for name in package.get("top_level", [])
        if name.isidentifier() and not name.startswith("__")
    }
    return sorted(names)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # validating must not change the restored tree
    return env


def _import_in_subprocess(
    python: Path, names: list[str], timeout: float, cwd: str
) -> dict[str, str]:
    try:
        done = subprocess.run(
            [str(python), "-I", "-c", _IMPORT_CHECK],
            input=json.dumps(names),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=_clean_env(),
        )
        lines = done.stdout.strip().splitlines()
        failed: dict[str, str] = json.loads(lines[-1]) if lines else {}
        if done.returncode != 0 and not failed:
            failed = {name: done.stderr.strip()[-500:] for name in names}
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError) as e:
        failed = {name: str(e) for name in names}
    return failed


def validate_interpreter(
    python: Path, interp: Mapping[str, Any], timeout: float = 900
) -> dict[str, Any]:
    """Import every top-level module of every distribution, then run ``pip check``.

    All modules are imported in one process for speed; one that fails there is retried
    alone, since some packages cannot be imported after others (setuptools after
    ``_distutils_hack``, say), and then in the original interpreter when it still exists:
    only a module that imports there but not here is the restore's fault.
    """
    names = _importable_names(interp)
    result: dict[str, Any] = {"interpreter": str(python), "modules": len(names)}
    with tempfile.TemporaryDirectory() as scratch:
        failed = _import_in_subprocess(python, names, timeout, scratch)
        for name in list(failed):
            if not _import_in_subprocess(python, [name], timeout, scratch):
                del failed[name]
        # a module that never imported in the captured environment either (an optional
        # dependency missing there) is a fact about that environment, not a restore fault
        original = Path(str(interp.get("executable") or ""))
        known: dict[str, str] = {}
        if failed and original.is_file() and original != python:
            for name in list(failed):
                if _import_in_subprocess(original, [name], timeout, scratch):
                    known[name] = failed.pop(name)
        result["import_failures"] = failed
        result["failing_in_original_too"] = known
        pip_ok = True
        if any(p["name"].lower() == "pip" for p in interp.get("packages", [])):
            check = subprocess.run(
                [str(python), "-I", "-m", "pip", "check", "--disable-pip-version-check"],
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=scratch,
                env=_clean_env(),
            )
            pip_ok = check.returncode == 0
            result["pip_check"] = check.stdout.strip()
    result["ok"] = not failed and pip_ok
    return result


def find_python(version_info: Sequence[Any]) -> str:
    """An interpreter of the same major.minor version on PATH, for a lock restore."""
    wanted = f"python{version_info[0]}.{version_info[1]}"
    found = shutil.which(wanted)
    if found:
        return found
    raise RestoreError(
        f"restore --mode lock needs {wanted} on PATH to rebuild the environment; install it "
        "or restore with --mode files"
    )


def rebuild_environment(manifest: Mapping[str, Any], index: int, prefix: Path) -> None:
    """Create a venv at ``prefix`` and install every distribution at its captured version."""
    from westtek_core.snapshot.export import export_requirements

    interp = manifest["interpreters"][index]
    python = find_python(interp.get("version_info") or [3, 0])
    subprocess.run([python, "-m", "venv", str(prefix)], check=True, capture_output=True)
    requirements = prefix / "westtek-requirements.txt"
    requirements.write_text(export_requirements(manifest, index))
    done = subprocess.run(
        [
            str(prefix / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--disable-pip-version-check",
            "-r",
            str(requirements),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise RestoreError(f"pip could not install the locked packages into {prefix}: {last}")
