"""West Tek Jupyter server extension: the researcher-facing REST API under ``westtek/api/``."""

from typing import Any

from westtek_server_ext.app import WestTekExtension
from westtek_server_ext.handlers.status import LABEXTENSION_NAME

__all__ = ["LABEXTENSION_NAME", "WestTekExtension"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "westtek_server_ext", "app": WestTekExtension}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": LABEXTENSION_NAME}]
