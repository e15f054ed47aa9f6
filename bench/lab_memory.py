"""Benchmark the lab memory (issue 19): a lab's knowledge base built from its stored snapshots.

The lab is real material: the 81 example notebooks of the statsmodels 0.15.0 sdist (the
tests' cache, ``tests/example_notebooks.py``), split among six researchers, each
researcher's notebooks written as a real snapshot into one lab store (as the hub service
keeps it) and added to a ``LabMemory`` the way the hub service adds a reported snapshot.
The evaluation set (``bench/lab_memory_eval.json``) holds successor questions written by
reading the notebooks before any search over the lab was run, each with the environment
and notebook path that answers it.

1. **lab**: notebooks split round-robin by sorted file name among ana, ben, chloe, dev, eli
   and fay; each researcher's first notebook is kept as ``analysis.ipynb``, so six
   researchers have a notebook of that name with six different contents. One snapshot
   per researcher (``tests.store_contents.store_snapshot``) into one store, then
   ``LabMemory.add_snapshot`` for each (store opened and closed around it, as the hub
   service does).
2. **quality**: every question through ``LabMemory.search(q, 5)``: recall@5 (the expected
   environment and path among the citations of the 5 passages), hit@1, and MRR@10 from
   ``search(q, 10)``; split by whether the question names the researcher, and for the
   questions whose answer is an ``analysis.ipynb``.
3. **answer time**: every question put to the Knowledge Transfer agent offline,
   ``AgentLoop(provider="offline").ask(ToolContext(service, None, lab_memory), q,
   "transfer")``: the server's own workspace is empty (no index of its own) and
   ``lab_memory`` answers ``search(query, k)`` in-process from the lab's ``LabMemory`` in
   the shape of ``LabMemoryClient.search`` (the hub service's ``knowledge/search``
   results, each with its ``citation``) — no HTTP. One warm-up answer, then median and
   p95 of every question; the bare ``LabMemory.search(q, 5)`` times of step 2 beside them.
4. **index update** after a 100-notebook snapshot: the 81 notebooks plus 19 of them again
   under ``rerun-1/``, stored as one snapshot of a new environment; timed into a fresh
   memory (cold), then a second snapshot of the same 100 notebooks with one changed (a
   markdown cell appended) added to the same memory (incremental). Fresh store and memory
   per repetition; medians.

The run re-executes itself in a network namespace with only loopback up (``unshare
--net``) when the machine allows it and has a time bound. The table goes into
``bench/README.md`` between the ``bench:lab_memory`` markers and the raw numbers into
``bench/results/lab_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
sys.path.insert(0, str(REPO_ROOT))  # the tests' notebook cache and snapshot writer are reused
from benchlib import (  # noqa: E402
    log,
    machine_facts,
    reexec_offline,
    replace_readme_block,
    run_step,
    summary,
    verdict,
)

from tests.example_notebooks import DEFAULT_CACHE  # noqa: E402
from tests.store_contents import store_snapshot  # noqa: E402

EVAL_SET = BENCH / "lab_memory_eval.json"
RESULTS = BENCH / "results" / "lab_memory.json"
MARK_START = "<!-- bench:lab_memory:start -->"
MARK_END = "<!-- bench:lab_memory:end -->"
SECTION = "## Lab memory (issue 19)\n\n`lab_memory.py` measures the lab's memory."
NOTEBOOKS = DEFAULT_CACHE / "statsmodels"
RESEARCHERS = ("ana", "ben", "chloe", "dev", "eli", "fay")
SHARED_NAME = "analysis.ipynb"  # each researcher's first notebook is kept under this name
LAB_ID = "bench-lab"
NEWCOMER = "gus"  # the environment of the 100-notebook snapshot
UPDATE_NOTEBOOKS = 100
TARGETS = {"recall_at_5": 0.9, "answer_s": 1.0, "update_s": 5.0}
MIN_QUESTIONS = 60
RUN_TIMEOUT = 15 * 60  # the whole run, in seconds
_NETNS_FLAG = "WESTTEK_BENCH_LAB_MEMORY_NETNS"
_NAMES = re.compile(r"\b(" + "|".join(RESEARCHERS) + r")\b")


# --------------------------------------------------------------------------- the lab


def notebook_files(root: Path) -> list[Path]:
    """The real notebooks, sorted by name; a clear error when the cache is missing."""
    found = sorted(root.glob("*.ipynb")) if root.is_dir() else []
    if not found:
        raise SystemExit(
            f"no example notebooks under {root}: run `.venv/bin/python -m "
            "tests.example_notebooks` once (it downloads the statsmodels sdist), "
            "or pass --notebooks DIR"
        )
    return found


def lab_layout(notebooks: list[Path]) -> dict[str, dict[str, Path]]:
    """Each researcher's workspace: path in the snapshot -> the real notebook it holds."""
    layout: dict[str, dict[str, Path]] = {who: {} for who in RESEARCHERS}
    for number, notebook in enumerate(notebooks):
        who = RESEARCHERS[number % len(RESEARCHERS)]
        layout[who][SHARED_NAME if number < len(RESEARCHERS) else notebook.name] = notebook
    return layout


