"""``westtek kb ingest|search`` and ``westtek ask``: the lab's knowledge base and its agents.

``kb`` builds and searches the index; ``ask`` puts a question to the Drift Analyzer or the
Knowledge Transfer agent, which answer from that index and the environment, citing sources.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from westtek_core.cli.common import (
    CommandError,
    add_environment,
    add_json,
    add_store,
    emit,
    open_repo,
)

if TYPE_CHECKING:
    from rich.console import Console

    from westtek_core.cli.common import Subcommands


def register(commands: Subcommands) -> None:
    """Add the ``kb`` command group and the ``ask`` command."""
    _add_kb(commands)
    _add_ask(commands)


def _add_kb(commands: Subcommands) -> None:
    kb = commands.add_parser("kb", help="the lab's knowledge base: ingest and search")
    actions = kb.add_subparsers(dest="action", metavar="ACTION", required=True)
    index = argparse.ArgumentParser(add_help=False)
    index.add_argument(
        "--index",
        type=Path,
        metavar="PATH",
        help="the index file (default: the lab's, in the per-user data directory)",
    )
    add_json(index)
    ingest = actions.add_parser(
        "ingest",
        help="index the notebooks, experiment logs, snapshots and install history",
        parents=[index],
    )
    ingest.add_argument(
        "dir", nargs="?", type=Path, default=Path.cwd(), help="the workspace (default: .)"
    )
    add_store(ingest)
    ingest.set_defaults(run=_cmd_kb)
    search = actions.add_parser("search", help="search the knowledge base", parents=[index])
    search.add_argument("query")
    search.add_argument("-k", type=int, default=5, help="how many results (5)")
    search.add_argument(
        "--mode",
        choices=("hybrid", "bm25", "embedding"),
        default="hybrid",
        help="ranking: BM25 fused with embeddings (default), or either alone",
    )
    search.add_argument(
        "--lab",
        action="store_true",
        help="search the lab's memory on the West Tek hub service instead (what every "
        "researcher of your labs preserved in snapshots; needs JupyterHub's token, as in a "
        "terminal of your server)",
    )
    search.set_defaults(run=_cmd_kb)


def _add_ask(commands: Subcommands) -> None:
    ask = commands.add_parser(
        "ask", help="ask the Drift Analyzer or the Knowledge Transfer agent (answers cite sources)"
    )
    ask.add_argument("question", help="the question, in quotes")
    ask.add_argument(
        "--agent",
        choices=("drift", "transfer"),
        default="transfer",
        help="drift: explains drift and its risk; transfer: answers a successor's questions "
        "(default)",
    )
    ask.add_argument(
        "--index",
        type=Path,
        metavar="PATH",
        help="the knowledge-base index (default: the lab's, in the per-user data directory)",
    )
    ask.add_argument(
        "--provider",
        help="offline (default, no network), bedrock, openai, or a Provider class's import "
        "path (default: $WESTTEK_AGENT_PROVIDER)",
    )
    ask.add_argument("--environment-id", help="the environment asked about")
    add_environment(ask)
    add_json(ask)
    ask.set_defaults(run=_cmd_ask)


def _human_results(results: list[dict[str, Any]]) -> Callable[[Console], None]:
    def show(console: Console) -> None:
        if not results:
            console.print("nothing found")
        for r in results:
            origin = r.get("citation") or {}
            where = ""
            if origin.get("snapshot_id"):  # the lab's memory: whose, and which snapshot
                where = f"  [dim]{origin['environment_id']} @ {origin['snapshot_id'][:12]}[/]"
            console.print(f"[bold]{r['source']}[/] {r['locator']}  ({r['score']:.4f}){where}")
            console.print("  " + " ".join(r["text"].split())[:300])

    return show


def _cmd_lab_search(args: argparse.Namespace) -> int:
    from westtek_core.kb.lab_client import LabMemoryClient, LabMemoryUnavailable

    client = LabMemoryClient.under_jupyterhub()
    if client is None:
        raise CommandError(
            "--lab needs JupyterHub: run it in a terminal of your server ($JUPYTERHUB_API_TOKEN)"
        )
    try:
        results = client.search(args.query, args.k)
    except LabMemoryUnavailable as e:
        raise CommandError(f"the lab's memory: {e}") from None
    emit(args, {"results": results}, _human_results(results))
    return 0


def _cmd_kb(args: argparse.Namespace) -> int:
    from westtek_core.kb import KnowledgeIndexBackend, default_index_path
    from westtek_core.labs import default_environment_id

    if args.action == "search" and args.k < 1:
        raise CommandError("-k must be at least 1")
    if args.action == "search" and args.lab:
        return _cmd_lab_search(args)

    index = args.index or default_index_path()
    backend = KnowledgeIndexBackend()  # sqlite unless $WESTTEK_KB_BACKEND says otherwise
    if args.action == "search" and not backend.is_built(index):
        raise CommandError(f"no knowledge base at {index}: run `westtek kb ingest` first")
    kb = backend.open_knowledge_base(index, default_environment_id())
    try:
        if args.action == "search":
            results = [r.to_json() for r in kb.search(args.query, args.k, mode=args.mode)]
            emit(args, {"results": results}, _human_results(results))
            return 0
        if not args.dir.is_dir():
            raise CommandError(f"{args.dir} is not a directory")
        report = kb.ingest_everything(args.dir, *_kb_store_material(args)).to_json()
    finally:
        kb.close()

    def human_ingest(console: Console) -> None:
        console.print(
            f"indexed {len(report['ingested'])} sources ({report['chunks']} passages), "
            f"{report['unchanged']} unchanged, {len(report['removed'])} removed, "
            f"{report['redactions']} redactions"
        )
        for failure in report["failed"]:
            console.print(f"  [yellow]skipped[/] {failure['source']}: {failure['error']}")

    emit(args, report, human_ingest)
    return 0


def _kb_store_material(args: argparse.Namespace) -> tuple[list[Any], list[Any] | None]:
    """The store's snapshots and the install history, when they exist."""
    from westtek_core.drift.events import EventLog
    from westtek_core.paths import event_log_path
    from westtek_core.snapshot import load_snapshot
    from westtek_core.store import StoreError

    try:
        repo = open_repo(args)
        manifests = [load_snapshot(repo, i) for i in repo.list_manifests()]
    except StoreError:
        manifests = []  # no store yet: the workspace alone
    events_file = event_log_path()
    history = None
    if events_file.exists():
        log = EventLog(events_file)
        history = log.install_history()
        log.close()
    return manifests, history


