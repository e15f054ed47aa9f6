"""Python interpreters: which ones to capture, probing them, and their prefixes' files."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from westtek_core.capture import probe as probe_module
from westtek_core.capture.kernelspecs import installed_kernelspecs, kernel_interpreter
from westtek_core.capture.model import FileTree, InterpreterCapture
from westtek_core.capture.probe_cache import ProbeCache
from westtek_core.capture.walk import CONDA_BASE_IGNORES, PREFIX_IGNORES, walk_tree

log = logging.getLogger(__name__)

PROBE_SCRIPT = Path(probe_module.__file__).resolve()


class ProbeError(RuntimeError):
    """An interpreter could not be probed (missing, not Python, crashed, timed out)."""


def _run_probe(
    python: str,
    timeout: float,
    known: dict[str, list[int]] | None,
    started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> dict[str, Any]:
    """Run the probe script in ``python``; ``started`` is handed the process (to stop it)."""
    cmd = [python, "-E", str(PROBE_SCRIPT)]
    if known:
        cmd.append("--reuse")
    pipe = subprocess.PIPE
    try:
        proc = subprocess.Popen(  # noqa: S603 - the interpreter is the user's own choice
            cmd, stdin=pipe, stdout=pipe, stderr=pipe
        )
    except FileNotFoundError as exc:
        raise ProbeError(f"interpreter not found: {python}") from exc
    except PermissionError as exc:
        raise ProbeError(f"interpreter not executable: {python}") from exc
    with proc:  # waits for it on the way out: no zombie
        if started is not None:
            started(proc)
        try:
            stdout, stderr = proc.communicate(json.dumps(known).encode() if known else b"", timeout)
        except subprocess.TimeoutExpired as exc:
            raise ProbeError(f"probing {python} timed out after {timeout:g} s") from exc
        finally:
            if proc.poll() is None:
                proc.kill()
    if proc.returncode != 0:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise ProbeError(
            f"probing {python} failed (exit {proc.returncode}): {' | '.join(tail) or 'no output'}"
        )
    try:
        info = json.loads(stdout)
    except ValueError as exc:
        raise ProbeError(f"probing {python} printed no valid JSON: {exc}") from exc
    if not isinstance(info, dict) or info.get("probe_version") != probe_module.PROBE_VERSION:
        raise ProbeError(f"probing {python} returned an unexpected report")
    return info


def probe_interpreter(python: str, timeout: float = 60) -> dict[str, Any]:
    """Run the probe script in ``python`` and return its report.

    The interpreter runs ``probe.py`` by path with ``-E`` (ignore ``PYTHON*`` variables
    such as ``PYTHONPATH``, which are session state, not the environment) but *with* user
    site-packages, which a kernel started from that interpreter would also see. Nothing of
    westtek is imported there. Distributions whose metadata is unchanged since the last
    probe of ``python`` are not read again (:class:`ProbeCache`).
    """
    started = _started.pop(python, None)
    if started is not None:
        return started.report()
    return _probe_now(python, timeout)


def _probe_now(
    python: str,
    timeout: float,
    started: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> dict[str, Any]:
    cache = ProbeCache(python)
    return cache.complete(_run_probe(python, timeout, cache.known(), started))


class _StartedProbe:
    """A probe running in a thread of its own, started by :func:`probing_ahead`."""

    def __init__(self, python: str, timeout: float) -> None:
        self._outcome: dict[str, Any] | Exception = ProbeError(f"probing {python} did not end")
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._dropped = False
        self._thread = threading.Thread(
            target=self._run, args=(python, timeout), name="westtek-probe", daemon=True
        )
        self._thread.start()

    def _run(self, python: str, timeout: float) -> None:
        try:
            self._outcome = _probe_now(python, timeout, self._started)
        except Exception as exc:  # raised to whoever takes the report
            self._outcome = exc

    def _started(self, process: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._process = process
            if self._dropped:  # dropped before its process had started
                process.kill()

    def report(self) -> dict[str, Any]:
        """The probe's report once it has ended (its error raised)."""
        self._thread.join()
        if isinstance(self._outcome, Exception):
            raise self._outcome
        return self._outcome

    def drop(self) -> None:
        """Stop the probe, its report unwanted; returns once its process is reaped."""
        with self._lock:
            self._dropped = True
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
        self._thread.join()


# Probes started ahead of need (probing_ahead), by interpreter as named: each taken once.
_started: dict[str, _StartedProbe] = {}


