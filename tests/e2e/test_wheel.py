"""The wheel users install carries the prebuilt lab extension and enables the server extension."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from westtek_core import __version__

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DATA = f"westtek-{__version__}.data/data"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), REPO],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("westtek-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_carries_the_prebuilt_labextension(wheel):
    names = set(wheel.namelist())
    lab = f"{DATA}/share/jupyter/labextensions/westtek-labextension"
    assert f"{lab}/static/style.js" in names
    assert f"{lab}/install.json" in names
    package = json.loads(wheel.read(f"{lab}/package.json"))
    assert package["name"] == "westtek-labextension"
    assert package["version"] == __version__
    assert any(n.startswith(f"{lab}/static/remoteEntry.") for n in names)


def test_wheel_enables_the_server_extension_on_install(wheel):
    config = json.loads(
        wheel.read(f"{DATA}/etc/jupyter/jupyter_server_config.d/westtek_server_ext.json")
    )
    assert config == {"ServerApp": {"jpserver_extensions": {"westtek_server_ext": True}}}


def test_wheel_registers_the_cli_spawner_and_demo_authenticator(wheel):
    entry_points = wheel.read(f"westtek-{__version__}.dist-info/entry_points.txt").decode()
    assert "westtek = westtek_core.cli:main" in entry_points
    assert "westtek = westtek_spawner:WestTekSpawner" in entry_points
    assert "westtek-demo = westtek_hub.demo_auth:WestTekDemoAuthenticator" in entry_points


def test_wheel_holds_every_package_and_no_tests(wheel):
    top_level = {name.split("/")[0] for name in wheel.namelist()}
    assert {"westtek_core", "westtek_server_ext", "westtek_spawner", "westtek_hub"} <= top_level
    assert "tests" not in top_level
