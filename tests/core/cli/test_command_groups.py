"""Command groups from other packages join the ``westtek`` parser through an entry point."""

import argparse
import ast
import json
import logging
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import westtek_core
import westtek_core.cli as cli
from westtek_core.cli import COMMAND_GROUPS_ENTRY_POINT, main
from westtek_core.cli.common import add_json, emit


def register_hello(commands) -> None:
    """A command group as another package would declare it."""

    def run(args) -> int:
        emit(args, {"hello": "world"}, lambda console: console.print("hello, world"))
        return 0

    hello = commands.add_parser("hello", help="say hello")
    add_json(hello)
    hello.set_defaults(run=run)


def installed(*values: tuple[str, str]) -> list[EntryPoint]:
    return [EntryPoint(name, value, COMMAND_GROUPS_ENTRY_POINT) for name, value in values]


def test_an_installed_group_is_a_command(monkeypatch, capsys):
    # Given a package declares a command group under westtek.cli_commands
    found = installed(("hello", f"{__name__}:register_hello"))
    monkeypatch.setattr(cli, "entry_points", lambda group: found)
    # When the CLI runs its command, then the group's handler answers
    assert main(["hello", "--json"]) == 0
    assert capsys.readouterr().out.strip() == '{"hello": "world"}'


def test_a_broken_group_is_left_out_and_the_rest_still_works(monkeypatch, capsys, caplog):
    found = installed(("broken", "westtek_no_such_package.cli:register"))
    monkeypatch.setattr(cli, "entry_points", lambda group: found)
    assert main(["status", "--json"]) == 0
    # a command that is not built in looks for the installed groups, and says what failed
    with caplog.at_level(logging.WARNING, logger="westtek_core.cli"):
        with pytest.raises(SystemExit) as exit_info:
            main(["broken"])
    assert exit_info.value.code == 2
    assert "'broken'" in caplog.text and "not loaded" in caplog.text


def test_the_hub_audit_group_is_found_through_the_installed_entry_point():
    # The editable install declares westtek_hub.cli:register; nothing imports it directly.
    subcommands = next(
        a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    assert "audit" in subcommands.choices


def test_westtek_core_never_imports_the_hub_package():
    for source in Path(westtek_core.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] == "westtek_hub" for n in names), source


def test_a_built_in_command_does_not_look_for_installed_groups(monkeypatch, capsys):
    # Given looking for installed command groups would fail loudly
    def must_not_scan(group):
        raise AssertionError("a built-in command scanned the installed entry points")

    monkeypatch.setattr(cli, "entry_points", must_not_scan)
    # When a built-in command runs, then it answers without them
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == westtek_core.__version__
