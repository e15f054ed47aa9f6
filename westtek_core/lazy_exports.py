"""Packages whose public names are imported on first use (a module ``__getattr__``, PEP 562).

Every ``westtek`` command imports ``westtek_core`` and, through what it uses, a few of its
packages; importing each package's every submodule up front (the installed version's
metadata, restore, export, pathspec, the probe machinery) was a large part of a cold
command's start.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, submodule_of: Mapping[str, str]) -> Callable[[str], Any]:
    """A ``__getattr__`` for ``package`` that imports each name from its submodule once."""

    def __getattr__(name: str) -> Any:
        submodule = submodule_of.get(name)
        if submodule is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{submodule}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
