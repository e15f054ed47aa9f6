"""Stale kernels: a running kernel whose imported packages are no longer those on disk.

A kernel that imported numpy 1.26.4 before a ``pip install -U numpy`` keeps running 1.26.4
while the disk has 2.0.1, and any module it imports from now on comes from 2.0.1: results
silently mix versions. This module says which kernels are in that state.

How a kernel's imports are known — the approach, and why:

* The version a kernel runs can only be read at import time: after an upgrade the old
  ``.dist-info`` is gone and ``importlib.metadata`` answers the new version. So a small
  recorder (:data:`PROBE_CODE`, stdlib only: it runs in the kernel's interpreter, which need
  not have West Tek installed) is sent to each kernel when it starts or restarts, as a
  *silent* execute request (``store_history=False``: no execution count, no output, no
  entry in the notebook). It notes which distribution each newly imported top-level module
  came from, at which version and from which ``site-packages``, after each cell
  (IPython's ``post_run_cell``, which silent requests do not trigger); a cell that imports
  nothing new costs one ``len(sys.modules)``. A distribution installed since the module may
  have been imported (the cell that imported it also ran the install, or the recorder
  arrived late) is taken at the module's own ``__version__`` where it has one.
* After each environment change the drift watcher settles (~300 ms debounce), the server
  asks each kernel for that record (:data:`PROBE_EXPRESSION`, in the same kind of silent
  request, which also installs the recorder where it is missing) and compares every
  recorded version with what is installed now in the same directory
  (:func:`installed_versions`, read by the server, not the kernel). A busy kernel answers
  only when its cell ends: the server waits a second or two, uses the kernel's previous
  record meanwhile, and takes the answer whenever it comes — one request per kernel is
  ever queued, so nothing piles up behind a long-running cell.
* An IPython startup file or a kernelspec ``argv`` change would do the same but edits the
  user's files and reaches only kernels of those specs; a request from the server reaches
  every kernel the server runs, whatever its environment.

The comparison (:func:`stale_modules`) and the bookkeeping (:class:`StaleKernelTracker`:
what appeared, what went away) are plain functions over plain values; the server
extension only talks to the kernels.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from westtek_core.drift.report import (
    STALE_KERNEL,
    Change,
    DriftReport,
    Severity,
    version_direction,
)
from westtek_core.wire import StaleModuleReport

PROBE_MODULE = "_westtek_kernel_probe"
"""Where the recorder lives in the kernel: a module in ``sys.modules``, not a user name."""

_RECORDER = r"""
import sys
def _install():
    name = "@MODULE@"
    if name in sys.modules:
        return
    import importlib.metadata as md, json, os, sysconfig, time, types
    probe = types.ModuleType(name)
    loaded = {}
    state = {"seen": set(), "count": 0, "map": None, "since": 0.0}
    stdlib = tuple(os.path.realpath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib"))

    def third_party(module):
        path = getattr(module, "__file__", None)
        if not path:
            return False
        path = os.path.realpath(path)
        if "site-packages" in path or "dist-packages" in path:
            return True
        return not path.startswith(stdlib)

    def installed_at(dist):
        try:
            return os.stat(dist._path).st_mtime
        except (AttributeError, OSError):
            return time.time()

    def record():
        if len(sys.modules) == state["count"]:
            return
        # modules new now were imported since the last record, maybe before an install
        since, state["since"] = state["since"], time.time()
        state["count"] = len(sys.modules)
        tops = {m.partition(".")[0] for m in list(sys.modules)} - state["seen"]
        state["seen"] |= tops
        tops = [t for t in tops if third_party(sys.modules.get(t))]
        if not tops:
            return
        if state["map"] is None or any(t not in state["map"] for t in tops):
            state["map"] = md.packages_distributions()
        for top in tops:
            for dist_name in state["map"].get(top, ()):
                if dist_name in loaded:
                    continue
                try:
                    dist = md.distribution(dist_name)
                    version = dist.version
                    where = str(dist.locate_file(""))
                except Exception:
                    continue
                found = getattr(sys.modules.get(top), "__version__", None)
                # installed since the module may have been imported: the code's own word
                if installed_at(dist) >= since and isinstance(found, str):
                    version = found
                loaded[dist_name] = [version, where]

    def report():
        record()
        return json.dumps({"loaded": loaded})

    def after_cell(result=None):
        try:
            record()
        except Exception:
            pass

    probe.record, probe.report = record, report
    sys.modules[name] = probe
    record()
    try:
        from IPython import get_ipython
        get_ipython().events.register("post_run_cell", after_cell)
    except Exception:
        pass
_install()
""".replace("@MODULE@", PROBE_MODULE)

# run in a namespace of its own: nothing of it lands among the user's variables
PROBE_CODE = f"exec({_RECORDER!r}, {{}})"
"""The code of the silent request sent to each kernel: installs the recorder once."""

PROBE_EXPRESSION = f"__import__('sys').modules[{PROBE_MODULE!r}].report()"
"""The user expression whose value is the kernel's record (a JSON string)."""

PROBE_KEY = "westtek"
"""The name of :data:`PROBE_EXPRESSION` among the request's ``user_expressions``."""


@dataclass(frozen=True)
class LoadedDistribution:
    """A distribution a kernel imported: the version it runs and where it came from."""

    name: str
    version: str
    location: str


class ProbeReplyError(ValueError):
    """A kernel's answer to the probe that cannot be read (an old IPython, an error)."""


def probe_request() -> dict[str, Any]:
    """The content of the execute request that installs the recorder and reads it."""
    return {
        "code": PROBE_CODE,
        "silent": True,
        "store_history": False,
        "user_expressions": {PROBE_KEY: PROBE_EXPRESSION},
        "allow_stdin": False,
        "stop_on_error": False,
    }


def parse_probe_reply(content: Mapping[str, Any]) -> dict[str, LoadedDistribution]:
    """The distributions a kernel runs, from its ``execute_reply`` content."""
    if content.get("status") != "ok":
        raise ProbeReplyError(f"the probe failed: {content.get('ename') or content.get('status')}")
    value = (content.get("user_expressions") or {}).get(PROBE_KEY) or {}
    if value.get("status") != "ok":
        raise ProbeReplyError(f"the probe's expression failed: {value.get('ename')}")
    try:
        text = ast.literal_eval(value["data"]["text/plain"])
        loaded = json.loads(text)["loaded"]
        return {
            canonicalize_name(name): LoadedDistribution(name, str(version), str(location))
            for name, (version, location) in loaded.items()
        }
    except (KeyError, TypeError, ValueError, SyntaxError) as e:
        raise ProbeReplyError(f"unreadable probe answer: {e}") from None


def installed_versions(loaded: Iterable[LoadedDistribution]) -> dict[str, str | None]:
    """What is installed now where each distribution was imported from (None: nothing).

    Read where the kernel found it, not on the server's path: the kernel's interpreter
    and user site are its own.
    """
    by_location: dict[str, dict[str, str]] = {}
    found: dict[str, str | None] = {}
    for dist in loaded:
        if dist.location not in by_location:
            there = importlib.metadata.distributions(path=[dist.location])
            by_location[dist.location] = {
                canonicalize_name(d.metadata["Name"] or ""): d.version for d in there
            }
        found[canonicalize_name(dist.name)] = by_location[dist.location].get(
            canonicalize_name(dist.name)
        )
    return found


def same_version(a: str, b: str) -> bool:
    """Whether two version strings name one release (``1.0`` is ``1.0.0``)."""
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def kernel_label(kernel_id: str, notebook: str | None) -> str:
    """How a kernel is named to the researcher: its notebook, else its id."""
    return notebook or kernel_id


def stale_message(module: StaleModuleReport) -> str:
    """The warning for one stale distribution of one kernel."""
    label = kernel_label(module.kernel_id, module.notebook)
    now = f"{module.installed} is installed" if module.installed else "it is uninstalled"
    return (
        f"kernel '{label}' still runs {module.distribution} {module.loaded}; {now}: "
        "restart the kernel"
    )


def stale_modules(
    kernel_id: str,
    notebook: str | None,
    loaded: Mapping[str, LoadedDistribution],
    installed: Mapping[str, str | None],
) -> list[StaleModuleReport]:
    """The distributions ``kernel_id`` runs at a version other than the installed one."""
    stale = []
    for key, dist in sorted(loaded.items()):
        now = installed.get(key)
        if now is not None and same_version(now, dist.version):
            continue
        module = StaleModuleReport(
            kernel_id=kernel_id,
            notebook=notebook,
            distribution=dist.name,
            loaded=dist.version,
            installed=now,
            message="",
        )
        stale.append(module.model_copy(update={"message": stale_message(module)}))
    return stale


def stale_change(module: StaleModuleReport) -> Change:
    """One stale distribution of one kernel as a drift change (events, the hub, the sidebar).

    Its name holds the kernel, so that restarting one of two stale kernels resolves only
    its own change.
    """
    direction = (
        version_direction(module.loaded, module.installed) if module.installed else "removed"
    )
    return Change(
        kind=STALE_KERNEL,
        name=f"{module.distribution} in {kernel_label(module.kernel_id, module.notebook)}",
        change=direction,
        before=module.loaded,
        after=module.installed,
        # results mix the old code in memory with whatever is imported next from disk
        severity=Severity.CRITICAL,
        reason=module.message,
        affected_notebooks=(module.notebook,) if module.notebook else (),
    )


class StaleKernelTracker:
    """The stale distributions of every running kernel; says what each check changed.

    Safe across threads: kernels are checked from the server's loop, drift states read
    from request threads.
    """

    def __init__(self) -> None:
        self._by_kernel: dict[str, list[StaleModuleReport]] = {}
        self._lock = threading.Lock()

    def current(self) -> list[StaleModuleReport]:
        """Every stale distribution of every kernel, by kernel then distribution."""
        with self._lock:
            return [m for kernel in sorted(self._by_kernel) for m in self._by_kernel[kernel]]

    def with_changes(self, report: DriftReport) -> DriftReport:
        """``report`` with the stale kernels' changes: drift of the code that runs."""
        return DriftReport(report.baseline, [*report.changes, *map(stale_change, self.current())])

    def check(
        self, kernel_id: str, notebook: str | None, loaded: Mapping[str, LoadedDistribution]
    ) -> tuple[list[Change], list[Change]]:
        """Compare a kernel's record with the disk now; the changes that appeared and went."""
        installed = installed_versions(loaded.values())
        return self.update(kernel_id, stale_modules(kernel_id, notebook, loaded, installed))

    def update(
        self, kernel_id: str, stale: list[StaleModuleReport]
    ) -> tuple[list[Change], list[Change]]:
        """Record a kernel's stale distributions now; the changes that appeared and went."""
        with self._lock:
            before = [stale_change(m) for m in self._by_kernel.get(kernel_id, [])]
            if stale:
                self._by_kernel[kernel_id] = stale
            else:
                self._by_kernel.pop(kernel_id, None)
        after = [stale_change(m) for m in stale]
        return [c for c in after if c not in before], [c for c in before if c not in after]

    def forget(self, kernel_id: str) -> list[Change]:
        """A kernel restarted or stopped: its stale changes, now resolved."""
        return self.update(kernel_id, [])[1]

    def kernels(self) -> set[str]:
        """The ids of the kernels with stale distributions."""
        with self._lock:
            return set(self._by_kernel)
