"""Notebooks crafted to break what reads them: the import analyser, the knowledge base, capture.

A workspace holds one ordinary notebook among hostile ones: JSON nested a hundred thousand
deep, Python nested past the parser's limits, megabyte cells and lines, fifty thousand
cells, invalid UTF-8, lone surrogates, NUL bytes, cells of the wrong type, a multi-megabyte
output, and ``.ipynb`` names that are a FIFO or a link to ``/dev/zero`` (reading either
never ends). Each reader runs in a child process with a deadline: it must finish, report the
hostile notebooks as errors or unparsable cells, and still analyse and index the ordinary
one.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.core.stress import REPO_ROOT, lab_environment

ORDINARY = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# Spectral fit of the cryo run"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": "import numpy as np\nimport scipy.signal\nraw = np.load('data/run.npy')\n"},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    "nbformat": 4, "nbformat_minor": 5,
}  # fmt: skip


def code_notebook(*sources: Any, **extra: Any) -> dict[str, Any]:
    cells = [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": s}
        for s in sources
    ]
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4} | extra


def hostile_workspace(root: Path) -> dict[str, str]:
    """Write the notebooks; return name → what is hostile about it."""
    root.mkdir(parents=True)
    (root / "ordinary.ipynb").write_text(json.dumps(ORDINARY))
    written: dict[str, str] = {}

    def put(name: str, why: str, content: str | bytes | dict[str, Any]) -> None:
        path = root / name
        if isinstance(content, dict):
            content = json.dumps(content)
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogatepass")
        path.write_bytes(content)
        written[name] = why

    depth = 100_000
    put("deep-json.ipynb", "JSON nested 100k deep", '{"cells": ' + "[" * depth + "]" * depth + "}")
    put("deep-parens.ipynb", "Python nested 100k deep",
        code_notebook("x = " + "(" * depth + "1" + ")" * depth))  # fmt: skip
    put("deep-lists.ipynb", "lists nested 5k deep", code_notebook("x = " + "[" * 5000 + "]" * 5000))
    blocks = "".join(" " * i + "if x:\n" for i in range(200)) + " " * 200 + "pass\n"
    put("deep-blocks.ipynb", "blocks nested 200 deep", code_notebook(blocks))
    put("mega-cell.ipynb", "a 1 MB cell",
        code_notebook("import os\n" + "value = value + 1\n" * 57_000))  # fmt: skip
    put(
        "mega-line.ipynb", "a 2 MB line of one word", code_notebook("s = '" + "a" * 2_000_000 + "'")
    )
    put("mega-words.ipynb", "a 1 MB output line of words",
        code_notebook("print(x)") | {"cells": [{
            "cell_type": "code", "metadata": {}, "execution_count": 1, "source": "print(x)",
            "outputs": [{"output_type": "stream", "name": "stdout", "text": "val " * 250_000}]},
            {"cell_type": "markdown", "metadata": {}, "source": "word " * 200_000}]})  # fmt: skip
    put("many-cells.ipynb", "10k cells", code_notebook(*(f"y{i} = {i}" for i in range(10_000))))
    bad = b'{"cells": [{"cell_type": "code", "source": "import \xff\xfe os"}], "nbformat": 4}'
    put("bad-utf8.ipynb", "invalid UTF-8", bad)
    put("surrogate.ipynb", "a lone surrogate", code_notebook("import os  # \ud800"))
    put("nul.ipynb", "NUL bytes", code_notebook("import os\x00\nimport sys"))
    put("wrong-types.ipynb", "cells of the wrong type",
        {"cells": [None, 3, "x", {"cell_type": "code", "source": {"a": 1}},
                   {"cell_type": "code", "source": [1, None, ["import os"]]}],
         "metadata": [], "nbformat": "four"})  # fmt: skip
    put("not-a-notebook.ipynb", "a JSON list", "[1, 2, 3]")
    put("huge-output.ipynb", "a 6 MB image output",
        code_notebook("plot()") | {"cells": [{
            "cell_type": "code", "metadata": {}, "execution_count": 1, "source": "plot()",
            "outputs": [{"output_type": "display_data", "metadata": {},
                         "data": {"image/png": base64.b64encode(os.urandom(4_500_000)).decode(),
                                  "text/plain": "<Figure>" * 100_000}}]}]})  # fmt: skip
    os.mkfifo(root / "fifo.ipynb")
    written["fifo.ipynb"] = "a FIFO (opening blocks)"
    os.symlink("/dev/zero", root / "zero.ipynb")
    written["zero.ipynb"] = "a link to /dev/zero (never ends)"
    return written


READERS = """
import json, sys, time
from pathlib import Path
from westtek_core.notebooks import analyse_workspace
from westtek_core.kb import KnowledgeBase

