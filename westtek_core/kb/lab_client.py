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

    def holders(self) -> tuple[dict[str, str], set[str]]:
        """Who holds each environment the caller may see, and what was handed over.

        Environment id → researcher, and the ids handed over from the caller that they no
        longer hold.
        """
        answer = self._get("environments", {})
        rows = answer.get("environments") if isinstance(answer, dict) else None
        if not isinstance(rows, list):
            raise LabMemoryUnavailable("the hub service answered environments without a list")
        holders = {str(r["id"]): str(r.get("researcher_id") or "") for r in rows
                   if isinstance(r, dict) and "id" in r}  # fmt: skip
        return holders, {str(e) for e in answer.get("handed_over") or []}

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.api_base}/{path}" + (f"?{urlencode(params)}" if params else "")
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


def visible_snapshots(snapshots: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The store's snapshots as the server's user sees them listed, under JupyterHub.

    Each gets ``holder``, who holds its environment now (per the hub service, asked with
    the server's token); those of an environment handed over from the user leave the list.
    Outside JupyterHub, or when the hub service does not answer, the list is as it is.
    """
    client = LabMemoryClient.under_jupyterhub()
    if client is None:
        return snapshots
    try:
        holders, handed_over = client.holders()
    except LabMemoryUnavailable:
        return snapshots
    return [
        {**s, "holder": holders.get(str(s.get("environment_id") or ""))}
        for s in snapshots
        if str(s.get("environment_id") or "") not in handed_over
    ]
