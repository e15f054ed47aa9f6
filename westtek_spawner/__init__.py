"""West Tek spawner for JupyterHub: one spawner, pluggable backends (local, docker, ecs).

``WestTekSpawner`` is imported on first use: the pre-start step
(``python -m westtek_spawner.prestart``) runs in every fresh container before the server,
and must not pay for JupyterHub's and the spawner's imports (about 2 s there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from westtek_spawner.spawner import WestTekSpawner

__all__ = ["WestTekSpawner"]


def __getattr__(name: str) -> Any:
    if name == "WestTekSpawner":
        from westtek_spawner.spawner import WestTekSpawner

        return WestTekSpawner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