def load_questions(layout: dict[str, dict[str, Path]]) -> list[dict[str, Any]]:
    """The questions, checked: enough of them, and every expected notebook is in the lab."""
    data = json.loads(EVAL_SET.read_text())
    if tuple(data["lab"]["researchers"]) != RESEARCHERS:
        raise RuntimeError(f"{EVAL_SET} describes another lab: {data['lab']['researchers']}")
    questions: list[dict[str, Any]] = data["questions"]
    if len(questions) < MIN_QUESTIONS:
        raise RuntimeError(f"{EVAL_SET} has {len(questions)} questions, < {MIN_QUESTIONS}")
    for q in questions:
        if q["path"] not in layout.get(q["environment_id"], {}):
            raise RuntimeError(f"question {q['id']}: {q['environment_id']}/{q['path']} not in lab")
        q["names_researcher"] = bool(_NAMES.search(q["question"]))
    return questions


def add_snapshot(memory: Any, store: Path, snapshot_id: str, environment_id: str) -> Any:
    """Add a stored snapshot as the hub service does: open the store, add, close."""
    from westtek_core.store import Repository

    repo = Repository.open(str(store), create=False, cache_dir=store.parent / "cache")
    try:
        return memory.add_snapshot(repo, snapshot_id, environment_id, environment_id)
    finally:
        repo.close()


def build_lab(layout: dict[str, dict[str, Path]], tmp: Path) -> dict[str, Any]:
    """One snapshot per researcher into one store, each added to a fresh lab memory."""
    from westtek_core.kb.embedding import shared_embedder
    from westtek_core.kb.lab_memory import LabMemory

    started = time.perf_counter()
    shared_embedder()
    embedder_s = time.perf_counter() - started
    store = tmp / "stores" / LAB_ID
    snapshots, store_s = {}, {}
    for who, files in layout.items():
        started = time.perf_counter()
        contents = {path: notebook.read_bytes() for path, notebook in files.items()}
        snapshots[who] = store_snapshot(store, who, contents)
        store_s[who] = time.perf_counter() - started
    memory = LabMemory(tmp / "kb", LAB_ID)
    added = {}
    for who, snapshot_id in snapshots.items():
        started = time.perf_counter()
        report = add_snapshot(memory, store, snapshot_id, who)
        added[who] = {
            "seconds": time.perf_counter() - started,
            "notebooks": len(layout[who]),
            "ingested": len(report.ingested),
            "failed": report.failed,
            "chunks": report.chunks,
        }
        log(f"  {who}: {len(layout[who])} notebooks added in {added[who]['seconds']:.2f} s")
    return {
        "memory": memory,
        "snapshots": snapshots,
        "embedder_load_s": embedder_s,
        "store_s": store_s,
        "added": added,
        "notebooks": {who: sorted(files) for who, files in layout.items()},
    }


# --------------------------------------------------------------------------- quality


def _cited(found: Sequence[tuple[Any, Any]]) -> list[dict[str, str]]:
    return [
        {"environment_id": c.environment_id, "path": c.path, "kind": r.kind, "locator": c.locator}
        for r, c in found
    ]


def _rank(cited: list[dict[str, str]], environment_id: str, path: str) -> int | None:
    """0-based position of the first passage from the expected environment's notebook."""
    for number, c in enumerate(cited):
        if (c["environment_id"], c["path"]) == (environment_id, path):
            return number
    return None


