"""Where West Tek keeps its per-user state when nothing else is configured."""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(variable: str, fallback: str) -> Path:
    return Path(os.environ.get(variable) or Path.home() / fallback)


def data_dir() -> Path:
    """West Tek's per-user data directory (baselines, event log, default store)."""
    return _xdg("XDG_DATA_HOME", ".local/share") / "westtek"


def default_store() -> str:
    """The snapshot store: ``$WESTTEK_STORE``, else a per-user data directory."""
    return os.environ.get("WESTTEK_STORE") or str(data_dir() / "store")


def default_key_file() -> Path:
    """The encryption key of an encrypted local store: ``$WESTTEK_KEY_FILE`` or the config dir."""
    configured = os.environ.get("WESTTEK_KEY_FILE")
    return (
        Path(configured)
        if configured
        else _xdg("XDG_CONFIG_HOME", ".config") / "westtek" / "store.key"
    )
