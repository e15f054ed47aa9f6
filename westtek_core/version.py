"""The suite's version, read from the installed distribution's metadata."""

from importlib.metadata import PackageNotFoundError, version


def _installed_version() -> str:
    try:
        return version("westtek")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"


__version__: str = _installed_version()
