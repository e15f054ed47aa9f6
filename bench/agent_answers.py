"""Answer-level evaluation of the agents: their answers checked for the facts a right one holds.

The retrieval evaluation (``kb.py``) asks whether the right passage is found; this one asks
whether the *answer* is right. It builds the agents' test lab (``tests/core/agents``'s
builders: a real venv with ``westtek-api-pkg`` 1.0.0 whose API changes in 2.0.0, the lab's
notebooks, requirement pins and experiment log, a baseline snapshot, the knowledge base
ingested) with the drift watcher running, then drifts it as a researcher would:

1. ``pip install`` of ``westtek-api-pkg`` 1.5.0 and then 2.0.0 (offline wheels, ``--no-index``;
   1.5.0 is the stale version a right answer never states), an edit of ``figures.ipynb``'s
   first cell, ``data/measurements.csv`` rewritten and ``data/calibration-2.csv`` added,
   the ``research`` kernel's display name and ``jupyter_server_config.py`` changed; the
   questions of phase ``drift`` are asked once the watcher has seen all of it;
2. a second snapshot (not made the baseline), then a new cell in ``analysis.ipynb``; the
   questions of phase ``second-snapshot`` are asked.

Every question of ``agent_answers.json`` goes through ``AgentLoop(provider="offline").ask``
with a fresh ``ToolContext`` (as the server makes one per request), timed. Each names the
facts a right answer must contain — a regular expression it must match, one it must not
(a stale version, a secret), several that must come in order (environment changes before
notebook and data changes), a citation it must carry — and is scored automatically:
facts found / facts required, per question and overall, and the latency of each answer
(median, p95).

Runs in a network namespace with only loopback up (``unshare --net``) where the machine
allows it; everything is in a temporary directory, bounded to 15 minutes. Writes
``bench/results/agent_answers.json`` and the table between
``<!-- bench:agent_answers:start -->`` and ``<!-- bench:agent_answers:end -->`` in
bench/README.md.

    .venv/bin/python bench/agent_answers.py               # about a minute
    .venv/bin/python bench/agent_answers.py --no-readme   # print only, leave files alone
    .venv/bin/python bench/agent_answers.py --only 1,2 --show   # some questions, answers shown
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(BENCH))

from benchlib import cpu_model, log, reexec_offline, replace_readme_block, summary  # noqa: E402

from tests.core.agents.conftest import (  # noqa: E402
    API_V1,
    ENVIRONMENT,
    build_api_wheel,
    build_api_wheels,
    build_knowledge_base,
    build_lab,
    notebook,
)
from tests.core.conftest import build_research_env, build_wheelhouse  # noqa: E402

QUESTIONS = BENCH / "agent_answers.json"
RESULTS = BENCH / "results" / "agent_answers.json"
MARK_BEGIN = "<!-- bench:agent_answers:start -->"
MARK_END = "<!-- bench:agent_answers:end -->"
_NETNS_FLAG = "WESTTEK_BENCH_AGENT_ANSWERS_NETNS"
RUN_TIMEOUT = 15 * 60
WATCH_TIMEOUT = 60.0  # seconds for the watcher to see one drift

SECTION = """
## agent answers

`agent_answers.py` evaluates the agents' *answers* (the retrieval evaluation is `kb.py`'s
step 1): the agents' test lab (a real venv, `westtek-api-pkg` whose API changes between
1.0.0 and 2.0.0, the lab's notebooks, pins and experiment log, a baseline snapshot, the
knowledge base, the drift watcher running) is drifted as a researcher would — `pip
install` of 1.5.0 then 2.0.0 (offline), a notebook cell edited, a data file rewritten and
one added, the kernel's display name and `jupyter_server_config.py` changed; later a
second snapshot and a new notebook cell — and every question of `agent_answers.json` is
put to the offline agent (`AgentLoop(provider="offline")`, a fresh `ToolContext` each).
Each question lists the facts a right answer must contain: text it must hold (versions
before → after, the notebook, the API that changed), text it must not (the stale 1.5.0, a
secret of the config file), an order (environment changes before notebook and data
changes) and the citations it must carry. Scored automatically; latency is `ask`'s wall
time.