@contextlib.contextmanager
def probing_ahead(pythons: Iterable[str], timeout: float = 60) -> Iterator[None]:
    """Probe ``pythons`` in the background, for :func:`probe_interpreter` within the block.

    For a command that knows its interpreters before it has imported what compares them
    (``westtek drift``): the probes' subprocesses run while those imports do. Probes whose
    reports were not taken are stopped when the block ends, so none is taken stale later
    and none runs on unwanted.
    """
    started = {python: _StartedProbe(python, timeout) for python in pythons}
    _started.update(started)
    try:
        yield
    finally:
        for python, probe in started.items():
            if _started.get(python) is probe:
                del _started[python]
                probe.drop()


def install_dirs(info: Mapping[str, Any]) -> list[str]:
    """Where installing into a probed interpreter writes, whether or not it exists yet.

    Its site-packages, its user site (``pip install --user``), every site-packages a
    distribution it imports lies in (a venv layered over another through a ``.pth``) and,
    for a conda environment, ``conda-meta`` (conda packages with no Python files).
    """
    paths = info.get("paths") or {}
    dirs = {str(paths[k]) for k in ("purelib", "platlib") if paths.get(k)}
    if info.get("user_site"):
        dirs.add(str(info["user_site"]))
    dirs.update(
        str(d["location"])
        for d in info.get("distributions") or []
        if str(d.get("location") or "").endswith(("site-packages", "dist-packages"))
    )
    if info.get("is_conda") and info.get("prefix"):
        dirs.add(os.path.join(str(info["prefix"]), "conda-meta"))
    return sorted(dirs)


def prefix_key(python: str) -> str:
    """Identify an interpreter's environment without running it: its prefix, resolved.

    ``…/bin/python`` belongs to ``…``; the executable itself is not resolved, because a
    venv's ``python`` is a symlink to its base interpreter.
    """
    absolute = os.path.abspath(python)
    return os.path.realpath(os.path.dirname(os.path.dirname(absolute)))


def default_interpreters() -> list[str]:
    """Every installed kernelspec's Python interpreter, then ``sys.executable``.

    Deduplicated by :func:`prefix_key` (first one wins); interpreters that do not exist
    are dropped with a warning.
    """
    candidates: list[str] = []
    for name, (_, spec) in installed_kernelspecs().items():
        python = kernel_interpreter(spec.get("argv") or [])
        if python is None:
            continue
        if not os.path.exists(python):
            log.warning("kernel %s: interpreter %s does not exist; not captured", name, python)
            continue
        candidates.append(python)
    if sys.executable:
        candidates.append(sys.executable)
    seen: set[str] = set()
    result: list[str] = []
    for python in candidates:
        key = prefix_key(python)
        if key not in seen:
            seen.add(key)
            result.append(python)
    return result


def _prefix_walk_plan(prefix: Path, is_venv: bool, is_conda: bool) -> tuple[str, ...] | None:
    """The ignores to walk a prefix with, or None when it is a base interpreter (not walked)."""
    if not (is_venv or is_conda):
        return None
    conda_base = is_conda and not is_venv and (prefix / "pkgs").is_dir()
    return tuple(CONDA_BASE_IGNORES if conda_base else PREFIX_IGNORES)


def _walk_prefix(prefix: Path, ignores: tuple[str, ...]) -> FileTree:
    tree, _ = walk_tree(prefix, ignore_file=None, default_ignores=ignores, detect_secrets=False)
    return tree


def capture_interpreter(
    python: str, *, timeout: float = 60, walk: bool = True
) -> InterpreterCapture:
    """Probe ``python`` and, when it is a venv or conda env, list its prefix's files.

    The probe (a subprocess) and the walk overlap: the prefix is guessed from the layout
    (``<prefix>/bin/python`` beside ``pyvenv.cfg`` or ``conda-meta/``) and walked while the
    probe runs; when the probe says otherwise, the right prefix is walked afterwards.
    """
    if not walk:
        return InterpreterCapture(
            python=python, info=probe_interpreter(python, timeout=timeout), prefix_tree=None
        )
    guess = Path(python).parent.parent
    guessed_plan = _prefix_walk_plan(
        guess, (guess / "pyvenv.cfg").is_file(), (guess / "conda-meta").is_dir()
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        probing = pool.submit(probe_interpreter, python, timeout=timeout)
        early = _walk_prefix(guess, guessed_plan) if guessed_plan is not None else None
        info = probing.result()
    prefix = Path(info["prefix"])
    plan = _prefix_walk_plan(prefix, bool(info.get("is_venv")), bool(info.get("is_conda")))
    tree = None
    if plan is not None:
        same = early is not None and plan == guessed_plan and str(prefix) == str(guess)
        tree = early if same else _walk_prefix(prefix, plan)
    return InterpreterCapture(python=python, info=info, prefix_tree=tree)
