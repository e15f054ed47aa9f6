"""The lab's memory on the lab's Bedrock Knowledge Base (as on AWS), through the hub service.

Real snapshots in the labs' real stores; S3 is moto and Bedrock the loopback fake of
tests/core/kb (one knowledge base per lab over its prefix of one bucket). The memory writes
and searches only under its own scope: no researcher's snapshot, nor any server's live
ingest, removes another's documents, and no lab reads another's. Every test runs on SQLite
and on PostgreSQL.
"""

# ruff: noqa: F811 - the fixtures imported from the core suite are parameters here
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.core.kb.test_bedrock_index import (  # noqa: F401 - fixtures
    LABS,
    _loopback_only,
    bedrock,
    bedrock_config,
    keys,
    open_index,
    s3,
)
from tests.core.kb.test_lab_memory import BOB_ANALYSIS, CAROL_ANALYSIS, notebook
from tests.core.store.conftest import moto_endpoint  # noqa: F401 - a fixture
from tests.hub.conftest import Service, close_hub_http_client
from tests.hub.test_lab_knowledge import found, report
from westtek_core.kb import KnowledgeBase

MEMORY = "labs/vault-13/kb/env/lab%20memory/"


@pytest.fixture
async def service(
    fake_hub,
    db_url: str,
    tmp_path: Path,
    quotas,
    lab_stores,
    bedrock,
    moto_endpoint,
) -> AsyncIterator[Service]:
    """The hub service with every lab's memory on that lab's (fake) Bedrock Knowledge Base."""
    config = bedrock_config(bedrock, moto_endpoint)
    running = Service(fake_hub[1], db_url, tmp_path / "hub-data", quotas, lab_stores, config)
    running.start()
    yield running
    running.stop()
    await close_hub_http_client()


def memory_sources(s3: Any, bucket: str) -> set[str]:
    """The notebooks the memory keeps in vault-13's knowledge base, as ``<env>/<path>``."""
    prefix = MEMORY + "notebook/"
    return {unquote(k[len(prefix) :].split("/", 1)[0]) for k in keys(s3, bucket)
            if k.startswith(prefix)}  # fmt: skip


async def eventually(what: str, check: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
    """``check()``'s first truthy answer: the memory adds each snapshot in the background."""
    deadline = time.monotonic() + timeout
    while not (answer := await check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.2)
    return answer


async def best_of(api, question: str, researcher: str) -> dict[str, Any] | None:
    """The best citation for ``question`` when it is the researcher's, else None."""
    results = await found(api, "dana", question, timeout=0)
    return (
        results[0]["citation"]
        if results and results[0]["citation"]["researcher"] == (researcher)
        else None
    )


async def test_two_researchers_same_named_notebooks_live_side_by_side(
    api,
    lab_stores,
    bedrock,
    s3,
):
    # Given alice's and bob's analysis.ipynb, each reported in a snapshot of their own,
    alice = await report(api, lab_stores, "alice", "vault-13", {"analysis.ipynb": CAROL_ANALYSIS})
    bob = await report(api, lab_stores, "bob", "vault-13", {"analysis.ipynb": BOB_ANALYSIS})
    # then both are in the lab's knowledge base, under the memory's own scope,
    both = {"alice/analysis.ipynb", "bob/analysis.ipynb"}

    async def stored() -> bool:
        return memory_sources(s3, bedrock.bucket) >= both

    await eventually("both notebooks stored", stored)
    # and each answers its own question, cited to its own researcher and snapshot.
    figure = "which notebook makes figure 3 from the beam data"
    cited = await eventually("bob's notebook cited", lambda: best_of(api, figure, "bob"))
    assert (cited["snapshot_id"], cited["path"]) == (bob, "analysis.ipynb")
    peaks = "histogram of the spectrometer peaks"
    cited = await eventually("alice's notebook cited", lambda: best_of(api, peaks, "alice"))
    assert (cited["snapshot_id"], cited["path"]) == (alice, "analysis.ipynb")
    passages = bedrock.passages[LABS["vault-13"][0]]
    assert {p["metadata"]["environment"] for p in passages} == {"lab memory"}


async def test_no_snapshot_and_no_servers_ingest_removes_another_researchers_documents(
    api,
    lab_stores,
    bedrock,
    s3,
    open_index,
    tmp_path,
):
    # Given alice's notebook in the lab's memory,
    await report(api, lab_stores, "alice", "vault-13", {"analysis.ipynb": CAROL_ANALYSIS})
    assert await found(api, "dana")
    # when bob reports two snapshots (the second without his first notebook),
    await report(api, lab_stores, "bob", "vault-13", {"fit.ipynb": BOB_ANALYSIS})
    await report(api, lab_stores, "bob", "vault-13", {"plot.ipynb": notebook("import numpy")})
    # and bob's server ingests its live workspace into the same knowledge base,
    home = tmp_path / "bob-home"
    home.mkdir()
    (home / "scratch.ipynb").write_bytes(notebook("# a live sketch of the beam optics"))
    KnowledgeBase(tmp_path / "bob.sqlite", index=open_index("vault-13", "bob")).ingest_workspace(
        home
    )
    # then alice's document is still in the memory, beside both of bob's snapshots',
    kept = {"alice/analysis.ipynb", "bob/fit.ipynb", "bob/plot.ipynb"}

    async def stored() -> bool:
        return memory_sources(s3, bedrock.bucket) >= kept

    await eventually("every snapshot's notebooks stored", stored)
    # and the memory answers from what was preserved, never from a server's live files.
    results = await found(api, "dana", "live sketch of the beam optics", timeout=0)
    assert all(r["citation"]["path"] != "scratch.ipynb" for r in results)


async def test_a_lab_never_reads_another_labs_memory(api, lab_stores, bedrock):
    await report(api, lab_stores, "bob", "vault-13", {"analysis.ipynb": BOB_ANALYSIS})
    assert await found(api, "dana")
    assert await found(api, "carol", timeout=0) == []  # vault-101's knowledge base
    # every search is bound to one lab and to the memory's own scope
    filters = [body["retrievalConfiguration"]["vectorSearchConfiguration"]["filter"]
               for name, body in bedrock.requests if name == "Retrieve"]  # fmt: skip
    assert filters and all(
        {"equals": {"key": "environment", "value": "lab memory"}} in f["andAll"]
        and any(c.get("equals", {}).get("key") == "lab" for c in f["andAll"])
        for f in filters
    )
