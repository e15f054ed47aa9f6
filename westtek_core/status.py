"""What this installation of the suite can do, as reported by every status endpoint."""

from __future__ import annotations

import importlib.util
import platform
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from westtek_core.version import __version__


class Capability(str, Enum):
    """A capability the suite can report; its value is the wire name."""

    STATUS = "status"
    SERVER_EXTENSION = "server-extension"
    LAB_EXTENSION = "lab-extension"
    HUB_SERVICE = "hub-service"
    SPAWNER_LOCAL = "spawner-local"
    SNAPSHOTS = "snapshots"


# A capability is present when the module that implements it is importable.
_CAPABILITY_MODULES: dict[Capability, str] = {
    Capability.SERVER_EXTENSION: "westtek_server_ext",
    Capability.HUB_SERVICE: "westtek_hub",
    Capability.SPAWNER_LOCAL: "westtek_spawner.backends.local",
    Capability.SNAPSHOTS: "westtek_core.snapshot",
}


@dataclass(frozen=True)
class StatusReport:
    """The JSON body of ``GET …/westtek/api/status``."""

    version: str
    component: str
    capabilities: list[str]
    python: str = field(default_factory=platform.python_version)

    def to_json(self) -> dict[str, Any]:
        """Return the wire form."""
        return {
            "version": self.version,
            "component": self.component,
            "capabilities": self.capabilities,
            "python": self.python,
        }


def _module_present(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def present_capabilities(extra: tuple[Capability, ...] = ()) -> list[str]:
    """List the capabilities importable here plus ``extra`` ones the caller knows it has."""
    found = {Capability.STATUS, *extra}
    found.update(cap for cap, module in _CAPABILITY_MODULES.items() if _module_present(module))
    return sorted(cap.value for cap in found)


def status_report(component: str, extra: tuple[Capability, ...] = ()) -> StatusReport:
    """Build the status report a component (``server-extension``, ``hub-service``…) serves."""
    return StatusReport(
        version=__version__,
        component=component,
        capabilities=present_capabilities(extra),
    )
