"""Spawner backends, by the short name the ``WestTekSpawner.backend`` trait takes."""

from __future__ import annotations

from traitlets.utils.importstring import import_item

from westtek_spawner.backends.base import SpawnerBackend

# Import strings keep optional backends' SDKs (docker, boto3) unimported until chosen.
BACKENDS: dict[str, str] = {
    "local": "westtek_spawner.backends.local.LocalBackend",
    "docker": "westtek_spawner.backends.docker.DockerBackend",
    "ecs": "westtek_spawner.backends.ecs.EcsBackend",
}


def backend_class(name: str) -> type[SpawnerBackend]:
    """Resolve a backend's short name, or a dotted import path, to its class."""
    import_path = BACKENDS.get(name, name)
    if "." not in import_path:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unknown spawner backend {name!r}; choose one of: {known}")
    cls = import_item(import_path)
    if not (isinstance(cls, type) and issubclass(cls, SpawnerBackend)):
        raise ValueError(f"{import_path} is not a SpawnerBackend subclass")
    return cls


__all__ = ["BACKENDS", "SpawnerBackend", "backend_class"]