```
.venv/bin/python bench/agent_answers.py               # about a minute
.venv/bin/python bench/agent_answers.py --no-readme   # print only
```

Raw answers and every check go to `bench/results/agent_answers.json`; the table below is
rewritten by every run without `--no-readme`.
"""


# --------------------------------------------------------------------------- scoring


def fill(pattern: str, values: Mapping[str, str]) -> str:
    """A question's pattern with ``{baseline}``, ``{latest}`` (and ``…12``) filled in."""
    for key, value in values.items():
        pattern = pattern.replace("{" + key + "}", re.escape(value))
    return pattern


def check(fact: Mapping[str, Any], answer: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    """Whether one required fact holds of an answer (``ask --json``'s shape)."""
    text = str(answer["answer"])
    if "re" in fact:
        return re.search(fill(fact["re"], values), text, re.M) is not None
    if "absent" in fact:
        return re.search(fill(fact["absent"], values), text, re.M) is None
    if "order" in fact:
        at = 0
        for pattern in fact["order"]:
            found = re.compile(fill(pattern, values)).search(text, at)
            if found is None:
                return False
            at = found.end()
        return True
    if "cite" in fact:
        source = fill(fact["cite"]["source"], values)
        locator = fill(fact["cite"].get("locator", ".*"), values)
        return any(
            re.fullmatch(source, c["source"]) and re.fullmatch(locator, c["locator"])
            for c in answer["citations"]
        )
    if fact.get("no_citations"):
        return not answer["citations"]
    raise ValueError(f"a fact needs re, absent, order, cite or no_citations: {fact}")


def score(
    question: Mapping[str, Any], answer: Mapping[str, Any], values: Mapping[str, str]
) -> dict[str, Any]:
    """Every required fact of one question checked against its answer."""
    checks = [{"fact": f["fact"], "ok": check(f, answer, values)} for f in question["facts"]]
    return {
        "found": sum(c["ok"] for c in checks),
        "required": len(checks),
        "missed": [c["fact"] for c in checks if not c["ok"]],
        "checks": checks,
    }


# --------------------------------------------------------------------------- the lab


def pip(python: Path, wheels: Path, requirement: str) -> float:
    """``pip install --no-index`` one requirement into the lab's venv; seconds it took."""
    started = time.monotonic()
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels),
         "--disable-pip-version-check", requirement],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return time.monotonic() - started


