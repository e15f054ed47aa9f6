import json
import subprocess
import sys
from pathlib import Path

import pytest

from westtek_core import __version__
from westtek_core.cli import main


def test_version_flag_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"westtek {__version__}"


def test_help_describes_the_suite(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: westtek" in out
    assert "Environment Preservation" in out


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: westtek" in capsys.readouterr().out


def test_status_json_lists_capabilities(capsys):
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["version"] == __version__
    assert report["component"] == "cli"
    assert {"status", "server-extension", "hub-service", "spawner-local"} <= set(
        report["capabilities"]
    )


def test_console_script_is_installed():
    # Given the package is installed, `westtek --version` runs as a program.
    westtek = Path(sys.executable).parent / "westtek"
    assert westtek.exists(), "the westtek console script is not installed"
    done = subprocess.run([westtek, "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"westtek {__version__}"


def test_progress_bar_with_json_does_not_load_rich():
    # Given --json, when a command asks for a progress bar, then it gets none and rich (40 ms
    # of a cold start) is never imported.
    code = (
        "import argparse, sys\n"
        "from westtek_core.cli.common import progress_bar\n"
        "with progress_bar(argparse.Namespace(json=True), 'snapshot') as update:\n"
        "    assert update is None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
