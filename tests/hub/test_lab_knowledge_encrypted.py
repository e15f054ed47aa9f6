"""The lab's memory over encrypted lab stores: a reassignment's copy has an id of its own.

Each lab's store is encrypted with its own key, so copying bob's snapshot into carol's
lab's store gives it another id there. The successor's citations name that copy, and
opening one shows the cell. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from traitlets.config import Config

from tests.core.kb.test_lab_memory import BOB_ANALYSIS
from tests.hub.conftest import Service, answer, close_hub_http_client, store_snapshot
from tests.hub.test_lab_knowledge import found
from tests.hub.test_registry_api import snapshot_report


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
async def service(
    fake_hub, db_url: str, tmp_path: Path, quotas, lab_stores, keys
) -> AsyncIterator[Service]:
    """The hub service over lab stores encrypted each with its own key."""
    config = Config({"LabStores": {"key_file_template": str(keys / "{lab_id}.key")}})
    running = Service(fake_hub[1], db_url, tmp_path / "hub-data", quotas, lab_stores, config)
    running.start()
    yield running
    running.stop()
    await close_hub_http_client()


async def test_a_successor_opens_a_cell_cited_from_the_copy_in_their_labs_store(
    api, lab_stores, keys
):
    # Given bob's snapshot in vault-13's encrypted store,
    keys.mkdir()
    files = {"analysis.ipynb": BOB_ANALYSIS}
    bob = store_snapshot(lab_stores / "vault-13", "bob", files, keys / "vault-13.key")
    reported = await api("POST", "snapshots", "bob", snapshot_report("bob", bob))
    assert reported.code == 201, answer(reported)
    # when the hub admin hands bob's environment to carol, of vault-101,
    handed = await api("POST", "knowledge/transfer", "overseer",
                       {"environment_id": "bob", "to_researcher": "carol"})  # fmt: skip
    assert handed.code == 200, answer(handed)
    copy = answer(handed)["snapshots_copied"]["copied"][bob]
    assert copy != bob  # another key, another id
    # then carol's answer cites the copy in her lab's store,
    (best, *_) = await found(api, "carol")
    assert best["citation"]["snapshot_id"] == copy
    # and opening the citation shows the cell.
    query = urlencode({"environment_id": "bob", "snapshot_id": copy, "path": "analysis.ipynb",
                       "cell": best["citation"]["locator"].removeprefix("cell ")})  # fmt: skip
    opened = await api("GET", f"knowledge/cell?{query}", "carol")
    assert opened.code == 200, answer(opened)
    assert answer(opened)["source"] in best["text"]
    # A copy id of another environment opens nothing.
    other = query.replace("environment_id=bob", "environment_id=carol")
    assert (await api("GET", f"knowledge/cell?{other}", "carol")).code == 404
