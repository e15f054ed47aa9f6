"""Benchmark the knowledge base (``westtek_core.kb``): retrieval quality, speed, install size.

The material is real: every notebook shipped in the sdists of statsmodels, arch,
linearmodels, esda and giddy (121 notebooks), fetched from the package index by a set-up
step before anything is measured and kept under ``bench/.cache/kb-notebooks``. The
evaluation set (``bench/kb_eval.json``) holds questions written by reading those notebooks,
each with the notebook that answers it.

1. **quality**: every question through ``KnowledgeBase.search(q, k=10, kinds={"notebook"},
   mode=...)`` for hybrid, BM25 alone and embeddings alone, on the same index in the same
   run: recall@5 (the expected notebook among the first 5 passages), MRR@10 and hit@1;
   plus what-if fusions of the index's own two candidate lists (a diagnostic).
2. **search latency** with 1,000 notebooks indexed (the real ones copied into differently
   named directories): median and p95 of hybrid searches over the evaluation questions plus
   headings sampled from the notebooks (≥ 200 queries, seeded), after one warm-up query;
   BM25 and embeddings alone timed interleaved with them, query by query.
3. **ingest rate** of the real notebooks into a fresh index (``ingest_workspace``),
   notebooks per second, median of 3; plus where the time goes, per notebook.
4. **install size** of the embedding choice: wordllama and the installed distributions only
   it needs, against torch alone (the CPU wheel's unpacked size, read from its zip listing
   when the wheel is on this disk) — and the recall it buys (hybrid minus BM25).
5. **offline answer**: ``AgentLoop(provider="offline").ask`` over the same index, if
   ``westtek_core.agents`` is importable; median of the timed questions after a warm-up.

Measurements run in a network namespace with only loopback up (``unshare --net``) when the
machine allows it; every loop is bounded and the run has a time bound. The table goes into
``bench/README.md`` between the ``bench:kb`` markers and the raw numbers into
``bench/results/kb.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.metadata
import json
import os
import pstats
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
sys.path.insert(0, str(REPO_ROOT))  # the tests' example-notebook fetcher is reused below
from benchlib import (  # noqa: E402
    log,
    machine_facts,
    reexec_offline,
    replace_readme_block,
    run_step,
    summary,
    verdict,
)

from tests.example_notebooks import MESONPY_SHIM, download_sdist  # noqa: E402

CACHE = BENCH / ".cache"
SDISTS = CACHE / "sdists"
SHIM = CACHE / "kb-shim"
NOTEBOOKS = CACHE / "kb-notebooks"
EVAL_SET = BENCH / "kb_eval.json"
RESULTS = BENCH / "results" / "kb.json"
PARTIAL_RESULTS = CACHE / "kb-partial.json"  # a partial run's numbers, not committed
README = BENCH / "README.md"
MARK_START = "<!-- bench:kb:start -->"
MARK_END = "<!-- bench:kb:end -->"

# Sdists that ship example notebooks (wheels never do): name, version.
NOTEBOOK_SDISTS = (
    ("statsmodels", "0.15.0"),  # 81 under examples/notebooks/
    ("arch", "8.0.0"),  # 9 under examples/
    ("linearmodels", "7.1"),  # 12 under examples/
    ("esda", "2.9.0"),  # 11 under notebooks/, 2 under tools/
    ("giddy", "2.3.8"),  # 6 under notebooks/
)
MODES = ("hybrid", "bm25", "embedding")
# kb_eval.json's questions by when they were written: the fusion and weighting were chosen
# on the first two sets; the third was written afterwards, blind, to check that choice
QUESTION_SETS = (
    ("1–93", 1, 93),
    ("94–120, written blind after a first choice", 94, 120),
    ("121–160, written blind after choosing", 121, 160),
)
TARGETS = {
    "recall_at_5": 0.9,
    "search_p95_ms": 150.0,
    "ingest_notebooks_per_s": 20.0,
    "offline_answer_s": 1.0,
}
TORCH_MB_ISSUE = 750  # the issue's figure for torch alone
MIN_QUESTIONS, MIN_NOTEBOOKS, MIN_QUERIES = 50, 100, 200
SEED = 20261126
RUN_TIMEOUT = 75 * 60  # the whole run, in seconds
AGENT_QUESTIONS = 10
_NETNS_FLAG = "WESTTEK_BENCH_KB_NETNS"


# --------------------------------------------------------------------------- set-up (network)


def _write_shim() -> None:
    """Stand-ins for the build backends of the sdists above (mesonpy, setuptools).

    pip keeps a downloaded sdist only after building its metadata; with
    ``--no-build-isolation`` and these on ``PYTHONPATH``, the metadata is the sdist's own
    ``PKG-INFO`` (the trick of ``tests/example_notebooks.py``, for one more backend).
    """
    for module in ("mesonpy/__init__.py", "setuptools/build_meta.py"):
        target = SHIM / module
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(MESONPY_SHIM)
    (SHIM / "setuptools" / "__init__.py").write_text("")


def fetch_sdist(name: str, version: str) -> Path:
    """``name==version``'s sdist in ``bench/.cache/sdists`` (downloaded once; network)."""
    sdist = SDISTS / f"{name}-{version}.tar.gz"
    if sdist.exists():
        return sdist
    if name == "statsmodels":
        return download_sdist(CACHE)  # the tests' own fetcher, into the same directory
    _write_shim()
    SDISTS.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "download", "--quiet",
           "--no-deps", "--no-binary", ":all:", "--no-build-isolation", "-d", str(SDISTS),
           f"{name}=={version}"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(SHIM))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if out.returncode != 0 or not sdist.exists():
        raise RuntimeError(f"downloading the {name} sdist failed:\n{out.stderr[-3000:]}")
    return sdist


