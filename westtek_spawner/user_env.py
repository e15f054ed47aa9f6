"""Each local user's own kernel environment, layered over the suite's packages.

On the local backend every server runs from the hub's interpreter. Were its kernels and
terminals to use that interpreter too, one user's ``pip install`` would change every other
user's packages and the hub's own. Instead each user gets ``~/.venv`` on first spawn:

- a venv without packages of its own, whose site-packages holds one ``.pth`` line adding
  the hub's site-packages as a site directory (so its own ``.pth`` files, an editable
  install's among them, are read too): JupyterLab, ipykernel and West Tek import from
  there (created in a fraction of a second: nothing is copied or installed);
- what the user installs lands in the venv, ahead of the suite's copy on ``sys.path``; pip
  refuses to remove what lies outside the venv, so the hub's packages cannot be broken;
- ``pip``, ``pip3`` and ``westtek`` in its ``bin/`` run with the venv's interpreter;
- the default ``python3`` kernelspec in the user's Jupyter data dir runs it;
- a login bash (``~/.bash_profile``) puts it first on PATH.

Nothing that exists already is overwritten: a user's own profile or kernelspec stays.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

VENV_NAME = ".venv"
KERNEL_NAME = "python3"
LAYER_FILE = "westtek-suite.pth"

# commands in the venv's bin/ that run a module with the venv's interpreter
_COMMANDS = {"pip": "pip", "pip3": "pip", "westtek": "westtek_core"}

_PROFILE = """\
# Written by West Tek on your first spawn: your own kernel environment comes first on PATH,
# so `pip install` changes your packages only (never another user's or the hub's).
[ -f ~/.bashrc ] && . ~/.bashrc
export VIRTUAL_ENV="$HOME/{venv}"
export PATH="$HOME/{venv}/bin:{suite_bin}:$PATH"
"""


# the layout of a venv's directories (3.11+; before, a venv's purelib followed posix_prefix)
_VENV_SCHEME = "venv" if "venv" in sysconfig.get_scheme_names() else "posix_prefix"


def _site_packages(python: Path) -> Path:
    output = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(output.strip())


def _is_running(python: str) -> bool:
    return os.path.abspath(python) == os.path.abspath(sys.executable)


def _venv_site_packages(venv: Path, suite_python: str) -> Path:
    """The site-packages of ``venv``, made by ``suite_python``.

    Derived from this interpreter's own sysconfig when it is ``suite_python`` (as on every
    spawn): a spawn then starts no process. Another interpreter is asked.
    """
    if not _is_running(suite_python):
        return _site_packages(venv / "bin" / "python")
    paths = {"base": str(venv), "platbase": str(venv)}
    return Path(sysconfig.get_path("purelib", _VENV_SCHEME, vars=paths))


def _suite_site_packages(suite_python: str) -> Path:
    if _is_running(suite_python):
        return Path(sysconfig.get_path("purelib"))
    return _site_packages(Path(suite_python))


def user_python(home: Path) -> Path:
    """The interpreter of the user's own environment in ``home``."""
    return home / VENV_NAME / "bin" / "python"


def ensure_user_env(home: Path, suite_python: str = sys.executable) -> Path:
    """Create (once) ``home/.venv`` layered over ``suite_python``'s packages; its python.

    Also registers it as the user's default kernel and writes a login profile that puts it
    first on PATH, unless the user has their own.
    """
    venv = home / VENV_NAME
    python = user_python(home)
    if not python.exists():
        subprocess.run(
            [suite_python, "-m", "venv", "--without-pip", str(venv)],
            check=True,
            capture_output=True,
        )
    layer = _venv_site_packages(venv, suite_python) / LAYER_FILE
    # a bare path line would not read the .pth files there; an `import` line runs
    layering = f"import site; site.addsitedir({str(_suite_site_packages(suite_python))!r})\n"
    if not layer.exists() or layer.read_text() != layering:
        layer.write_text(layering)
    for command, module in _COMMANDS.items():
        script = venv / "bin" / command
        if not script.exists():
            script.write_text(f'#!/bin/sh\nexec "$(dirname "$0")/python" -m {module} "$@"\n')
            script.chmod(0o755)
    kernel = home / ".local" / "share" / "jupyter" / "kernels" / KERNEL_NAME / "kernel.json"
    if not kernel.exists():
        kernel.parent.mkdir(parents=True, exist_ok=True)
        spec = {
            "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (your environment)",
            "language": "python",
            "metadata": {"debugger": True},
        }
        kernel.write_text(json.dumps(spec, indent=1) + "\n")
    profile = home / ".bash_profile"
    if not profile.exists():
        suite_bin = os.path.dirname(suite_python)
        profile.write_text(_PROFILE.format(venv=VENV_NAME, suite_bin=suite_bin))
    return python


def user_env_vars(home: Path, path: str) -> dict[str, str]:
    """What a server's environment needs so its terminals and subprocesses use the venv."""
    venv = home / VENV_NAME
    return {
        "VIRTUAL_ENV": str(venv),
        "PATH": os.pathsep.join([str(venv / "bin"), path]) if path else str(venv / "bin"),
        # the user's kernelspec before the hub venv's own `python3` (jupyter_core prefers
        # the running venv's share/jupyter otherwise)
        "JUPYTER_PREFER_ENV_PATH": "0",
    }
