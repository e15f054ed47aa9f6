"""West Tek spawner for JupyterHub: one spawner, pluggable backends (local, docker, ecs)."""

from westtek_spawner.spawner import WestTekSpawner

__all__ = ["WestTekSpawner"]