def extract_all_notebooks(sdist: Path, dest: Path) -> int:
    """Every ``.ipynb`` of an sdist, under ``dest`` with the sdist's own layout."""
    prefix = sdist.name.removesuffix(".tar.gz") + "/"
    count = 0
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".ipynb"):
                target = dest / member.name.removeprefix(prefix)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                target.write_bytes(source.read())
                os.utime(target, (member.mtime, member.mtime))
                count += 1
    return count


def prepare_notebooks(*, fetch: bool = True) -> dict[str, int]:
    """``bench/.cache/kb-notebooks/<package>/…``: the real notebooks (network on first use)."""
    counts: dict[str, int] = {}
    for name, version in NOTEBOOK_SDISTS:
        dest = NOTEBOOKS / name
        done = dest / ".complete"
        if done.exists() and done.read_text().split()[0] == version:
            counts[name] = int(done.read_text().split()[1])
            continue
        if not fetch:
            raise RuntimeError(f"{dest} is missing: run without --skip-fetch once")
        if dest.exists():
            shutil.rmtree(dest)
        counts[name] = extract_all_notebooks(fetch_sdist(name, version), dest)
        done.write_text(f"{version} {counts[name]}\n")
        log(f"{name} {version}: {counts[name]} notebooks")
    return counts


# --------------------------------------------------------------------------- evaluation set


def load_eval_set(root: Path) -> list[dict[str, Any]]:
    """The questions, checked: enough of them, and every expected notebook exists."""
    questions: list[dict[str, Any]] = json.loads(EVAL_SET.read_text())["questions"]
    if len(questions) < MIN_QUESTIONS:
        raise RuntimeError(f"{EVAL_SET} has {len(questions)} questions, < {MIN_QUESTIONS}")
    for q in questions:
        for path in q["expected"]:
            if not (root / path).is_file():
                raise RuntimeError(f"question {q['id']}: {path} is not under {root}")
    return questions


def _rank(results: Sequence[Any], expected: Sequence[str]) -> int | None:
    """0-based position of the first result from an expected notebook, if any."""
    return next((i for i, r in enumerate(results) if r.source in expected), None)


