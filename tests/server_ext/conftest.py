import pytest

# The core suite's real throwaway venv (a package, a kernelspec and a notebook importing it).
from tests.core.conftest import pip_install, research_env, wheelhouse  # noqa: E402, F401


@pytest.fixture
def westtek_traits(tmp_path, monkeypatch):
    """WestTekExtension's traits for a test: a private store, data dir and workspace."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    return {
        "store": str(tmp_path / "store"),
        "workspace": str(workspace),
        "pythons": [],
        "environment_id": "alice@vault-13",
        "watch": False,
    }


@pytest.fixture
def jp_server_config(jp_server_config, westtek_traits):
    return {
        "ServerApp": {"jpserver_extensions": {"westtek_server_ext": True}},
        "WestTekExtension": westtek_traits,
    }
