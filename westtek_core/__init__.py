"""West Tek core: the environment-preservation engine and the ``westtek`` CLI.

Pure logic only: no Tornado, no JupyterHub imports. The server extension, the hub
service and the spawner are thin layers over what lives here.
"""

from westtek_core.status import Capability, StatusReport, status_report
from westtek_core.version import __version__

__all__ = ["Capability", "StatusReport", "__version__", "status_report"]
