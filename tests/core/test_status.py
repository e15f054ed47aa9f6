import json
from pathlib import Path

from westtek_core import __version__
from westtek_core.status import Capability, present_capabilities, status_report

REPO = Path(__file__).resolve().parents[2]


def test_version_comes_from_package_json():
    # package.json is the single source of the version (hatch-nodejs-version).
    assert __version__ == json.loads((REPO / "package.json").read_text())["version"]


def test_extra_capabilities_are_reported_once_and_sorted():
    caps = present_capabilities(extra=(Capability.HUB_SERVICE, Capability.STATUS))
    assert caps == sorted(set(caps))
    assert "hub-service" in caps


def test_status_report_wire_form():
    wire = status_report("server-extension").to_json()
    assert set(wire) == {"version", "component", "capabilities", "python"}
    assert wire["component"] == "server-extension"
