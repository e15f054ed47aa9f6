"""What the agents say about drift comes from the live state: what changed, is it dangerous."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from tests.core.agents.conftest import API_V1, build_api_wheel, notebook, snapshot
from tests.core.agents.test_loop import ask, sources
from tests.core.conftest import pip_install


def wait_for_drift(lab, seen, timeout: float = 30.0) -> None:
    """Wait until the drift watcher's report satisfies ``seen(changes)``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if seen(lab["service"].drift_state()["changes"]):
            return
        time.sleep(0.05)
    raise AssertionError(f"the watcher never saw it: {lab['service'].drift_state()['changes']}")


def package_at(version: str):
    def seen(changes) -> bool:
        return any(c["kind"] == "package" and c["after"] == version for c in changes)

    return seen


def statements(answer) -> list[str]:
    """The answer's lines that state something (the header left out)."""
    return [line for line in answer.answer.splitlines() if line.startswith("- ")]


def first_at(text: str, pattern: str) -> int:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in:\n{text}"
    return found.start()


def test_what_changed_lists_the_environment_first_with_live_versions_and_citations(kb_lab):
    # Given a pip upgrade, a kernel and a config change, an edited notebook and new data
    pip_install(kb_lab["python"], kb_lab["api_wheels"], "westtek-api-pkg==2.0.0")
    workspace = kb_lab["workspace"]
    figures = workspace / "figures.ipynb"
    figures.write_text(figures.read_text().replace("decay fit.", "decay fit, refit."))
    (workspace / "data" / "measurements.csv").write_text("t,x\n0,1\n")
    (workspace / "data" / "calibration-2.csv").write_text("gain\n1.71\n")
    kernel = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels" / "research" / "kernel.json"
    kernel.write_text(json.dumps({**json.loads(kernel.read_text()), "display_name": "GPU"}))
    config = Path(os.environ["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.py"
    config.write_text(config.read_text() + "c.ServerApp.iopub_data_rate_limit = 1e7\n")
    baseline = kb_lab["baseline"]

    for agent in ("drift", "transfer"):
        # When the researcher asks what changed
        answer = ask(kb_lab, "What changed since my last snapshot?", agent)
        text = answer.answer
        # Then the environment's changes come first, the package with both versions
        assert "GetDriftEvents" in answer.tools_called
        package = first_at(
            text,
            rf"westtek-api-pkg upgraded from 1\.0\.0 \(snapshot {baseline[:12]}\) to 2\.0\.0 "
            r"\(installed now\)",
        )
        kernel_at = first_at(text, r"kernel research modified")
        config_at = first_at(text, r"jupyter_server_config\.py modified")
        notebook_at = first_at(text, r"notebook figures\.ipynb modified")
        data_at = first_at(text, r"data file data/measurements\.csv modified")
        first_at(text, r"data file data/calibration-2\.csv added")
        assert package < kernel_at < config_at < notebook_at < data_at
        # each cited where it shows: the snapshot's lines, the edited cell, the reading cell
        cited = sources(answer)
        lines = {loc for src, loc in cited if src == f"snapshot:{baseline}"}
        assert len(lines - {"line 1"}) >= 3  # the package's, the kernel's, the config's lines
        assert ("figures.ipynb", "cell 0") in cited  # the markdown cell edited
        assert ("analysis.ipynb", "cell 0") in cited  # reads data/measurements.csv
        assert "super-secret-token" not in text


def test_is_an_upgrade_dangerous_names_the_notebook_versions_and_api_never_stale(kb_lab, tmp_path):
    # Given a watcher that saw westtek-api-pkg go 1.0.0 → 1.5.0 → 2.0.0
    between = build_api_wheel(tmp_path, "1.5.0", API_V1)
    service = kb_lab["service"]
    service.start_watching()
    assert service.wait_watching(30)
    pip_install(kb_lab["python"], between, "westtek-api-pkg==1.5.0")
    wait_for_drift(kb_lab, package_at("1.5.0"))
    pip_install(kb_lab["python"], kb_lab["api_wheels"], "westtek-api-pkg==2.0.0")
    wait_for_drift(kb_lab, package_at("2.0.0"))
    assert any(e["changes"] for e in service.events())  # 1.5.0 is in the record

    # When the researcher asks, naming the package as a user would
    question = "Is the westtek-api-pkg upgrade dangerous for my notebook?"
    answer = ask(kb_lab, question, "drift")

    # Then: the risk, the notebook with the cells, the versions then and now, the API used
    text = answer.answer
    assert text.startswith("Risk: HIGH.")
    assert re.search(r"westtek-api-pkg[^\n]*1\.0\.0[^\n]*2\.0\.0 \(installed now\)", text)
    assert re.search(r"figures\.ipynb uses 3 API\(s\) of westtek-api-pkg", text)
    assert "`westtek_api_pkg.Model.fit` changed signature (x) → (x, y)" in text
    assert "`westtek_api_pkg.stats.ttest(a, b, equal_var=True)` was removed" in text
    assert {("figures.ipynb", f"cell {n}") for n in (2, 3, 4)} <= sources(answer)
    assert "1.5.0" not in text  # installed in between: no longer true
    assert "analysis.ipynb" not in text  # does not use the package

    # and the Knowledge Transfer agent, asked the same, says the same from the same tools
    answer = ask(kb_lab, question, "transfer")
    assert {"GetDriftEvents", "GetPackageChangelog"} <= set(answer.tools_called)
    assert "new required parameter `y`" in answer.answer
    assert ("figures.ipynb", "cell 3") in sources(answer)
    assert "1.5.0" not in answer.answer


def test_a_package_that_is_not_installed_or_did_not_change_is_said_so_in_one_line(kb_lab):
    pip_install(kb_lab["python"], kb_lab["api_wheels"], "westtek-api-pkg==2.0.0")
    short = kb_lab["baseline"][:12]

    answer = ask(kb_lab, "Is the pyyaml upgrade dangerous for my notebook?", "drift")
    said = statements(answer)
    assert said[0].startswith(
        f"- pyyaml is not installed in this environment and has not changed since baseline "
        f"snapshot {short}"
    )
    assert said[1].startswith(
        f"- What did change in the environment since snapshot {short}: westtek-api-pkg "
        "1.0.0 → 2.0.0"
    )
    assert len(said) == 2
    assert "Risk:" not in answer.answer  # no risk to assess in a package that is not there

    answer = ask(kb_lab, "Did the westtek-yaml-dist upgrade break anything?", "drift")
    said = statements(answer)
    assert said[0].startswith(
        f"- westtek-yaml-dist is installed at 1.0.0 now, as in baseline snapshot {short}: "
        "it has not changed"
    )
    assert len(said) == 2 and "Risk:" not in answer.answer
    assert any(
        s == f"snapshot:{kb_lab['baseline']}" and loc != "line 1" for s, loc in sources(answer)
    )  # the snapshot's line that lists it


def test_since_my_last_snapshot_measures_against_the_latest_snapshot(kb_lab):
    # Given the upgrade snapshotted (not as the baseline), then a new notebook cell
    pip_install(kb_lab["python"], kb_lab["api_wheels"], "westtek-api-pkg==2.0.0")
    latest = snapshot(kb_lab, "after the api upgrade")
    analysis = kb_lab["workspace"] / "analysis.ipynb"
    cells = [(c["cell_type"], c["source"]) for c in json.loads(analysis.read_text())["cells"]]
    analysis.write_text(notebook([*cells, ("code", "print(rows[:10])")]))

    answer = ask(kb_lab, "What changed since my last snapshot?", "drift")
    text = answer.answer
    assert f"Against the latest snapshot {latest[:12]}" in text
    assert "notebook analysis.ipynb modified" in text
    assert ("analysis.ipynb", "cell 1") in sources(answer)  # the new cell
    assert "westtek-api-pkg upgraded" not in text  # the latest snapshot has it already
    assert f"Against the baseline snapshot {kb_lab['baseline'][:12]} it is CRITICAL_DRIFT" in text

    answer = ask(kb_lab, "What changed since the baseline?", "drift")
    assert f"Against the baseline snapshot {kb_lab['baseline'][:12]}" in answer.answer
    assert first_at(answer.answer, "westtek-api-pkg upgraded from 1.0.0") < first_at(
        answer.answer, "notebook analysis.ipynb modified"
    )
