"""Shared test helpers."""

import asyncio
import socket
from pathlib import Path

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def jp_asyncio_loop():
    """Run pytest-jupyter's server on pytest-asyncio's loop, the one tests run on."""
    yield asyncio.get_running_loop()


@pytest.fixture(scope="session")
def example_notebooks() -> Path:
    """The statsmodels sdist's 81 real example notebooks (fetched by `make test`'s set-up)."""
    from tests.example_notebooks import DEFAULT_CACHE

    notebooks = DEFAULT_CACHE / "statsmodels"
    if not (notebooks / ".complete").exists():
        pytest.fail(
            "the example notebooks are not fetched: run `make test`, or "
            "`.venv/bin/python -m tests.example_notebooks` once (it downloads one sdist)"
        )
    return notebooks
