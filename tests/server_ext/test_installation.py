"""The installed package enables both extensions without any manual step."""

import re
import subprocess
import sys


def jupyter(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", *args], capture_output=True, text=True, check=True
    )
    return re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)  # drop colours


def test_server_extension_is_enabled_and_valid():
    listing = jupyter("server", "extension", "list")
    assert re.search(r"westtek_server_ext\s+enabled", listing)
    assert re.search(r"westtek_server_ext\s+OK", listing)


def test_lab_extension_is_installed_and_enabled():
    listing = jupyter("labextension", "list")
    assert re.search(r"westtek-labextension v\S+ enabled\s+OK", listing), listing