def bench_quality(index: Path, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """recall@5, MRR@10 and hit@1 per search mode, overall and per question style."""
    from westtek_core.kb import KnowledgeBase

    kb = KnowledgeBase(index)
    kb.search("warm-up", k=10, kinds={"notebook"})  # loads the embedding matrix
    ranks: dict[str, dict[int, int | None]] = {mode: {} for mode in MODES}
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for number, q in enumerate(questions):  # modes interleaved, rotating order
            for mode in MODES[number % 3 :] + MODES[: number % 3]:
                started = time.perf_counter()
                results = kb.search(q["question"], k=10, kinds={"notebook"}, mode=mode)
                seconds[mode].append(time.perf_counter() - started)
                ranks[mode][q["id"]] = _rank(results, q["expected"])
    finally:
        kb.close()
    per_mode: dict[str, Any] = {}
    for mode in MODES:
        per_mode[mode] = {
            **_scores(questions, ranks[mode]),
            "by_style": {
                style: _scores([q for q in questions if q["style"] == style], ranks[mode])
                for style in sorted({q["style"] for q in questions})
            },
            "by_set": {
                label: _scores([q for q in questions if low <= q["id"] <= high], ranks[mode])
                for label, low, high in QUESTION_SETS
                if any(low <= q["id"] <= high for q in questions)
            },
            "latency_ms": {k: v * 1000 for k, v in summary(seconds[mode]).items() if k != "n"},
            "ranks": {str(i): r for i, r in ranks[mode].items()},
        }
        log(
            f"  {mode}: recall@5 {per_mode[mode]['recall_at_5']:.3f}, "
            f"MRR@10 {per_mode[mode]['mrr_at_10']:.3f}"
        )
    return {"questions": len(questions), "modes": per_mode}


def _scores(questions: list[dict[str, Any]], ranks: dict[int, int | None]) -> dict[str, Any]:
    found = [ranks[q["id"]] for q in questions]
    n = max(len(found), 1)
    return {
        "n": len(found),
        "recall_at_5": sum(1 for r in found if r is not None and r < 5) / n,
        "mrr_at_10": sum(1 / (r + 1) for r in found if r is not None) / n,
        "hit_at_1": sum(1 for r in found if r == 0) / n,
    }


# The what-ifs: reciprocal-rank fusion, (weight of the embedding ranking, RRF k), and the
# KB's score blend, BM25's share
RRF_GRID = ((1.0, 60), (0.5, 60), (0.3, 60), (1.0, 20), (0.5, 20), (0.3, 20),
            (1.0, 5), (0.5, 5), (0.3, 5))  # fmt: skip
BLEND_GRID = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def fusion_what_ifs(index: Path, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """recall@5 and MRR@10 if the two rankings were fused differently (diagnostic only).

    Takes the index's own BM25 and cosine candidates (its private ``_bm25`` and
    ``_similarities``) and fuses them by weighted RRF over a grid, and by the KB's own
    ``fuse`` at other BM25 shares, keeping one passage per parent as ``search`` does, or one
    per notebook. The row of the KB's own share must reproduce step 1's hybrid figures, else
    the what-ifs are flagged as unfaithful.
    """
    import sqlite3

    from westtek_core.kb import KnowledgeBase
    from westtek_core.kb import index as kb_index

    kb = KnowledgeBase(index)
    engine: Any = kb.index
    if not (hasattr(engine, "_bm25") and hasattr(engine, "_similarities")):
        kb.close()
        return {"not_available": "the index has no _bm25/_similarities to take scores from"}
    try:
        candidates = {
            q["id"]: (engine._bm25(q["question"], {"notebook"}),
                      engine._similarities(q["question"], {"notebook"}))
            for q in questions
        }  # fmt: skip
    finally:
        kb.close()
    with sqlite3.connect(f"file:{index}?mode=ro", uri=True) as db:
        where = {int(r[0]): (int(r[1]), str(r[2])) for r in
                 db.execute("SELECT id, parent_id, source FROM children")}  # fmt: skip

    def order(question_id: int, method: str, weight: float, k: int) -> list[int]:
        bm25, (scores, ids) = candidates[question_id]
        nearest = kb_index._best(scores, ids)
        if method == "blend":
            row = {child: i for i, child in enumerate(ids)}
            return [c for c, _ in kb_index.fuse(bm25, nearest, lambda c: float(scores[row[c]]),
                                                 weight)]  # fmt: skip
        fused: dict[int, float] = {}
        for w, ranking in ((1.0, bm25), (weight, nearest)):
            for rank, (child, _) in enumerate(ranking if w else []):
                fused[child] = fused.get(child, 0.0) + w / (k + rank + 1)
        return sorted(fused, key=lambda child: -fused[child])

    def score(method: str, weight: float, k: int, per: str) -> dict[str, Any]:
        ranks: dict[int, int | None] = {}
        for q in questions:
            seen: set[Any] = set()
            sources: list[str] = []
            for child in order(q["id"], method, weight, k):
                parent, source = where[child]
                key = parent if per == "parent" else source
                if key not in seen:
                    seen.add(key)
                    sources.append(source)
                if len(sources) == 10:
                    break
            ranks[q["id"]] = next((i for i, s in enumerate(sources) if s in q["expected"]), None)
        return {"method": method, "weight": weight, "k": k, "per": per, **_scores(questions, ranks)}

    share = float(getattr(kb_index, "BM25_SHARE", 1.0))
    grid = [("rrf", w, k) for w, k in RRF_GRID]
    grid += [("blend", s, 0) for s in sorted(set(BLEND_GRID) | {share})]
    grid += [("rrf", 0.0, 60)]  # BM25 alone
    rows = [score(m, w, k, per) for per in ("parent", "notebook") for m, w, k in grid]
    return {"current_share": share, "rows": rows}


# --------------------------------------------------------------------------- ingest


def bench_ingest(root: Path, tmp: Path, reps: int) -> dict[str, Any]:
    """``reps`` ingestions of the workspace, each into a fresh index; the last one is kept."""
    from westtek_core.kb import KnowledgeBase

    runs = []
    index = tmp / "ingest-0.sqlite"
    for rep in range(reps):
        index = tmp / f"ingest-{rep}.sqlite"
        kb = KnowledgeBase(index)
        started = time.perf_counter()
        report = kb.ingest_workspace(root)
        seconds = time.perf_counter() - started
        kb.close()
        runs.append(
            {
                "seconds": seconds,
                "notebooks": len(report.ingested),
                "chunks": report.chunks,
                "failed": report.failed,
                "redactions": report.redactions,
                "rate": len(report.ingested) / seconds,
                "index_bytes": sum(p.stat().st_size for p in tmp.glob(f"{index.name}*")),
            }
        )
        log(f"  ingest {rep + 1}: {len(report.ingested)} notebooks in {seconds:.1f} s")
        if rep < reps - 1:
            for leftover in tmp.glob(f"{index.name}*"):
                leftover.unlink()
    return {
        "runs": runs,
        "rate": summary([r["rate"] for r in runs]),
        "seconds": summary([r["seconds"] for r in runs]),
        "index": str(index),
    }


def ingest_breakdown(root: Path) -> dict[str, Any]:
    """Where one ingestion's time goes, per notebook: convert, redact, chunk, embed.

    Uses the KB's own steps (``notebook_document``, ``redact``, ``chunk_document`` and the
    shared embedder) without writing an index.
    """
    from westtek_core.kb.chunking import chunk_document, count_tokens
    from westtek_core.kb.documents import notebook_document
    from westtek_core.kb.embedding import shared_embedder
    from westtek_core.kb.redact import redact
    from westtek_core.notebooks import find_notebooks

    embedder = shared_embedder()
    rows = []
    for relative in find_notebooks(root):
        t0 = time.perf_counter()
        document = notebook_document(root / relative, relative)
        t1 = time.perf_counter()
        for section in document.sections:
            redact(section.text)
        t2 = time.perf_counter()
        children = [c.text for p in chunk_document(document) for c in p.children]
        t3 = time.perf_counter()
        embedder.embed(children)
        t4 = time.perf_counter()
        longest = max(children, key=len, default="")
        tokenizer = getattr(getattr(embedder, "_model", None), "tokenizer", None)
        rows.append(
            {
                "notebook": relative,
                "bytes": (root / relative).stat().st_size,
                "convert_s": t1 - t0,
                "redact_s": t2 - t1,
                "chunk_s": t3 - t2,
                "embed_s": t4 - t3,
                "total_s": t4 - t0,
                "children": len(children),
                "longest_child_chars": len(longest),
                "longest_child_tokens": count_tokens(longest),
                # what the embedder sees: wordllama pads a batch to its longest text
                "longest_child_embedder_tokens": (
                    len(tokenizer.encode(longest).ids) if tokenizer is not None else None
                ),
                "longest_child_words": len(longest.split()),
                "longest_child_has_base64": "base64," in longest,
            }
        )
    rows.sort(key=lambda r: -r["total_s"])
    totals = {k: sum(r[k] for r in rows) for k in ("convert_s", "redact_s", "chunk_s", "embed_s")}
    total = sum(totals.values())
    rest = rows[1:]
    return {
        "totals": totals,
        "total_s": total,
        "slowest": rows[:5],
        "slowest_share": rows[0]["total_s"] / total if total else 0.0,
        "rate_without_slowest": len(rest) / sum(r["total_s"] for r in rest) if rest else None,
    }


# --------------------------------------------------------------------------- latency


def copy_workspace(root: Path, dest: Path, count: int) -> int:
    """``count`` notebooks: the real ones copied round after round into ``lab-NN/`` dirs."""
    from westtek_core.notebooks import find_notebooks

    real = find_notebooks(root)
    made = 0
    for index in range(-(-count // len(real))):  # bounded: ceil(count / real) rounds
        for relative in real:
            if made == count:
                return made
            target = dest / f"lab-{index:02d}" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / relative, target)
            made += 1
    return made


_HEADING = re.compile(r"^#{1,6}\s+(.+)$", re.M)


def latency_queries(root: Path, questions: list[dict[str, Any]], total: int) -> list[str]:
    """The evaluation questions plus distinct headings of the notebooks, seeded, shuffled."""
    from westtek_core.notebooks import find_notebooks

    headings: dict[str, None] = {}
    for relative in find_notebooks(root):
        nb = json.loads((root / relative).read_text(encoding="utf-8"))
        for cell in nb.get("cells", []):
            if cell.get("cell_type") != "markdown":
                continue
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else str(source)
            for match in _HEADING.finditer(text):
                heading = re.sub(r"[`*_\[\]()<>#]|https?://\S+", " ", match.group(1))
                heading = " ".join(heading.split())
                if len(heading.split()) >= 2 and len(heading) <= 120:
                    headings[heading] = None
    rng = random.Random(SEED)
    pool = sorted(headings)
    rng.shuffle(pool)
    queries = [q["question"] for q in questions] + pool[: max(0, total - len(questions))]
    rng.shuffle(queries)
    return queries


def bench_latency(root: Path, tmp: Path, count: int, total_queries: int,
                  questions: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """Ingest ``count`` copied notebooks, then time searches on a freshly opened index."""
    from westtek_core.kb import KnowledgeBase

    workspace = tmp / "copies"
    made = copy_workspace(root, workspace, count)
    index = tmp / "latency.sqlite"
    kb = KnowledgeBase(index)
    started = time.perf_counter()
    report = kb.ingest_workspace(workspace)
    ingest_s = time.perf_counter() - started
    kb.close()
    log(f"  {len(report.ingested)} notebooks ingested in {ingest_s:.1f} s ({report.chunks} chunks)")
    queries = latency_queries(root, questions, total_queries)
    kb = KnowledgeBase(index)
    try:
        started = time.perf_counter()
        kb.search(queries[0], k=5)
        first_ms = (time.perf_counter() - started) * 1000
        # modes interleaved query by query, in rotating order, so load changes hit all alike
        seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
        for number, query in enumerate(queries):
            for mode in MODES[number % 3 :] + MODES[: number % 3]:
                t0 = time.perf_counter()
                kb.search(query, k=5, mode=mode)
                seconds[mode].append(time.perf_counter() - t0)
        per_mode = {}
        for mode in MODES:
            per_mode[mode] = {
                k: v * 1000 if k != "n" else v for k, v in summary(seconds[mode]).items()
            }
            log(
                f"  {mode}: median {per_mode[mode]['median']:.1f} ms, "
                f"p95 {per_mode[mode]['p95']:.1f} ms over {len(seconds[mode])} queries"
            )
    finally:
        kb.close()
    shutil.rmtree(workspace, ignore_errors=True)
    return {
        "notebooks": made,
        "ingested": len(report.ingested),
        "failed": len(report.failed),
        "chunks": report.chunks,
        "ingest_s": ingest_s,
        "ingest_rate": len(report.ingested) / ingest_s,
        "index_bytes": sum(p.stat().st_size for p in tmp.glob("latency.sqlite*")),
        "queries": len(queries),
        "query_kinds": {
            "evaluation questions": len(questions),
            "notebook headings": len(queries) - len(questions),
        },
        "first_query_ms": first_ms,
        "modes": per_mode,
    }


# --------------------------------------------------------------------------- install size


def _dist_sizes() -> tuple[dict[str, Any], dict[str, set[str]]]:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    dists = {}
    for dist in importlib.metadata.distributions():
        dists.setdefault(canonicalize_name(dist.metadata["Name"]), dist)
    requires: dict[str, set[str]] = {}
    for name, dist in dists.items():
        found = set()
        for text in dist.requires or []:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            if canonicalize_name(req.name) in dists:
                found.add(canonicalize_name(req.name))
        requires[name] = found
    return dists, requires


def _installed_bytes(dist: Any) -> int:
    total = 0
    for file in dist.files or []:
        try:
            total += os.path.getsize(dist.locate_file(file))
        except OSError:
            pass
    return total


def _closure(start: set[str], requires: dict[str, set[str]], stop: set[str]) -> set[str]:
    seen = set(start)
    todo = list(start)
    while todo:  # bounded: each distribution is visited once
        for name in requires.get(todo.pop(), set()) - stop:
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


def bench_install_size() -> dict[str, Any]:
    """The installed size of wordllama and what only it needs; torch's from its wheel.

    "Only it needs": in wordllama's requirement closure and not reachable from any other
    installed distribution (walking around wordllama). numpy is left out: the index keeps
    its vectors in numpy itself (``westtek_core.kb.index``), so it stays with or without
    wordllama.
    """
    from packaging.utils import canonicalize_name

    dists, requires = _dist_sizes()
    root = canonicalize_name("wordllama")
    kept_anyway = {"numpy"}
    closure = _closure({root}, requires, set())
    others = {n for n in dists if n not in closure and n != canonicalize_name("westtek")}
    shared = _closure(others, requires, {root}) | kept_anyway
    only = sorted(closure - shared)
    sizes = {n: _installed_bytes(dists[n]) for n in only}
    import wordllama

    package = Path(wordllama.__file__).parent
    model_files = sorted(package.glob("weights/*.safetensors")) + sorted(
        package.glob("tokenizers/*.json")
    )
    result: dict[str, Any] = {
        "wordllama_version": dists[root].version,
        "only_for_wordllama": {n: {"version": dists[n].version, "bytes": sizes[n]} for n in only},
        "total_bytes": sum(sizes.values()),
        "shared_with_others": sorted(closure - set(only)),
        "model_files_bytes": sum(p.stat().st_size for p in model_files),
        "torch": {"issue_mb": TORCH_MB_ISSUE},
    }
    wheels = sorted(Path("/opt/wheels").glob("torch-*.whl")) if Path("/opt/wheels").is_dir() else []
    if wheels:
        wheel = wheels[-1]
        with zipfile.ZipFile(wheel) as z:
            infos = z.infolist()
            metadata = next(i for i in infos if i.filename.endswith(".dist-info/METADATA"))
            requires_dist = [
                line.split(":", 1)[1].strip()
                for line in z.read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line
            ]
        result["torch"].update(
            wheel=wheel.name,
            wheel_bytes=wheel.stat().st_size,
            unpacked_bytes=sum(i.file_size for i in infos),
            requires=requires_dist,
        )
    return result


# --------------------------------------------------------------------------- offline agent


def _short(file: str, line: int, name: str) -> str:
    for marker in ("westtek_core/", "site-packages/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{name} ({file}:{line})"


def _top_costs(profile: cProfile.Profile, count: int) -> dict[str, list[dict[str, Any]]]:
    """The largest cumulative costs inside westtek_core, and the largest own-time costs."""
    stats: Any = pstats.Stats(profile)
    chain, own = [], []
    for (file, line, name), (_, calls, tottime, cumulative, _) in stats.stats.items():
        row = {"function": _short(file, line, name), "calls": calls}
        own.append({**row, "seconds": tottime})
        if "westtek_core" in file and not ("agents/loop.py" in file and name in ("ask", "_answer")):
            chain.append({**row, "seconds": cumulative})
    chain.sort(key=lambda r: -r["seconds"])
    own.sort(key=lambda r: -r["seconds"])
    return {"cumulative": chain[:count], "own_time": own[:count]}


def bench_agent(
    root: Path, index: Path, tmp: Path, questions: list[dict[str, Any]]
) -> dict[str, Any]:
    """Offline answers from the Knowledge Transfer agent over the benchmark's index."""
    try:
        from westtek_core.agents import AgentLoop, ToolContext
    except ImportError as exc:
        return {"not_measured": f"agents not landed ({exc})"}
    from westtek_core.drift.events import EventLog
    from westtek_core.environment_service import EnvironmentService
    from westtek_core.kb import KnowledgeBase

    kb = KnowledgeBase(index)
    events = EventLog(tmp / "events.sqlite")
    service = EnvironmentService(
        store=str(tmp / "store"),
        key_file=tmp / "store.key",
        root=root,
        pythons=[sys.executable],
        environment_id="bench@kb",
        event_log=events,
    )
    loop = AgentLoop(provider="offline")
    step = max(1, len(questions) // AGENT_QUESTIONS)
    chosen = questions[::step][:AGENT_QUESTIONS]
    timed = []
    try:
        started = time.perf_counter()
        loop.ask(ToolContext(service, kb), chosen[0]["question"], "transfer")
        warm_up_s = time.perf_counter() - started
        for q in chosen:  # bounded: AGENT_QUESTIONS questions
            started = time.perf_counter()
            answer = loop.ask(ToolContext(service, kb), q["question"], "transfer")
            seconds = time.perf_counter() - started
            cited = {c.source for c in answer.citations}
            timed.append(
                {
                    "id": q["id"],
                    "seconds": seconds,
                    "tools": list(answer.tools_called),
                    "cites_expected": bool(cited & set(q["expected"])),
                    "citations": len(answer.citations),
                }
            )
        profile = None
        slowest = max(timed, key=lambda t: t["seconds"])
        if slowest["seconds"] > TARGETS["offline_answer_s"]:
            question = next(q["question"] for q in chosen if q["id"] == slowest["id"])
            profiler = cProfile.Profile()
            profiler.enable()
            loop.ask(ToolContext(service, kb), question, "transfer")
            profiler.disable()
            profile = {"question_id": slowest["id"], "costs": _top_costs(profiler, 6)}
    finally:
        service.stop()
        events.close()
        kb.close()
    return {
        "warm_up_s": warm_up_s,
        "answers": timed,
        "seconds": summary([t["seconds"] for t in timed]),
        "cites_expected": sum(t["cites_expected"] for t in timed),
        "top_costs": profile,
    }


# --------------------------------------------------------------------------- report


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f}"


def render(result: dict[str, Any]) -> str:
    """The markdown block written between the README markers."""
    q = result.get("quality", {})
    lat = result.get("latency", {})
    ing = result.get("ingest", {})
    size = result.get("install_size", {})
    agent = result.get("agent", {})
    modes = q.get("modes", {})
    lines = [
        f"Latest run: {result['started']}, {result['elapsed_s'] / 60:.0f} min in all; "
        f"{result['notebooks']['total']} real notebooks "
        f"({', '.join(f'{n} {c}' for n, c in result['notebooks']['by_package'].items())}), "
        f"{q.get('questions', 0)} questions.",
        "",
        "| step | measured | target | verdict |",
        "|---|---|---|---|",
    ]
    if modes:
        h, b, e = (modes[m]["recall_at_5"] for m in MODES)
        better = h > b and h > e
        met = verdict(h, TARGETS["recall_at_5"], at_least=True)
        if not better:
            met += "; **not** better than both alone"
        lines.append(
            f"| 1. recall@5, hybrid (BM25 alone / embeddings alone) | {h:.3f} ({b:.3f} / {e:.3f}) "
            f"| ≥ 0.9 and above both | {met} |"
        )
        lines.append(
            f"| 1b. MRR@10, hybrid (BM25 / embeddings) | {modes['hybrid']['mrr_at_10']:.3f} "
            f"({modes['bm25']['mrr_at_10']:.3f} / {modes['embedding']['mrr_at_10']:.3f}) | — | — |"
        )
    if "modes" in lat:
        hy = lat["modes"]["hybrid"]
        lines.append(
            f"| 2. hybrid search, {lat['ingested']} notebooks indexed (ms), {lat['queries']} "
            f"queries | median {hy['median']:.1f}, p95 {hy['p95']:.1f}, max {hy['max']:.1f} "
            f"| p95 ≤ 150 | {verdict(hy['p95'], TARGETS['search_p95_ms'])} |"
        )
    elif "error" in lat:
        lines.append(f"| 2. hybrid search p95 | failed: {lat['error']} | ≤ 150 | — |")
    if "rate" in ing:
        rate = ing["rate"]
        lines.append(
            f"| 3. ingest, fresh index (notebooks/s), median of {rate['n']} "
            f"| {rate['median']:.2f} ({rate['min']:.2f}–{rate['max']:.2f}); "
            f"{ing['seconds']['median']:.1f} s for {ing['runs'][0]['notebooks']} "
            f"| ≥ 20 | {verdict(rate['median'], 20.0, at_least=True)} |"
        )
    if "total_bytes" in size:
        torch = size["torch"]
        torch_mb = torch.get("unpacked_bytes", torch["issue_mb"] * 1e6)
        gain = (modes["hybrid"]["recall_at_5"] - modes["bm25"]["recall_at_5"]) if modes else None
        gain_text = f"{gain:+.3f} recall@5 over BM25 alone" if gain is not None else "—"
        lines.append(
            f"| 4. install size of the embeddings (MB): wordllama {size['wordllama_version']} "
            f"+ what only it needs, vs torch alone | {_mb(size['total_bytes'])} vs "
            f"{_mb(torch_mb)} ({size['total_bytes'] / torch_mb:.2f}×); buys {gain_text} "
            f"| weigh size against quality | — |"
        )
    if "seconds" in agent:
        s = agent["seconds"]
        over = sum(1 for a in agent["answers"] if a["seconds"] > TARGETS["offline_answer_s"])
        lines.append(
            f"| 5. offline answer (Knowledge Transfer agent) (s), median of {s['n']} "
            f"| {s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f}); {over} of {s['n']} over 1 s "
            f"| ≤ 1 | {verdict(s['median'], TARGETS['offline_answer_s'])} on the median |"
        )
    else:
        reason = agent.get("not_measured") or agent.get("error") or "not run"
        lines.append(f"| 5. offline answer (s) | not measured yet: {reason} | ≤ 1 | — |")
    lines.append("")
    if modes:
        lines += [
            "Quality per mode (same index, same run; recall@5 by question style):",
            "",
            "| mode | recall@5 | MRR@10 | hit@1 | recall@5, names the method (n) "
            "| recall@5, paraphrased (n) | median search (ms), 121 notebooks |",
            "|---|---|---|---|---|---|---|",
        ]
        for mode in MODES:
            m = modes[mode]
            st = m["by_style"]
            lines.append(
                f"| {mode} | {m['recall_at_5']:.3f} | {m['mrr_at_10']:.3f} | {m['hit_at_1']:.3f} "
                f"| {st['terms']['recall_at_5']:.3f} ({st['terms']['n']}) "
                f"| {st['paraphrase']['recall_at_5']:.3f} ({st['paraphrase']['n']}) "
                f"| {m['latency_ms']['median']:.1f} |"
            )
        lines += [
            "",
            "By question set, recall@5 / MRR@10:",
            "",
            "| questions | " + " | ".join(MODES) + " |",
            "|---|" + "---|" * len(MODES),
        ]
        for label in modes["hybrid"].get("by_set", {}):
            cells = (modes[mode]["by_set"][label] for mode in MODES)
            lines.append(
                f"| {label} ({modes['hybrid']['by_set'][label]['n']}) | "
                + " | ".join(f"{c['recall_at_5']:.3f} / {c['mrr_at_10']:.3f}" for c in cells)
                + " |"
            )
        missed = [i for i, r in modes["hybrid"]["ranks"].items() if r is None or r >= 5]
        lines += ["", f"Hybrid misses (ids in `kb_eval.json`): {', '.join(missed) or 'none'}."]
    lines += _render_fusion(result.get("fusion_what_ifs", {}), modes)
    if "modes" in lat:
        lines.append("")
        lines.append(
            f"Step 2: {lat['chunks']} chunks, index {_mb(lat['index_bytes'])} MB; ingesting the "
            f"{lat['ingested']} copies took {lat['ingest_s']:.0f} s ({lat['ingest_rate']:.2f}/s); "
            f"first query after opening {lat['first_query_ms']:.0f} ms (loads the vectors); "
            f"BM25 alone median {lat['modes']['bm25']['median']:.1f} / p95 "
            f"{lat['modes']['bm25']['p95']:.1f} ms, embeddings alone "
            f"{lat['modes']['embedding']['median']:.1f} / "
            f"{lat['modes']['embedding']['p95']:.1f} ms. "
            f"Queries: {', '.join(f'{v} {k}' for k, v in lat['query_kinds'].items())}."
        )
    bd = result.get("ingest_breakdown", {})
    if "slowest" in bd:
        top = bd["slowest"][0]
        t = bd["totals"]
        lines.append("")
        lines.append(
            f"Step 3, where the time goes (one pass, KB steps timed per notebook): convert "
            f"{t['convert_s']:.1f} s, redact {t['redact_s']:.1f} s, chunk {t['chunk_s']:.1f} s, "
            f"embed {t['embed_s']:.1f} s. Slowest: `{top['notebook']}` {top['total_s']:.1f} s "
            f"({100 * bd['slowest_share']:.0f}% of all; embed {top['embed_s']:.1f} s): the "
            f"longest of its {top['children']} children is {top['longest_child_chars']:,} "
            f"characters in {top['longest_child_words']} words"
            + (" (an inline base64 image)" if top["longest_child_has_base64"] else "")
            + (
                f", {top['longest_child_embedder_tokens']:,} tokens for the embedder, which pads"
                " every text of a batch to the longest"
                if top.get("longest_child_embedder_tokens")
                else ""
            )
            + f". The same steps for the other notebooks: {bd['rate_without_slowest']:.1f} "
            "notebooks/s (SQLite writes not included)."
        )
    if "total_bytes" in size:
        torch = size["torch"]
        parts = ", ".join(f"{n} {_mb(v['bytes'])}" for n, v in size["only_for_wordllama"].items())
        torch_text = (
            f"torch: `{torch['wheel']}` unpacks to {_mb(torch['unpacked_bytes'])} MB "
            f"({_mb(torch['wheel_bytes'])} MB download), before its own requirements "
            f"({', '.join(torch['requires'])}); the issue says ~{torch['issue_mb']} MB"
            if "unpacked_bytes" in torch
            else f"torch: the issue's ~{torch['issue_mb']} MB (no torch wheel on this disk)"
        )
        lines.append("")
        lines.append(
            f"Step 4: installed only for wordllama — {parts} MB (the packaged model itself "
            f"{_mb(size['model_files_bytes'])} MB); shared with other packages, so not "
            f"counted: {', '.join(size['shared_with_others'])}. {torch_text}."
        )
    if "seconds" in agent:
        lines.append("")
        lines.append(
            f"Step 5: warm-up answer {agent['warm_up_s']:.2f} s; "
            f"{agent['cites_expected']} of {len(agent['answers'])} answers cite the expected "
            f"notebook."
        )
        if agent.get("top_costs"):
            top = agent["top_costs"]
            tools = Counter(tool for a in agent["answers"] for tool in a["tools"])
            slow_tools = Counter(
                tool
                for a in agent["answers"]
                if a["seconds"] > TARGETS["offline_answer_s"]
                for tool in a["tools"]
            )
            lines += [
                "",
                f"Tools called in the timed answers: {dict(tools)}; in those over 1 s: "
                f"{dict(slow_tools)}. Top cumulative costs inside `westtek_core` of the slowest "
                f"answer (question {top['question_id']}), rerun under cProfile:",
                "",
            ]
            lines += [
                f"- `{c['function']}`: {c['seconds']:.2f} s cumulative, {c['calls']} call(s)"
                for c in top["costs"]["cumulative"]
            ]
            lines += ["", "and where that time is spent (own time, any code):", ""]
            lines += [
                f"- `{c['function']}`: {c['seconds']:.2f} s, {c['calls']} call(s)"
                for c in top["costs"]["own_time"]
            ]
    load = result.get("load", {})
    if load:
        lines += [
            "",
            "Load during each step — other processes' CPU (cores, `/proc/stat` minus this run) "
            "and `os.getloadavg()` (1 min) at its end: "
            + "; ".join(
                f"{k} {v['other_cpu_cores']:.2f} cores, load {v['loadavg_end'][0]:.1f}"
                for k, v in load.items()
            )
            + ".",
        ]
    m = result["machine"]
    lines += [
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), kernel {m['kernel']}, Python "
        f"{m['python']}; westtek git {m['git']}. Network: {m['network']}.",
    ]
    return "\n".join(lines)


def _render_fusion(what_ifs: dict[str, Any], modes: dict[str, Any]) -> list[str]:
    """The what-if fusion table, if its current row reproduces the measured hybrid."""
    rows = what_ifs.get("rows")
    if not rows or not modes:
        return []
    share = what_ifs["current_share"]
    current = next(
        r for r in rows if r["per"] == "parent" and r["method"] == "blend" and r["weight"] == share
    )
    faithful = abs(current["recall_at_5"] - modes["hybrid"]["recall_at_5"]) < 1e-9
    lines = [
        "",
        "What-if fusions (diagnostic): the index's own BM25 and cosine candidates, fused by "
        "weighted reciprocal rank (BM25 weight 1) or blended as the KB does (z-scored "
        "scores, BM25's share); recall@5 / MRR@10, one passage per parent chunk "
        "(as `search`) and one per notebook"
        + ("" if faithful else " — **unfaithful: the current row does not reproduce step 1**")
        + ":",
        "",
        "| fusion | per parent | per notebook |",
        "|---|---|---|",
    ]
    for row in (r for r in rows if r["per"] == "parent"):
        twin = next(
            r for r in rows
            if r["per"] == "notebook" and (r["method"], r["weight"], r["k"])
            == (row["method"], row["weight"], row["k"])
        )  # fmt: skip
        if row["method"] == "blend":
            label = f"blend, BM25 share {row['weight']:g}" + (
                " (current)" if row is current else ""
            )
        elif row["weight"] == 0:
            label = "BM25 alone"
        else:
            label = f"RRF, embedding weight {row['weight']:g}, k {row['k']}"
        lines.append(
            f"| {label} | {row['recall_at_5']:.3f} / {row['mrr_at_10']:.3f} "
            f"| {twin['recall_at_5']:.3f} / {twin['mrr_at_10']:.3f} |"
        )
    return lines


# --------------------------------------------------------------------------- main


def write_readme(block: str) -> None:
    """Replace this benchmark's block in bench/README.md."""
    replace_readme_block(MARK_START, MARK_END, block, "## kb: latest results")


def main(argv: Sequence[str] | None = None) -> int:
    """Fetch the notebooks (set-up), then measure offline; write the JSON and the table."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="fresh-index ingestions (3)")
    parser.add_argument("--notebooks", type=int, default=1000, help="indexed for step 2 (1000)")
    parser.add_argument("--queries", type=int, default=260, help="step 2 queries (260, ≥ 200)")
    parser.add_argument("--skip-fetch", action="store_true", help="never use the network")
    parser.add_argument(
        "--no-readme",
        action="store_true",
        help="print the table; leave bench/README.md and bench/results/kb.json alone",
    )
    args = parser.parse_args(args_list)
    if args.queries < MIN_QUERIES:
        parser.error(f"--queries: at least {MIN_QUERIES}")
    if args.reps < 1 or args.notebooks < 1:
        parser.error("--reps and --notebooks must be positive")
    partial = args.notebooks != 1000 or args.reps != 3 or args.no_readme

    if not os.environ.get(_NETNS_FLAG):
        counts = prepare_notebooks(fetch=not args.skip_fetch)  # set-up: the only network use
        log(f"notebooks ready: {sum(counts.values())} ({counts})")
    code = reexec_offline(__file__, args_list, _NETNS_FLAG, RUN_TIMEOUT + 60)
    if code is not None:
        return code

    def give_up() -> None:
        log("time bound hit")
        os._exit(124)

    watchdog = threading.Timer(RUN_TIMEOUT, give_up)
    watchdog.daemon = True
    watchdog.start()

    counts = prepare_notebooks(fetch=False)
    if sum(counts.values()) < MIN_NOTEBOOKS:
        raise RuntimeError(f"only {sum(counts.values())} notebooks, < {MIN_NOTEBOOKS}")
    questions = load_eval_set(NOTEBOOKS)
    started = time.monotonic()
    result: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_facts(bool(os.environ.get(_NETNS_FLAG)), ["westtek_core/kb"]),
        "targets": TARGETS,
        "notebooks": {"total": sum(counts.values()), "by_package": counts},
        "sdists": dict(NOTEBOOK_SDISTS),
    }
    load: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="westtek-bench-kb-") as scratch:
        tmp = Path(scratch)
        for sub in ("xdg-cache", "xdg-data", "xdg-config", "ingest", "latency", "agent"):
            (tmp / sub).mkdir()
        os.environ.update(
            XDG_CACHE_HOME=str(tmp / "xdg-cache"),
            XDG_DATA_HOME=str(tmp / "xdg-data"),
            XDG_CONFIG_HOME=str(tmp / "xdg-config"),
            HF_HUB_OFFLINE="1",
        )

        def load_embedder() -> dict[str, float]:
            t0 = time.perf_counter()
            from westtek_core.kb.embedding import shared_embedder

            shared_embedder()
            return {"seconds": time.perf_counter() - t0}

        result["embedder_load"] = run_step("embedder load", load_embedder, load)
        result["ingest"] = run_step(
            "ingest", lambda: bench_ingest(NOTEBOOKS, tmp / "ingest", args.reps), load
        )
        index = Path(result["ingest"].get("index", tmp / "ingest" / "missing.sqlite"))
        result["quality"] = run_step("quality", lambda: bench_quality(index, questions), load)
        result["fusion_what_ifs"] = run_step(
            "fusion what-ifs", lambda: fusion_what_ifs(index, questions), load
        )
        result["install_size"] = run_step("install size", bench_install_size, load)
        result["agent"] = run_step(
            "offline answer", lambda: bench_agent(NOTEBOOKS, index, tmp / "agent", questions), load
        )
        result["ingest_breakdown"] = run_step(
            "ingest breakdown", lambda: ingest_breakdown(NOTEBOOKS), load
        )
        result["latency"] = run_step(
            "latency",
            lambda: bench_latency(
                NOTEBOOKS, tmp / "latency", args.notebooks, args.queries, questions
            ),
            load,
        )
    result["load"] = load
    result["elapsed_s"] = time.monotonic() - started
    # the raw numbers first, so a rendering bug never loses a run
    target = PARTIAL_RESULTS if partial else RESULTS
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=1, default=str) + "\n")
    block = render(result)
    print(block)
    if partial:
        log(f"partial run (non-default sizes or --no-readme): raw numbers in {target}")
        return 0
    write_readme(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