root = Path(sys.argv[1])
began = time.monotonic()
analyses = {a.path: a for a in analyse_workspace(root)}
analysed = time.monotonic() - began
kb = KnowledgeBase(Path(sys.argv[2]))
report = kb.ingest_workspace(root)
hits = [r.source for r in kb.search("spectral fit cryo", 3)]
kb.close()
print(json.dumps({
    "analysis": {p: {"error": a.error, "imports": list(a.imports),
                     "unparsable": a.unparsable_cells} for p, a in analyses.items()},
    "analyse_s": analysed,
    "ingested": report.ingested,
    "failed": [f["source"] for f in report.failed],
    "hits": hits,
}))
"""


@pytest.mark.slow
def test_hostile_notebooks_are_reported_and_the_ordinary_one_still_counts(tmp_path: Path):
    workspace = tmp_path / "workspace"
    hostile = hostile_workspace(workspace)
    env = lab_environment(tmp_path / "lab")
    done = subprocess.run(
        [sys.executable, "-c", READERS, str(workspace), str(tmp_path / "kb.sqlite")],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])

    analysis = result["analysis"]
    assert analysis["ordinary.ipynb"] == {
        "error": None, "imports": ["numpy", "scipy.signal"], "unparsable": 0,
    }  # fmt: skip
    for name, why in hostile.items():
        outcome = analysis[name]
        assert outcome["error"] or outcome["unparsable"] or name in (
            "mega-cell.ipynb", "many-cells.ipynb", "huge-output.ipynb", "wrong-types.ipynb",
            "mega-line.ipynb", "mega-words.ipynb",
        ), (name, why, outcome)  # fmt: skip
    for name in ("fifo.ipynb", "zero.ipynb", "bad-utf8.ipynb", "deep-json.ipynb"):
        assert analysis[name]["error"], name
    assert result["analyse_s"] < 60, result["analyse_s"]
    # the knowledge base indexes the ordinary notebook, reports what it cannot read, and
    # never stops at the first hostile one
    assert "ordinary.ipynb" in result["ingested"]
    assert {"fifo.ipynb", "zero.ipynb", "bad-utf8.ipynb"} <= set(result["failed"])
    assert {"surrogate.ipynb", "mega-words.ipynb", "mega-line.ipynb"} <= set(result["ingested"])
    assert result["hits"][0] == "ordinary.ipynb"

    # and a snapshot of the workspace completes, storing every regular notebook
    lab_python = tmp_path / "env" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(lab_python.parents[1])],
                   check=True)  # fmt: skip
    created = subprocess.run(
        [sys.executable, "-m", "westtek_core.cli", "snapshot", "create", "--python",
         str(lab_python), "--root", str(workspace), "--store", str(tmp_path / "store"), "--json"],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=env,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr[-2000:]
    skipped = {s["path"]: s["reason"] for s in json.loads(created.stdout)["skipped"]}
    assert "fifo.ipynb" in skipped


AGENT_READERS = """
import json, sys
from pathlib import Path
from westtek_core.agents.api_diff import find_api_uses
from westtek_core.agents.tools import ToolContext, get_package_install_history
from westtek_core.environment_service import EnvironmentService
from westtek_core.drift.events import EventLog

root, tmp = Path(sys.argv[1]), Path(sys.argv[2])
uses = sorted({u.name for u in find_api_uses(root, {"numpy"})})
events = EventLog(tmp / "events.sqlite")
service = EnvironmentService(store=str(tmp / "store"), key_file=tmp / "k.key", root=root,
                             pythons=[sys.executable], environment_id="alice@vault-13",
                             event_log=events)
history = get_package_install_history(
    ToolContext(service), {"package_name": "numpy", "environment_id": "alice@vault-13"})
events.close()
print(json.dumps({"uses": uses, "imported_by": history.data["imported_by"]}))
"""


def test_the_agents_tools_skip_fifos_named_like_notebooks_and_requirements(tmp_path: Path):
    # The Drift Analyzer reads every notebook (API uses) and every requirements file (pins):
    # a FIFO under either name must not block it
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "ordinary.ipynb").write_text(json.dumps(ORDINARY))
    os.mkfifo(workspace / "blocking.ipynb")
    os.mkfifo(workspace / "requirements.txt")
    env = lab_environment(tmp_path / "lab")
    done = subprocess.run(
        [sys.executable, "-c", AGENT_READERS, str(workspace), str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"uses": ["numpy", "numpy.load"], "imported_by": ["ordinary.ipynb"]}
