"""The lab's memory through the hub service: built from what servers report, searched by
every lab member with their own token, isolated per lab, and outliving the researcher.

Snapshots are real (stored in the lab's real store); the service reads them back itself.
Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from tests.core.kb.test_lab_memory import BOB_ANALYSIS, CAROL_ANALYSIS, notebook
from tests.hub.conftest import answer, store_snapshot
from tests.hub.test_panel import fetch
from tests.hub.test_registry_api import snapshot_report
from westtek_core.agents import AgentLoop, ToolContext
from westtek_core.agents.tools.knowledge import search_knowledge_base
from westtek_core.drift.events import EventLog
from westtek_core.environment_service import EnvironmentService
from westtek_core.kb import KnowledgeBase
from westtek_core.kb.lab_client import LabMemoryClient

QUESTION = "which notebook makes figure 3 from the beam data"


async def search(api, user: str, query: str = QUESTION, **params: str):
    return await api("GET", "knowledge/search?" + urlencode({"q": query, **params}), user)


async def found(api, user: str, query: str = QUESTION, timeout: float = 30) -> list[dict]:
    """The results once the background indexing shows any (bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        response = await search(api, user, query)
        assert response.code == 200, answer(response)
        results = answer(response)["results"]
        if results or time.monotonic() > deadline:
            return results
        await asyncio.sleep(0.2)


async def report(api, lab_stores, user: str, lab: str, files: dict[str, bytes]) -> str:
    snapshot = store_snapshot(lab_stores / lab, user, files)
    response = await api("POST", "snapshots", user, snapshot_report(user, snapshot))
    assert response.code == 201, answer(response)
    return snapshot


async def test_a_reported_snapshot_is_searchable_by_the_whole_lab_with_citations(api, lab_stores):
    # Given bob's and carol's snapshots reported by their servers (labs vault-13, vault-101)
    bob = await report(api, lab_stores, "bob", "vault-13", {"analysis.ipynb": BOB_ANALYSIS})
    await report(api, lab_stores, "carol", "vault-101", {"analysis.ipynb": CAROL_ANALYSIS})
    # When alice, bob's lab colleague, asks her lab's memory
    results = await found(api, "alice")
    # Then bob's notebook answers, cited to a cell of bob's snapshot
    best = results[0]
    assert best["citation"] | {"locator": None} == {
        "environment_id": "bob", "researcher": "bob", "snapshot_id": bob,
        "path": "analysis.ipynb", "locator": None,
    }  # fmt: skip
    assert best["lab_id"] == "vault-13" and "figure 3" in best["text"]
    # and opening the citation shows the cell from the snapshot, wherever alice works
    cell = int(best["citation"]["locator"].removeprefix("cell "))
    query = urlencode({"environment_id": "bob", "snapshot_id": bob,
                       "path": "analysis.ipynb", "cell": cell})  # fmt: skip
    opened = await api("GET", f"knowledge/cell?{query}", "alice")
    assert opened.code == 200, answer(opened)
    # (a passage may span several short cells: it starts at the cited one)
    assert answer(opened)["cell_type"] == "code" and answer(opened)["source"] in best["text"]

    # But carol's lab's memory has nothing of bob's: her own notebook only
    theirs = await found(api, "carol", "spectrometer peaks histogram")
    assert {r["citation"]["environment_id"] for r in theirs} == {"carol"}
    assert all(
        r["citation"]["environment_id"] != "bob" for r in await found(api, "carol", timeout=0)
    )
    # and she may neither search vault-13 nor open bob's cell (as missing as a cell never taken)
    assert (await search(api, "carol", lab_id="vault-13")).code == 403
    assert (await api("GET", f"knowledge/cell?{query}", "carol")).code == 404


async def test_the_memory_outlives_the_researchers_environment_and_the_service(
    api, lab_stores, service
):
    bob = await report(api, lab_stores, "bob", "vault-13", {"analysis.ipynb": BOB_ANALYSIS})
    assert await found(api, "alice")
    # When bob's lab admin hands his environment to alice, and the service restarts
    handed = await api("POST", "knowledge/transfer", "dana",
                       {"environment_id": "bob", "to_researcher": "alice"})  # fmt: skip
    assert handed.code == 200, answer(handed)
    service.stop()
    service.start()
    # Then alice (bob's successor) still finds bob's work, still cited to bob's snapshot
    (best, *_) = await found(api, "alice")
    assert (best["citation"]["researcher"], best["citation"]["snapshot_id"]) == ("bob", bob)


async def test_bad_searches_say_what_is_wrong(api):
    assert (await api("GET", "knowledge/search", "alice")).code == 400
    assert (await search(api, "alice", k="0")).code == 400
    assert (await search(api, "alice", k="²")).code == 400
    missing = await api("GET", "knowledge/cell?environment_id=nobody&snapshot_id=x", "alice")
    assert missing.code == 404


async def test_snapshots_reported_before_the_memory_existed_are_added_at_start(
    api, lab_stores, service
):
    # Given a snapshot reported, then the lab's memory lost (or a hub upgraded to memories)
    bob = await report(api, lab_stores, "bob", "vault-13", {"analysis.ipynb": BOB_ANALYSIS})
    assert await found(api, "alice")
    service.stop()
    shutil.rmtree(Path(service.app.data_dir) / "kb")
    # When the service starts again
    service.start()
    # Then it catches up from the registry and the lab's store, by itself
    (best, *_) = await found(api, "alice")
    assert best["citation"]["snapshot_id"] == bob


async def test_a_successors_agent_answers_from_the_lab_memory_with_citations(
    api, lab_stores, service, tmp_path
):
    # Given bob's notebook preserved in his snapshot, and alice's own server: an empty
    # workspace with no index of its own, nothing of bob's in it
    bob = await report(api, lab_stores, "bob", "vault-13", {"analysis.ipynb": BOB_ANALYSIS})
    assert await found(api, "alice")
    workspace = tmp_path / "alice-home"
    workspace.mkdir()
    server = EnvironmentService(
        store=str(tmp_path / "alice-store"), key_file=tmp_path / "alice.key", root=workspace,
        pythons=[], environment_id="alice", event_log=EventLog(tmp_path / "events.sqlite"),
    )  # fmt: skip
    context = ToolContext(server, None, LabMemoryClient(service.base, "alice-token"))
    # When she asks the Knowledge Transfer agent about bob's work
    answer = await asyncio.to_thread(
        AgentLoop(provider="offline").ask,
        context, "Which notebook makes figure 3 from the beam data?", "transfer",
    )  # fmt: skip
    # Then the answer cites bob's notebook in bob's snapshot
    cited = [c.to_json() for c in answer.citations]
    assert any(
        c["source"] == "bob/analysis.ipynb" and c.get("environment_id") == "bob"
        and c.get("snapshot_id") == bob and c["locator"].startswith("cell ")
        for c in cited
    ), (answer.answer, cited)  # fmt: skip
    assert "beam_currents.csv" in answer.answer or "figure 3" in answer.answer, answer.answer

    # and when the hub service is down, her own workspace still answers (nothing found)
    down = ToolContext(server, None, LabMemoryClient("http://127.0.0.1:9/api", "alice-token"))
    result = await asyncio.to_thread(search_knowledge_base, down, {"query": "figure 3"})
    assert result.data["results"] == [] and "did not answer" in result.data["message"]


def westtek(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real ``westtek`` CLI, as a researcher runs it in a terminal of their server."""
    command = [sys.executable, "-m", "westtek_core.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


async def test_kb_search_and_ask_in_a_researchers_terminal_reach_the_lab_memory(
    api, lab_stores, service, tmp_path
):
    bob = await report(api, lab_stores, "bob", "vault-13", {"analysis.ipynb": BOB_ANALYSIS})
    assert await found(api, "alice")
    # Given alice's terminal under JupyterHub: the hub's address and her server's token
    hub = service.base.removesuffix("/services/westtek/api/")
    env = {**os.environ, "JUPYTERHUB_URL": hub, "JUPYTERHUB_BASE_URL": "/",
           "JUPYTERHUB_API_TOKEN": "alice-token", "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CACHE_HOME": str(tmp_path / "cache")}  # fmt: skip
    # When she searches the lab's memory
    done = await asyncio.to_thread(westtek, "kb", "search", "--lab", "--json", QUESTION, env=env)
    assert done.returncode == 0, done.stderr
    (best, *_) = json.loads(done.stdout)["results"]
    assert best["citation"]["environment_id"] == "bob" and best["citation"]["snapshot_id"] == bob
    # and asks the Knowledge Transfer agent from an empty folder
    home = tmp_path / "alice-home"
    home.mkdir()
    asked = await asyncio.to_thread(
        westtek, "ask", "--agent", "transfer", "--provider", "offline", "--json",
        "--root", str(home), "--environment-id", "alice",
        "--store", str(tmp_path / "alice-store"), "--key-file", str(tmp_path / "alice.key"),
        "Which notebook makes figure 3 from the beam data?", env=env,
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    citations = json.loads(asked.stdout)["citations"]
    assert {"source": "bob/analysis.ipynb", "environment_id": "bob"}.items() <= next(
        c for c in citations if c["source"] == "bob/analysis.ipynb"
    ).items(), citations
    # but without JupyterHub, --lab says what it needs
    alone = {k: v for k, v in env.items() if k != "JUPYTERHUB_API_TOKEN"}
    refused = await asyncio.to_thread(westtek, "kb", "search", "--lab", QUESTION, env=alone)
    assert refused.returncode != 0 and "needs JupyterHub" in refused.stderr


async def test_a_share_gives_another_lab_exactly_the_shared_snapshots_memory(api, lab_stores):
    # Given bob's two snapshots: figure 3's notebook in the first, a new one in the second
    first = await report(api, lab_stores, "bob", "vault-13", {"analysis.ipynb": BOB_ANALYSIS})
    assert await found(api, "alice")
    fit = notebook("# exponential decay fit of the cyclotron beam lifetime")
    second = await report(api, lab_stores, "bob", "vault-13",
                          {"analysis.ipynb": BOB_ANALYSIS, "lifetime.ipynb": fit})  # fmt: skip
    assert await found(api, "alice", "cyclotron beam lifetime")
    # When bob's lab admin shares only the first with carol's lab
    share = {"snapshot_id": first, "to_lab": "vault-101", "permission": "read"}
    created = await api("POST", "collaboration/share", "dana", share)
    assert created.code == 201, answer(created)
    # Then carol finds figure 3's notebook, cited to the shared snapshot, and opens its cell
    (best, *_) = await found(api, "carol")
    assert best["shared"] and best["lab_id"] == "vault-13"
    assert (best["citation"]["environment_id"], best["citation"]["snapshot_id"]) == ("bob", first)
    cell = int(best["citation"]["locator"].removeprefix("cell "))
    query = urlencode({"environment_id": "bob", "snapshot_id": first,
                       "path": "analysis.ipynb", "cell": cell})  # fmt: skip
    assert (await api("GET", f"knowledge/cell?{query}", "carol")).code == 200
    # but nothing only the unshared snapshot holds, nor its cells
    lifetime = await found(api, "carol", "cyclotron beam lifetime", timeout=0)
    assert all(r["citation"]["path"] != "lifetime.ipynb" for r in lifetime)
    other = urlencode({"environment_id": "bob", "snapshot_id": second,
                       "path": "lifetime.ipynb", "cell": 0})  # fmt: skip
    assert (await api("GET", f"knowledge/cell?{other}", "carol")).code == 404
    # and once the share is revoked, nothing of bob's at all
    assert (await api("DELETE", f"collaboration/share/{answer(created)['id']}", "dana")).code == 200
    assert await found(api, "carol", timeout=0) == []


async def test_a_successor_in_another_lab_finds_the_predecessors_work(api, lab_stores):
    # Given bob's snapshot in vault-13's memory, nothing of it in vault-101's
    bob = await report(api, lab_stores, "bob", "vault-13", {"analysis.ipynb": BOB_ANALYSIS})
    assert await found(api, "alice")
    assert await found(api, "carol", timeout=0) == []
    # When the hub admin hands bob's environment to carol, of vault-101
    handed = await api("POST", "knowledge/transfer", "overseer",
                       {"environment_id": "bob", "to_researcher": "carol"})  # fmt: skip
    assert handed.code == 200, answer(handed)
    assert answer(handed)["snapshots_copied"]["to_lab"] == "vault-101"
    # Then carol's lab's memory learns it from vault-101's own copy, cited to bob's work
    (best, *_) = await found(api, "carol")
    assert best["lab_id"] == "vault-101" and not best["shared"]
    assert (best["citation"]["environment_id"], best["citation"]["researcher"]) == ("bob", "bob")
    copy_id = answer(handed)["snapshots_copied"]["copied"][bob]
    assert best["citation"]["snapshot_id"] == copy_id


async def test_the_transfer_package_lists_the_notebooks_and_a_checklist_from_them(
    api, lab_stores, service
):
    # Given bob's snapshot: two notebooks, one reading data the snapshot holds, one not
    files = {
        "10_plot.ipynb": notebook("import matplotlib.pyplot as plt\nplt.savefig('fig3.png')"),
        "2_fit.ipynb": notebook("import pandas as pd\nfrom scipy import optimize",
                                "pd.read_csv('data/beam.csv')\npd.read_hdf('data/runs.h5')"),
        "data/beam.csv": b"t,current\n0,3.0\n",
    }  # fmt: skip
    bob = await report(api, lab_stores, "bob", "vault-13", files)
    assert await found(api, "alice")
    # When his lab admin opens the transfer package
    response = await api("GET", "knowledge/transfer?environment_id=bob", "dana")
    assert response.code == 200, answer(response)
    package = answer(response)
    # Then the notebooks come in run order, with what they import and read
    assert [(nb["path"], nb["imports"], nb["reads"]) for nb in package["notebooks"]] == [
        ("2_fit.ipynb", ["pandas", "scipy"], ["data/beam.csv", "data/runs.h5"]),
        ("10_plot.ipynb", ["matplotlib"], []),
    ]
    # and the checklist says what to obtain, which kernel to install, what to run
    steps = package["onboarding_checklist"]
    assert steps[0].startswith(f"Take over snapshot {bob[:12]} of bob")
    assert "Install kernel python3: 2_fit.ipynb, 10_plot.ipynb run on it" in " ".join(steps)
    assert any(s.startswith("Obtain data/runs.h5: 2_fit.ipynb read it") for s in steps)
    assert not any("data/beam.csv" in s for s in steps if s.startswith("Obtain"))
    assert "in this order and compare their outputs with the snapshot's: 2_fit.ipynb, " \
           "10_plot.ipynb." in " ".join(steps)  # fmt: skip
    # and the panel's succession page shows the same
    body = (await fetch(service, "succession?environment_id=bob", "dana")).body.decode()
    assert "Obtain data/runs.h5" in body and "<code>2_fit.ipynb</code>" in body


async def test_two_colleagues_notebooks_of_one_name_stay_apart_after_one_leaves(api, lab_stores):
    # Given alice and bob in one lab, each with an analysis.ipynb of their own
    await report(api, lab_stores, "alice", "vault-13", {"analysis.ipynb": CAROL_ANALYSIS})
    bob = await report(api, lab_stores, "bob", "vault-13", {"analysis.ipynb": BOB_ANALYSIS})
    assert await found(api, "alice", "spectrometer peaks histogram")
    assert await found(api, "alice")
    # When bob leaves and his lab admin hands his environment to alice
    handed = await api("POST", "knowledge/transfer", "dana",
                       {"environment_id": "bob", "to_researcher": "alice"})  # fmt: skip
    assert handed.code == 200, answer(handed)
    # Then alice asks about both notebooks and each answer cites the right one
    (beam, *_) = await found(api, "alice")
    assert (beam["source"], beam["citation"]["snapshot_id"]) == ("bob/analysis.ipynb", bob)
    (peaks, *_) = await found(api, "alice", "spectrometer peaks histogram")
    assert peaks["source"] == "alice/analysis.ipynb"
    assert peaks["citation"]["environment_id"] == "alice"


async def test_a_researchers_own_live_notebook_is_found_once(api, lab_stores, service, tmp_path):
    # Given alice's snapshot of her notebook, which is also in her workspace and its index
    await report(api, lab_stores, "alice", "vault-13", {"analysis.ipynb": BOB_ANALYSIS})
    assert await found(api, "alice")
    workspace = tmp_path / "alice-home"
    workspace.mkdir()
    (workspace / "analysis.ipynb").write_bytes(BOB_ANALYSIS)
    own = KnowledgeBase(tmp_path / "alice-kb.sqlite")
    own.ingest_workspace(workspace)
    server = EnvironmentService(
        store=str(tmp_path / "alice-store"), key_file=tmp_path / "alice.key", root=workspace,
        pythons=[], environment_id="alice", event_log=EventLog(tmp_path / "events.sqlite"),
    )  # fmt: skip
    context = ToolContext(server, own, LabMemoryClient(service.base, "alice-token"))
    # When she searches
    result = await asyncio.to_thread(
        search_knowledge_base, context, {"query": QUESTION, "kinds": ["notebook"]}
    )
    # Then her notebook comes once, from her live workspace, not again from her snapshot
    sources = [row["source"] for row in result.data["results"]]
    assert sources == ["analysis.ipynb"], sources
    # and once she deletes it, the snapshot's copy answers
    (workspace / "analysis.ipynb").unlink()
    result = await asyncio.to_thread(
        search_knowledge_base, context, {"query": QUESTION, "kinds": ["notebook"]}
    )
    assert "alice/analysis.ipynb" in [row["source"] for row in result.data["results"]]
    own.close()
