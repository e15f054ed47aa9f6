"""The exceptions a spawn fails with: their message is what the user reads."""

from __future__ import annotations

from typing import Any

try:  # JupyterHub 6: policy refusals are logged without a traceback
    from jupyterhub.spawner import SpawnException as _PolicyBase
except ImportError:  # pragma: no cover - JupyterHub 5
    from tornado.web import HTTPError as _PolicyBase


class SpawnError(Exception):
    """A spawn that cannot go on, with one clear line for the spawn page and the hub log.

    JupyterHub shows ``jupyterhub_message`` on the spawn page and in the progress stream
    (``Spawn failed: …``) instead of a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.jupyterhub_message = message


class SpawnRefused(_PolicyBase):
    """A spawn refused by policy (a quota, a profile that does not exist): a 4xx, no traceback."""

    def __init__(self, message: str, *, reason: str, status_code: int = 400) -> None:
        kwargs: dict[str, Any] = {"reason": reason, "status_code": status_code}
        if _PolicyBase.__name__ == "HTTPError":  # pragma: no cover - JupyterHub 5
            super().__init__(status_code, message)
        else:
            super().__init__(message, **kwargs)
        self.jupyterhub_message = message

    def __str__(self) -> str:
        return str(self.jupyterhub_message)