def _cmd_ask(args: argparse.Namespace) -> int:
    from westtek_core.agents import AgentLoop, ToolContext
    from westtek_core.agents.service import default_kb_path, open_knowledge_base
    from westtek_core.drift.events import EventLog
    from westtek_core.environment_service import EnvironmentService
    from westtek_core.kb.lab_client import LabMemoryClient
    from westtek_core.labs import default_environment_id
    from westtek_core.paths import default_key_file, default_store, event_log_path

    if not args.question.strip():
        raise CommandError("ask a question")
    if not args.root.is_dir():
        raise CommandError(f"--root {args.root} is not a directory")
    index = args.index or default_kb_path()
    if args.index and not index.exists():
        raise CommandError(f"no knowledge base at {index}: run `westtek kb ingest` first")
    loop = AgentLoop(**({"provider": args.provider} if args.provider else {}))
    events = EventLog(event_log_path())
    service = EnvironmentService(
        store=args.store or default_store(),
        key_file=args.key_file or default_key_file(),
        root=args.root,
        pythons=args.python,
        environment_id=args.environment_id or default_environment_id(),
        event_log=events,
    )
    # under JupyterHub, the lab's memory on the hub service too (as the chat does)
    kb = open_knowledge_base(index, environment=service.environment_id)
    ctx = ToolContext(service, kb, LabMemoryClient.under_jupyterhub())
    from rich.console import Console

    out, err = Console(), Console(stderr=True)
    live = not args.json and out.is_terminal

    def show(chunk: dict[str, Any]) -> None:
        if chunk["type"] == "tool" and err.is_terminal and not args.json:
            err.print(f"[dim]{chunk['name']}: {chunk['status']}[/]")
        elif chunk["type"] == "delta" and live:
            out.print(chunk["text"], end="", markup=False, highlight=False)

    try:
        answer = loop.ask(ctx, args.question, args.agent, emit=show)
    finally:
        ctx.close()
        events.close()

    def human(console: Console) -> None:
        if live:
            console.print()
        else:
            console.print(answer.answer, markup=False, highlight=False)
        if answer.citations:
            console.print("\nSources:")
            for number, citation in enumerate(answer.citations, start=1):
                console.print(f"  [{number}] {citation.source} ({citation.locator})", markup=False)

    emit(args, answer.to_json(), human)
    return 1 if answer.error else 0