def _scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    if not n:
        return {"n": 0}
    return {
        "n": n,
        "recall_at_5": sum(r["rank_at_5"] is not None for r in rows) / n,
        "hit_at_1": sum(r["rank_at_5"] == 0 for r in rows) / n,
        "mrr_at_10": sum(1 / (r["rank_at_10"] + 1) for r in rows if r["rank_at_10"] is not None)
        / n,
    }


def bench_quality(memory: Any, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """recall@5, hit@1 and MRR@10 of ``LabMemory.search``; the k=5 search times."""
    memory.search(questions[0]["question"], 5)  # warm-up: loads the vectors
    rows, seconds = [], []
    for q in questions:
        started = time.perf_counter()
        top5 = _cited(memory.search(q["question"], 5))
        seconds.append(time.perf_counter() - started)
        top10 = _cited(memory.search(q["question"], 10))
        env, path = q["environment_id"], q["path"]
        row = {
            "id": q["id"],
            "names_researcher": q["names_researcher"],
            "shared_name": path == SHARED_NAME,
            "rank_at_5": _rank(top5, env, path),
            "rank_at_10": _rank(top10, env, path),
            "top5": top5,
        }
        if row["rank_at_5"] is None:
            deeper = _cited(memory.search(q["question"], 50))
            row["rank_at_50"] = _rank(deeper, env, path)
            row["same_name_other_researcher"] = any(
                c["path"] == path and c["environment_id"] != env for c in top5
            )
            also = set(q.get("also_plausible", []))
            row["also_plausible_in_top5"] = sorted(
                {f"{c['environment_id']}/{c['path']}" for c in top5} & also
            )
        rows.append(row)
    return {
        "all": _scores(rows),
        "names_researcher": _scores([r for r in rows if r["names_researcher"]]),
        "no_researcher": _scores([r for r in rows if not r["names_researcher"]]),
        "shared_name": _scores([r for r in rows if r["shared_name"]]),
        "non_notebook_in_top5": sum(
            1 for r in rows for c in r["top5"] if c["kind"] not in ("notebook", "experiment")
        ),
        "search_ms": {k: v * 1000 if k != "n" else v for k, v in summary(seconds).items()},
        "questions": rows,
    }


# --------------------------------------------------------------------------- answers


class InProcessLabMemory:
    """``LabMemoryClient.search`` answered in-process from one lab's ``LabMemory``.

    The result shape is the hub service's ``knowledge/search`` (``westtek_hub.knowledge``):
    each passage's JSON with ``lab_id`` and its ``citation``; no HTTP in between.
    """

    def __init__(self, memory: Any, lab_id: str) -> None:
        self.memory = memory
        self.lab_id = lab_id
        self.seconds = 0.0

    def search(self, query: str, k: int = 5) -> list[dict[str, Any]]:
        """Cited passages, best first (each with ``citation``: environment, snapshot, path)."""
        started = time.perf_counter()
        try:
            return [
                result.to_json() | {"lab_id": self.lab_id, "citation": citation.to_json()}
                for result, citation in self.memory.search(query, k)
            ]
        finally:
            self.seconds += time.perf_counter() - started


def bench_answers(memory: Any, tmp: Path, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """Every question through the offline Knowledge Transfer agent over the lab's memory."""
    from westtek_core.agents import AgentLoop, ToolContext
    from westtek_core.drift.events import EventLog
    from westtek_core.environment_service import EnvironmentService

    workspace = tmp / "successor-home"
    workspace.mkdir()
    service = EnvironmentService(
        store=str(tmp / "successor-store"),
        key_file=tmp / "successor.key",
        root=workspace,
        pythons=[],
        environment_id="successor",
        event_log=EventLog(tmp / "successor-events.sqlite"),
    )
    lab = InProcessLabMemory(memory, LAB_ID)
    loop = AgentLoop(provider="offline")
    started = time.perf_counter()
    loop.ask(ToolContext(service, None, lab), questions[0]["question"], "transfer")  # type: ignore[arg-type]
    warm_up_s = time.perf_counter() - started
    answers = []
    for q in questions:
        lab.seconds = 0.0
        started = time.perf_counter()
        answer = loop.ask(ToolContext(service, None, lab), q["question"], "transfer")  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        env, path = q["environment_id"], q["path"]
        answers.append(
            {
                "id": q["id"],
                "seconds": seconds,
                "lab_search_s": lab.seconds,
                "tools": list(answer.tools_called),
                "citations": len(answer.citations),
                "cites_expected": any(
                    c.environment_id == env and c.source == f"{env}/{path}"
                    for c in answer.citations
                ),
            }
        )
    return {
        "warm_up_s": warm_up_s,
        "seconds": summary([a["seconds"] for a in answers]),
        "lab_search_s": summary([a["lab_search_s"] for a in answers]),
        "cites_expected": sum(a["cites_expected"] for a in answers),
        "answers": answers,
    }


# --------------------------------------------------------------------------- index update


def update_snapshot(notebooks: list[Path]) -> dict[str, bytes]:
    """100 notebooks: the real ones, then as many again under ``rerun-N/`` as are needed."""
    files = {f"notebooks/{n.name}": n.read_bytes() for n in notebooks}
    number = 0
    while len(files) < UPDATE_NOTEBOOKS:
        notebook = notebooks[number % len(notebooks)]
        files[f"notebooks/rerun-{number // len(notebooks) + 1}/{notebook.name}"] = (
            notebook.read_bytes()
        )
        number += 1
    return files


def changed_one(files: dict[str, bytes], rep: int) -> tuple[dict[str, bytes], str]:
    """The same notebooks with the first one changed: a markdown cell appended."""
    path = sorted(files)[0]
    nb = json.loads(files[path])
    cell: dict[str, Any] = {
        "cell_type": "markdown",
        "metadata": {},
        "source": f"Re-ran with the seasonal period fixed at 12 (bench repetition {rep}).",
    }
    if nb.get("nbformat_minor", 0) >= 5:
        cell["id"] = f"bench-rerun-{rep}"
    nb["cells"].append(cell)
    return {**files, path: json.dumps(nb, indent=1).encode()}, path


def bench_update(notebooks: list[Path], tmp: Path, reps: int) -> dict[str, Any]:
    """A 100-notebook snapshot into a fresh memory (cold), then one with a notebook changed."""
    from westtek_core.kb.lab_memory import LabMemory

    files = update_snapshot(notebooks)
    runs = []
    for rep in range(reps):
        base = tmp / f"update-{rep}"
        store = base / "stores" / LAB_ID
        changed, changed_path = changed_one(files, rep)
        first = store_snapshot(store, NEWCOMER, files)
        second = store_snapshot(store, NEWCOMER, changed)
        memory = LabMemory(base / "kb", LAB_ID)
        try:
            started = time.perf_counter()
            cold = add_snapshot(memory, store, first, NEWCOMER)
            cold_s = time.perf_counter() - started
            started = time.perf_counter()
            incremental = add_snapshot(memory, store, second, NEWCOMER)
            incremental_s = time.perf_counter() - started
        finally:
            memory.close()
        notebooks_in = [s for s in incremental.ingested if s.endswith(".ipynb")]
        runs.append(
            {
                "cold_s": cold_s,
                "incremental_s": incremental_s,
                "cold_ingested": len(cold.ingested),
                "cold_chunks": cold.chunks,
                "cold_failed": len(cold.failed),
                "incremental_notebooks_ingested": notebooks_in,
                "incremental_unchanged": incremental.unchanged,
                "changed": f"{NEWCOMER}/{changed_path}",
            }
        )
        log(f"  rep {rep + 1}: cold {cold_s:.2f} s, incremental {incremental_s:.2f} s "
            f"(re-indexed {notebooks_in})")  # fmt: skip
    return {
        "notebooks": len(files),
        "real": len(notebooks),
        "cold_s": summary([r["cold_s"] for r in runs]),
        "incremental_s": summary([r["incremental_s"] for r in runs]),
        "runs": runs,
    }


# --------------------------------------------------------------------------- report


def _scores_cell(s: dict[str, Any]) -> str:
    if not s.get("n"):
        return "—"
    return f"{s['recall_at_5']:.3f} / {s['mrr_at_10']:.3f} ({s['n']})"


def render(result: dict[str, Any]) -> str:
    """The Markdown block written between the README markers."""
    lab = result.get("lab", {})
    quality = result.get("quality", {})
    answers = result.get("answers", {})
    update = result.get("update", {})
    lines = [
        f"Latest run: {result['date']}, {result['elapsed_s']:.0f} s in all; "
        f"{result['notebook_count']} real notebooks (statsmodels 0.15.0 examples) in "
        f"{len(RESEARCHERS)} researchers' snapshots, {result['question_count']} questions "
        f"({result['naming_count']} name the researcher).",
        "",
        "| measure | measured | target | verdict |",
        "|---|---|---|---|",
    ]
    if "all" in quality:
        s = quality["all"]
        lines.append(
            f"| 1. recall@5: expected environment and notebook among the top-5 citations "
            f"| {s['recall_at_5']:.3f} ({round(s['recall_at_5'] * s['n'])} of {s['n']}) | ≥ 0.9 "
            f"| {verdict(s['recall_at_5'], TARGETS['recall_at_5'], at_least=True)} |"
        )
        lines.append(f"| 1b. MRR@10 / hit@1 | {s['mrr_at_10']:.3f} / {s['hit_at_1']:.3f} | — | — |")
    else:
        lines.append(f"| 1. recall@5 | failed: {quality.get('error', 'not run')} | ≥ 0.9 | — |")
    if "seconds" in answers:
        s = {k: v * 1000 if k != "n" else v for k, v in answers["seconds"].items()}
        lines.append(
            f"| 2. offline answer, Knowledge Transfer agent over the lab memory (ms), "
            f"{s['n']} questions | median {s['median']:.0f}, p95 {s['p95']:.0f}, max "
            f"{s['max']:.0f} | ≤ 1000 | {verdict(s['p95'], TARGETS['answer_s'] * 1000)} on "
            f"the p95 |"
        )
    else:
        failed = answers.get("error", "not run")
        lines.append(f"| 2. offline answer | failed: {failed} | ≤ 1 s | — |")
    if "search_ms" in quality:
        s = quality["search_ms"]
        lines.append(
            f"| 2b. `LabMemory.search(q, 5)` alone (ms) | median {s['median']:.1f}, "
            f"p95 {s['p95']:.1f} | — | — |"
        )
    if "cold_s" in update:
        n = update["notebooks"]
        kinds = {"cold_s": "cold (new index)", "incremental_s": "incremental (1 changed)"}
        for key, label in kinds.items():
            s = update[key]
            lines.append(
                f"| 3. index update after a {n}-notebook snapshot, {label} (s), median of "
                f"{s['n']} | {s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f}) | ≤ 5 "
                f"| {verdict(s['median'], TARGETS['update_s'])} |"
            )
    else:
        lines.append(f"| 3. index update | failed: {update.get('error', 'not run')} | ≤ 5 s | — |")
    if "all" in quality:
        lines += [
            "",
            "recall@5 / MRR@10 (n) by kind of question: names the researcher "
            f"{_scores_cell(quality['names_researcher'])}; does not "
            f"{_scores_cell(quality['no_researcher'])}; the answer is one of the six "
            f"`analysis.ipynb` {_scores_cell(quality['shared_name'])}. Passages other than "
            f"notebooks (snapshot summaries, manifests) took {quality['non_notebook_in_top5']} "
            f"of the {5 * quality['all']['n']} top-5 places.",
        ]
        by_id = {q["id"]: q for q in result["question_set"]}
        missed = [r for r in quality["questions"] if r["rank_at_5"] is None]
        lines += ["", f"Missed (expected notebook not in the top 5): {len(missed) or 'none'}."]
        for r in missed:
            q = by_id[r["id"]]
            deeper = r.get("rank_at_50")
            where = f"rank {deeper + 1}" if deeper is not None else "not in the top 50"
            top = ", ".join(f"{c['environment_id']}/{c['path'] or c['kind']}" for c in r["top5"])
            lines.append(
                f"- {r['id']}. “{q['question']}” — expected `{q['environment_id']}/"
                f"{q['path']}` ({where}); top 5: {top}"
            )
        later = [r for r in quality["questions"] if r["rank_at_5"] not in (None, 0)]
        if later:
            lines += ["", "Found, but not first:", ""]
        for r in later:
            q = by_id[r["id"]]
            above = ", ".join(
                f"`{c['environment_id']}/{c['path'] or c['kind']}`"
                for c in r["top5"][: r["rank_at_5"]]
            )
            lines.append(
                f"- {r['id']}. “{q['question']}” — `{q['environment_id']}/{q['path']}` at rank "
                f"{r['rank_at_5'] + 1}, after {above}"
            )
    if "seconds" in answers:
        lab_s = answers["lab_search_s"]
        lines += [
            "",
            f"Step 2: warm-up answer {1000 * answers['warm_up_s']:.0f} ms; inside the answers the "
            f"lab-memory searches took median {1000 * lab_s['median']:.0f} ms (p95 "
            f"{1000 * lab_s['p95']:.0f}); {answers['cites_expected']} of {answers['seconds']['n']}"
            " answers cite the expected environment's notebook"
            + (
                " (not: " + ", ".join(str(a["id"]) for a in uncited) + ")."
                if (uncited := [a for a in answers["answers"] if not a["cites_expected"]])
                else "."
            ),
        ]
    if "cold_s" in update:
        run = update["runs"][0]
        lines += [
            "",
            f"Step 3: {update['real']} real notebooks plus {update['notebooks'] - update['real']}"
            f" of them again under `rerun-1/`, environment `{NEWCOMER}`; the store is opened and"
            f" closed around each addition, as the hub service does. Cold: {run['cold_ingested']}"
            f" sources indexed ({run['cold_chunks']} chunks, {run['cold_failed']} failed); "
            f"incremental: notebooks re-indexed {run['incremental_notebooks_ingested']}, "
            f"{run['incremental_unchanged']} sources unchanged.",
        ]
    if lab.get("added"):
        total = sum(a["seconds"] for a in lab["added"].values())
        lines += [
            "",
            f"Building the lab: {sum(lab['store_s'].values()):.1f} s writing the six snapshots, "
            f"{total:.1f} s adding them to a fresh memory (embedder loaded first, "
            f"{lab['embedder_load_s']:.2f} s).",
        ]
    load = result.get("load", {})
    if load:
        lines += [
            "",
            "Load during each step — other processes' CPU (cores, `/proc/stat` minus this run) "
            "and the 1-min load average at its end: "
            + "; ".join(
                f"{k} {v['other_cpu_cores']:.2f} cores, load {v['loadavg_end'][0]:.1f}"
                for k, v in load.items()
            )
            + ".",
        ]
    m = result["machine"]
    lines += [
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), shared with other jobs, so times are "
        "noisy (this run's load is in the line above); kernel "
        f"{m['kernel']}, Python {m['python']}; westtek git {m['git']}. Network: {m['network']}.",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Build the lab, measure, print the table; keep it unless ``--no-readme``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS,
                        help=f"the example notebooks (default: {NOTEBOOKS})")  # fmt: skip
    parser.add_argument("--reps", type=int, default=3, help="repetitions of the update step")
    parser.add_argument("--no-readme", action="store_true",
                        help="print the table only: no README or results file")  # fmt: skip
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(args_list)
    notebooks = notebook_files(args.notebooks.resolve())  # fails early, before re-executing
    code = reexec_offline(__file__, args_list, _NETNS_FLAG, RUN_TIMEOUT + 60)
    if code is not None:
        return code
    netns = bool(os.environ.get(_NETNS_FLAG))

    layout = lab_layout(notebooks)
    questions = load_questions(layout)
    started_at = time.monotonic()
    result: dict[str, Any] = {
        "notebook_count": len(notebooks),
        "question_count": len(questions),
        "naming_count": sum(q["names_researcher"] for q in questions),
        "question_set": [
            {k: q[k] for k in ("id", "question", "environment_id", "path")} for q in questions
        ],
    }
    load: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="westtek-bench-lab-memory-") as scratch:
        tmp = Path(scratch)
        lab = run_step("build the lab", lambda: build_lab(layout, tmp / "lab"), load)
        memory = lab.pop("memory", None)
        result["lab"] = lab
        if memory is not None:
            try:
                result["quality"] = run_step(
                    "quality", lambda: bench_quality(memory, questions), load
                )
                result["answers"] = run_step(
                    "offline answers", lambda: bench_answers(memory, tmp, questions), load
                )
            finally:
                memory.close()
        result["update"] = run_step(
            "index update", lambda: bench_update(notebooks, tmp, args.reps), load
        )
    result["load"] = load
    result["elapsed_s"] = time.monotonic() - started_at
    result["machine"] = machine_facts(netns, ["westtek_core", "westtek_hub"])
    result["date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    block = render(result)
    print(block)
    if not args.no_readme:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
        replace_readme_block(MARK_START, MARK_END, block, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
