"""kill -9 of the hub service while drift events pour in: nothing acknowledged is lost.

Three rounds of 150 events posted at 200 events/s by three researchers' servers, the
service SIGKILLed at a random moment in each, restarted, and the unanswered posts sent
again. Every event ends up stored exactly once, SQLite's integrity check passes and the
audit log verifies. bench/soak.py runs the same with more kills.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.hub.conftest import SERVICE_TOKEN
from tests.hub.crash import run_ingest_kills


@pytest.mark.slow
async def test_sigkill_during_ingestion_loses_and_doubles_nothing(fake_hub, tmp_path):
    _, hub_api = fake_hub
    run = await run_ingest_kills(hub_api, SERVICE_TOKEN, tmp_path, kills=3)
    assert run.stored == run.events == 450
    assert run.duplicates == 0
    assert run.lost_answers > 0, "no kill landed while events were in flight"
    verified = subprocess.run(
        [sys.executable, "-m", "westtek_core.cli", "audit", "verify",
         "--db", f"sqlite:///{tmp_path / 'registry.sqlite'}", "--json",
         "--key-file", str(tmp_path / "audit_key"),
         "--anchor", str(tmp_path / "audit_anchor.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
