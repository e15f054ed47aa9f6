"""West Tek core: the environment-preservation engine and the ``westtek`` CLI.

Pure logic only: no Tornado, no JupyterHub imports. The server extension, the hub
service and the spawner are thin layers over what lives here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from westtek_core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from westtek_core.status import Capability, StatusReport, status_report
    from westtek_core.version import __version__

__all__ = ["Capability", "StatusReport", "__version__", "status_report"]

# imported on first use: every command imports this package, and the installed version's
# metadata (importlib.metadata) is slow to read
__getattr__ = lazy_exports(
    __name__,
    {
        "Capability": "status",
        "StatusReport": "status",
        "status_report": "status",
        "__version__": "version",
    },
)
