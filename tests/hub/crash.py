"""kill -9 of the hub service during event ingestion; shared by its test and bench/soak.py.

The service runs as JupyterHub starts it (``python -m westtek_hub``, its own process) on
SQLite; drift events are posted by many concurrent "servers". At a random moment the
service is SIGKILLed, then restarted, and every event whose answer was lost is posted again
(as the servers' hub sink retries). Then: every event acknowledged before the kill is
stored, every event is stored exactly once, the database passes SQLite's integrity check and
the audit log's hash chain verifies.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.conftest import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
REPORTERS = ("alice", "bob", "carol")


@dataclass
class IngestCrashRun:
    """What the kills did."""

    kills: int = 0
    events: int = 0
    acknowledged_before_kills: int = 0
    lost_answers: int = 0  # posts whose answer never came (re-sent after the restart)
    stored: int = 0
    duplicates: int = 0
    peak_rss_mib: float = 0.0
    restarts_s: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Figures for bench/soak.py's table."""
        return {
            "kills": self.kills,
            "events": self.events,
            "acknowledged_before_kills": self.acknowledged_before_kills,
            "lost_answers": self.lost_answers,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "restart_s_max": round(max(self.restarts_s, default=0.0), 2),
        }


def start_service(db: Path, hub_api: str, token: str, data_dir: Path) -> tuple[Any, int]:
    """``python -m westtek_hub`` on a free port against the SQLite file ``db``."""
    port = free_port()
    command = [
        sys.executable, "-m", "westtek_hub",
        f"--WestTekHubService.port={port}", "--WestTekHubService.ip=127.0.0.1",
        f"--WestTekHubService.db_url=sqlite:///{db}", f"--WestTekHubService.data_dir={data_dir}",
        "--WestTekHubService.lab_groups=['vault-13', 'vault-101']",
        f"--HubAuth.api_url={hub_api}", f"--HubAuth.api_token={token}",
    ]  # fmt: skip
    env = dict(
        os.environ, JUPYTERHUB_SERVICE_PREFIX="/services/westtek/", PYTHONPATH=str(REPO_ROOT)
    )
    log = open(data_dir / f"service-{port}.log", "w")  # noqa: SIM115 - the process keeps it
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return process, port


async def wait_up(base: str, process: Any, timeout: float = 60) -> None:
    client = AsyncHTTPClient()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the hub service exited with {process.returncode}")
        try:
            await client.fetch(base + "status", request_timeout=5)
            return
        except Exception:  # noqa: BLE001 - not listening yet
            await asyncio.sleep(0.1)
    raise RuntimeError("the hub service did not start")


def event(index: int) -> tuple[str, dict[str, Any]]:
    """The ``index``-th event: who reports it, and its body."""
    user = REPORTERS[index % len(REPORTERS)]
    return user, {
        "id": index, "time": 1_790_000_000.0 + index, "environment_id": f"{user}:env",
        "baseline": "0" * 64, "status": "MINOR_DRIFT" if index % 3 else "CRITICAL_DRIFT",
        "changes": [{"kind": "package", "name": "numpy", "change": "upgraded",
                     "before": "1.26", "after": "2.0", "severity": "minor",
                     "affected_notebooks": [], "reason": "numpy upgraded"}],
        "resolved": [],
    }  # fmt: skip


async def post(client: AsyncHTTPClient, base: str, index: int) -> int:
    user, body = event(index)
    try:
        response = await client.fetch(
            HTTPRequest(base + "events", method="POST", body=json.dumps(body),
                        headers={"Authorization": f"token {user}-token"}, request_timeout=20),
            raise_error=False,
        )  # fmt: skip
        return response.code
    except Exception:  # noqa: BLE001 - connection reset or refused: the answer is lost
        return 599


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def run_ingest_kills(
    hub_api: str, token: str, data_dir: Path, kills: int, *, per_round: int = 150,
    rate: float = 200.0, seed: int = 11,
) -> IngestCrashRun:  # fmt: skip
    """Post events at ``rate``/s in rounds; SIGKILL the service once per round at random."""
    rng = random.Random(seed)
    db = data_dir / "registry.sqlite"
    run = IngestCrashRun(kills=kills)
    AsyncHTTPClient.configure(None, max_clients=64)
    client = AsyncHTTPClient()
    acknowledged: set[int] = set()
    unanswered: set[int] = set()
    next_index = 0
    process, port = start_service(db, hub_api, token, data_dir)
    base = f"http://127.0.0.1:{port}/services/westtek/api/"
    await wait_up(base, process)
    for _ in range(kills):
        indexes = list(range(next_index, next_index + per_round))
        next_index += per_round
        kill_after = rng.uniform(0.1, 0.9) * per_round / rate

        async def killer(process: Any = process, kill_after: float = kill_after) -> None:
            await asyncio.sleep(kill_after)
            run.peak_rss_mib = max(run.peak_rss_mib, rss_mib(process.pid))
            process.send_signal(signal.SIGKILL)

        async def one(index: int, delay: float, base: str = base) -> None:
            await asyncio.sleep(delay)
            code = await post(client, base, index)
            (acknowledged if code in (200, 201) else unanswered).add(index)

        await asyncio.gather(killer(), *(one(i, n / rate) for n, i in enumerate(indexes)))
        process.wait()
        run.acknowledged_before_kills = len(acknowledged)
        began = time.monotonic()
        process, port = start_service(db, hub_api, token, data_dir)
        base = f"http://127.0.0.1:{port}/services/westtek/api/"
        await wait_up(base, process)
        run.restarts_s.append(time.monotonic() - began)
        # the servers' sinks send again what got no answer
        retry = sorted(unanswered)
        run.lost_answers += len(retry)
        unanswered.clear()
        codes = await asyncio.gather(*(post(client, base, i) for i in retry))
        for index, code in zip(retry, codes, strict=True):
            assert code in (200, 201), (index, code)
            acknowledged.add(index)
    run.peak_rss_mib = max(run.peak_rss_mib, rss_mib(process.pid))
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    run.events = next_index
    assert acknowledged == set(range(next_index))
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = connection.execute(
            "SELECT reported_by, event_key, count(*) FROM drift_events GROUP BY 1, 2"
        ).fetchall()
    run.stored = len(rows)
    run.duplicates = sum(count - 1 for _, _, count in rows)
    return run
