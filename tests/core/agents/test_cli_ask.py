"""`westtek ask`: the agents in a terminal, with the `ask --json` contract."""

from __future__ import annotations

import json
import sys

import pytest

from tests.core.agents.conftest import ENVIRONMENT
from westtek_core.cli import main


def ask_args(lab, *extra):
    return [
        "ask",
        "--root", str(lab["workspace"]),
        "--python", str(lab["python"]),
        "--store", str(lab["tmp"] / "store"),
        "--environment-id", ENVIRONMENT,
        *extra,
    ]  # fmt: skip


def test_ask_prints_the_answer_its_citations_and_tools(kb_lab, capsys):
    code = main(
        ask_args(kb_lab, "--index", str(kb_lab["kb_path"]), "--json",
                 "Why is westtek_probe_pkg pinned to 1.0.0?")
    )  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out)[:3] == ["answer", "citations", "tools_called"]
    assert {"source": "requirements.txt", "locator": "line 2"} in out["citations"]
    assert "GetPackageInstallHistory" in out["tools_called"]
    assert out["agent"] == "transfer" and out["error"] is None
    # without --json: the answer, then its numbered sources
    assert main(ask_args(kb_lab, "--agent", "drift", "Which notebooks read data?")) == 0
    out = capsys.readouterr().out
    assert "analysis.ipynb reads data/measurements.csv." in out
    assert "Sources:" in out and "[1] analysis.ipynb (cell 0)" in out


def test_ask_bad_input_is_one_line_and_usage_errors_exit_2(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    lab = {"workspace": tmp_path, "python": sys.executable, "tmp": tmp_path}
    assert main(ask_args(lab, "--index", str(tmp_path / "none.sqlite"), "why?")) == 1
    assert capsys.readouterr().err.strip() == (
        f"westtek: error: no knowledge base at {tmp_path / 'none.sqlite'}: "
        "run `westtek kb ingest` first"
    )
    assert main(ask_args(lab, "--provider", "nonsense", "--json", "Who built this?")) == 1
    assert "unknown agent provider" in json.loads(capsys.readouterr().out)["answer"]
    with pytest.raises(SystemExit) as exit_info:
        main(["ask", "--agent", "oracle", "why?"])
    assert exit_info.value.code == 2
