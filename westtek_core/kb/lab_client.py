"""The lab's memory as a researcher's server reaches it: through the hub service.

The hub service keeps each lab's memory (``westtek_hub.knowledge``); a server asks it with
its own JupyterHub token, so it reads only its user's labs. The address and the token are
the hub sink's (``HubSink``): under JupyterHub they need no configuration.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from westtek_core.version import __version__


class LabMemoryUnavailable(RuntimeError):
    """The hub service did not answer; ``str()`` says why, in one line.

    ``status`` is the hub service's HTTP status when it answered one (404: no such cell).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _message(error: urllib.error.HTTPError) -> str:
    """The hub service's own message (its errors are JSON), else the status."""
    try:
        told = json.loads(error.read()).get("message")
    except (OSError, ValueError, AttributeError):
        told = None
    return f"the hub service answered {error.code}: {told or error.reason}"


class LabMemoryClient:
    """Search the caller's labs' memories on the hub service."""

    def __init__(self, api_base: str, token: str, timeout: float = 10.0) -> None:
        self.api_base = api_base.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def under_jupyterhub(cls) -> LabMemoryClient | None:
        """A client from the hub sink's settings; None outside JupyterHub."""
        from westtek_core.notify.sinks import HubSink

        sink = HubSink()
        return cls(sink.api_base, sink.api_token) if sink.enabled else None

    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        """Cited passages, best first (each with ``citation``: environment, snapshot, path)."""
        answer = self._get("knowledge/search", {"q": query, "k": str(k)})
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise LabMemoryUnavailable("the hub service answered a search without results")
        return [r for r in results if isinstance(r, dict) and isinstance(r.get("citation"), dict)]

    def cell(self, environment_id: str, snapshot_id: str, path: str, cell: int) -> dict[str, Any]:
        """A cited cell as the snapshot in the lab's store holds it."""
        params = {"environment_id": environment_id, "snapshot_id": snapshot_id, "path": path,
                  "cell": str(cell)}  # fmt: skip
        found = self._get("knowledge/cell", params)
        if not isinstance(found, dict):
            raise LabMemoryUnavailable("the hub service answered a cell that is not an object")
        return found

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.api_base}/{path}?{urlencode(params)}"
        request = urllib.request.Request(
            url,
            headers={
                "Authorization": f"token {self.token}",
                "User-Agent": f"westtek/{__version__}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as e:
            raise LabMemoryUnavailable(_message(e), e.code) from None
        except (OSError, ValueError) as e:
            raise LabMemoryUnavailable(f"the hub service cannot be reached: {e}") from None