def wait_for(service: Any, what: str, seen: Callable[[list[dict[str, Any]]], bool]) -> float:
    """Wait until the watcher's drift report satisfies ``seen``; seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < WATCH_TIMEOUT:
        if seen(service.drift_state()["changes"]):
            return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError(f"the drift watcher did not see {what} within {WATCH_TIMEOUT:.0f} s")


def has(kind: str, name: str, after: str | None = None) -> Callable[[list[dict[str, Any]]], bool]:
    """A predicate: the report has a change of ``kind`` to ``name`` (reaching ``after``)."""

    def seen(changes: list[dict[str, Any]]) -> bool:
        return any(
            c["kind"] == kind
            and str(c["name"]).endswith(name)
            and (after is None or c["after"] == after)
            for c in changes
        )

    return seen


def drift_the_lab(lab: dict[str, Any], wheels: Path) -> dict[str, float]:
    """Phase ``drift``: what a week of work does to an environment, each step seen live."""
    service, workspace = lab["service"], lab["workspace"]
    timings: dict[str, float] = {}
    timings["pip 1.5.0"] = pip(lab["python"], wheels, "westtek-api-pkg==1.5.0")
    timings["seen 1.5.0"] = wait_for(service, "1.5.0", has("package", "api-pkg", "1.5.0"))
    timings["pip 2.0.0"] = pip(lab["python"], wheels, "westtek-api-pkg==2.0.0")
    timings["seen 2.0.0"] = wait_for(service, "2.0.0", has("package", "api-pkg", "2.0.0"))

    figures = workspace / "figures.ipynb"
    figures.write_text(
        figures.read_text().replace(
            "Figure 3 shows the decay fit.", "Figure 3 shows the decay fit, refit on new data."
        )
    )
    (workspace / "data" / "measurements.csv").write_text(
        "t,x\n" + "".join(f"{i},{i * i + 1}\n" for i in range(6000))
    )
    (workspace / "data" / "calibration-2.csv").write_text("gain,offset\n1.71,0.02\n")
    kernel_json = Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels" / "research" / "kernel.json"
    spec = json.loads(kernel_json.read_text())
    kernel_json.write_text(json.dumps({**spec, "display_name": "Research (GPU)"}))
    config = Path(os.environ["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.py"
    config.write_text(config.read_text() + "c.ServerApp.iopub_data_rate_limit = 1e7\n")

    def everything(changes: list[dict[str, Any]]) -> bool:
        return all(
            predicate(changes)
            for predicate in (
                has("package", "api-pkg", "2.0.0"),
                has("notebook", "figures.ipynb"),
                has("data", "measurements.csv"),
                has("data", "calibration-2.csv"),
                has("kernel", "research"),
                has("config", "jupyter_server_config.py"),
            )
        )

    timings["seen the rest"] = wait_for(service, "the workspace, kernel and config", everything)
    return timings


def second_snapshot(lab: dict[str, Any]) -> tuple[str, float]:
    """Phase ``second-snapshot``: a snapshot that is not the baseline, then a new cell."""
    from westtek_core.capture import capture_environment
    from westtek_core.snapshot import create_snapshot

    latest = create_snapshot(
        lab["repo"],
        capture_environment([str(lab["python"])], lab["workspace"]),
        note="after the api upgrade",
        environment_id=ENVIRONMENT,
        created_by="alice",
    ).id
    analysis = lab["workspace"] / "analysis.ipynb"
    cells = json.loads(analysis.read_text())["cells"]
    source = [(c["cell_type"], "".join(c["source"])) for c in cells]
    source.append(("code", "import wtyaml\nprint(wtyaml.__name__)"))
    analysis.write_text(notebook(source))
    return latest, wait_for(lab["service"], "the new cell", has("notebook", "analysis.ipynb"))


# --------------------------------------------------------------------------- asking


def ask_all(
    lab: dict[str, Any],
    kb: Any,
    questions: Sequence[Mapping[str, Any]],
    values: dict[str, str],
    show: bool = False,
) -> list[dict[str, Any]]:
    """Each question to the offline agent (a fresh context each), timed and scored."""
    from westtek_core.agents import AgentLoop, ToolContext

    loop = AgentLoop(provider="offline")
    rows = []
    for question in questions:
        ctx = ToolContext(lab["service"], kb)
        started = time.monotonic()
        answer = loop.ask(ctx, question["question"], question["agent"])
        elapsed = time.monotonic() - started
        result = answer.to_json()
        scored = score(question, result, values)
        log(
            f"  {question['id']:>2} {question['agent']:<8} {scored['found']}/{scored['required']}"
            f" {elapsed * 1000:6.0f} ms  {question['question']}"
        )
        if show:
            cited = ", ".join(f"[{n}] {c['source']} {c['locator']}" for n, c in
                              enumerate(result["citations"], start=1))  # fmt: skip
            log(f"{result['answer']}\n  citations: {cited}\n  missed: {scored['missed']}")
        rows.append(
            {
                "id": question["id"],
                "phase": question["phase"],
                "agent": question["agent"],
                "question": question["question"],
                "latency_s": elapsed,
                **scored,
                "answer": result,
            }
        )
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the lab, drift it, ask every question; the results."""
    questions = json.loads(QUESTIONS.read_text())["questions"]
    if args.only:
        wanted = {int(i) for i in args.only.split(",")}
        questions = [q for q in questions if q["id"] in wanted]
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="westtek-agent-answers-") as tmp_name:
        tmp = Path(tmp_name)
        log("building the wheels and the lab (a venv, notebooks, a baseline snapshot)")
        wheelhouse = build_wheelhouse(tmp / "wheels")
        api_wheels = build_api_wheels(tmp / "api")
        build_api_wheel(tmp / "api", "1.5.0", API_V1)  # the same API: an in-between release
        env = build_research_env(tmp / "lab", wheelhouse, os.environ.__setitem__)
        lab = build_lab(env, api_wheels, tmp / "lab")
        service = lab["service"]
        try:
            kb = build_knowledge_base(lab, tmp / "kb" / "lab.sqlite")
            build_s = time.monotonic() - began
            service.start_watching()
            if not service.wait_watching(WATCH_TIMEOUT):
                raise TimeoutError("the drift watcher did not start")
            log("drifting the lab")
            timings = drift_the_lab(lab, api_wheels)
            values = {"baseline": lab["baseline"], "baseline12": lab["baseline"][:12]}
            log("asking (phase drift)")
            drift = [q for q in questions if q["phase"] == "drift"]
            rows = ask_all(lab, kb, drift, values, args.show)
            latest, timings["seen the new cell"] = second_snapshot(lab)
            values |= {"latest": latest, "latest12": latest[:12]}
            log("asking (phase second-snapshot)")
            later = [q for q in questions if q["phase"] == "second-snapshot"]
            rows += ask_all(lab, kb, later, values, args.show)
            kb.close()
        finally:
            service.stop()
            lab["events"].close()
    return {
        "questions": rows,
        "found": sum(r["found"] for r in rows),
        "required": sum(r["required"] for r in rows),
        "perfect": sum(r["found"] == r["required"] for r in rows),
        "latency_s": summary([r["latency_s"] for r in rows]),
        "drift_steps_s": timings,
        "facts": {
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": time.monotonic() - began,
            "build_s": build_s,
            "cpus": os.cpu_count(),
            "cpu": cpu_model(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "git": git_revision(),
            "load_end": os.getloadavg()[0],
            "offline": bool(os.environ.get(_NETNS_FLAG)),
        },
    }


def git_revision() -> str:
    """The checked-out commit, short, and how many files differ from it."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True, cwd=REPO_ROOT,
    ).stdout.splitlines()  # fmt: skip
    return (head or "unknown") + (f" (+{len(dirty)} uncommitted files)" if dirty else "")


# --------------------------------------------------------------------------- report


def render(results: Mapping[str, Any]) -> str:
    """The README block: one row per question, then the totals."""
    facts, latency = results["facts"], results["latency_s"]
    network = "none (unshare --net, loopback only)" if facts["offline"] else "not isolated"
    lines = [
        f"Latest run: {facts['when']}, {facts['seconds']:.0f} s in all (building the lab "
        f"{facts['build_s']:.0f} s); offline agent, {len(results['questions'])} questions.",
        "",
        "| # | agent | question | facts found / required | latency (ms) | missed |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["questions"]:
        missed = "; ".join(row["missed"]) or "—"
        phase = " (after a 2nd snapshot)" if row["phase"] == "second-snapshot" else ""
        lines.append(
            f"| {row['id']} | {row['agent']} | {row['question']}{phase} | "
            f"{row['found']} / {row['required']} | {row['latency_s'] * 1000:.0f} | {missed} |"
        )
    share = results["found"] / max(results["required"], 1)
    lines += [
        f"| | | **all** | **{results['found']} / {results['required']}** ({share:.1%}); "
        f"{results['perfect']} of {len(results['questions'])} answers complete | "
        f"median {latency['median'] * 1000:.0f}, p95 {latency['p95'] * 1000:.0f} | |",
        "",
        "Drift applied, each seen by the watcher before asking: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in results["drift_steps_s"].items())
        + ".",
        "",
        f"Machine: {facts['cpus']} cores ({facts['cpu'] or 'unknown CPU'}), "
        f"{facts['platform']}, Python {facts['python']}; westtek git {facts['git']}; load "
        f"average (1 min) at the end {facts['load_end']:.1f}. Network: {network}.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation; write the JSON and the README table unless told not to."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", help="comma-separated question ids (prints only)")
    parser.add_argument("--no-readme", action="store_true", help="print, do not write files")
    parser.add_argument("--show", action="store_true", help="log every answer and what it missed")
    args = parser.parse_args(args_list)
    code = reexec_offline(__file__, args_list, _NETNS_FLAG, RUN_TIMEOUT + 60)
    if code is not None:
        return code
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    def give_up() -> None:
        log("time bound hit")
        os._exit(124)

    bound = threading.Timer(RUN_TIMEOUT, give_up)
    bound.daemon = True
    bound.start()
    results = run(args)
    bound.cancel()
    block = render(results)
    print(block)
    if args.no_readme or args.only:
        return 0
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    replace_readme_block(MARK_BEGIN, MARK_END, block, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
