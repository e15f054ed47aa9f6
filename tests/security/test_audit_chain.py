"""The audit log cannot be rewritten unnoticed (issue 18, item 5).

The attacker can write the registry database (SQLite and PostgreSQL) but holds neither the
chain's key nor its anchor. Every way of rewriting the log they have — deleting, editing or
reordering entries and chaining them again with plain SHA-256 as anyone can, cutting its
end, forging a whole chain under a key of their own — is caught by ``westtek audit verify``
(its public entry) and by the panel's audit view. Launches and stops are logged with what
the hub answered, not before it answered.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from tornado.httpclient import AsyncHTTPClient

from tests.hub.conftest import Service, answer
from westtek_core.aws import aws_client
from westtek_core.cli import main
from westtek_hub import audit
from westtek_hub.audit import AuditChain
from westtek_hub.audit_anchor import ChainHead, FileAnchor, S3ObjectLockAnchor
from westtek_hub.db import make_engine, session_factory
from westtek_hub.models import AuditEntry

SNAPSHOTS = {"alice": "a1" * 32, "bob": "b0" * 32, "carol": "ca" * 32}
COLUMNS = [column.key for column in AuditEntry.__table__.columns]


@pytest.fixture
def anchor_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the service anchors the chain's head: a file, or (param "s3") Object Lock on moto."""
    if getattr(request, "param", "file") == "file":
        return str(tmp_path / "audit" / "head.json")
    request.getfixturevalue("s3_endpoint")
    bucket = f"westtek-audit-{secrets.token_hex(4)}"
    aws_client("s3").create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    return f"s3://{bucket}/audit/"


@pytest.fixture
def key_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    """The key file named to the service and the CLI; (param "default") none: the service's."""
    if getattr(request, "param", "named") == "default":
        return None
    return tmp_path / "audit" / "key"


@pytest.fixture(autouse=True)
def chain_outside_the_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, anchor_location: str, key_file: Path | None
) -> None:
    """The key file and the anchor, as the service and ``westtek audit verify`` both find them."""
    monkeypatch.delenv("WESTTEK_AUDIT_KEY", raising=False)
    monkeypatch.delenv("WESTTEK_AUDIT_KEY_FILE", raising=False)
    if key_file is not None:
        monkeypatch.setenv("WESTTEK_AUDIT_KEY_FILE", str(key_file))
    monkeypatch.setenv("WESTTEK_AUDIT_ANCHOR", anchor_location)
    monkeypatch.setenv("WESTTEK_DATA_DIR", str(tmp_path / "cli-data"))


def snapshot_report(user: str) -> dict[str, Any]:
    return {"id": SNAPSHOTS[user], "environment_id": user, "created_by": user,
            "timestamp": datetime.now(timezone.utc).isoformat(), "size_bytes": 1000,
            "checksum": "c0ffee", "metadata": {}}  # fmt: skip


async def seed(api) -> None:
    """Environments and snapshots of three researchers, and one audited denial."""
    for user in SNAPSHOTS:
        response = await api("POST", "snapshots", user, snapshot_report(user))
        assert response.code == 201, answer(response)
    assert (await api("GET", "audit", "dana")).code == 403


def cli_verify(db_url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["audit", "verify", "--db", db_url, "--json"])
    return code, json.loads(capsys.readouterr().out)


async def panel_verification(service: Service) -> str:
    """The audit view's chain badge and its text, as the hub admin sees it."""
    response = await AsyncHTTPClient().fetch(
        service.base.removesuffix("api/") + "audit",
        headers={"Authorization": "token overseer-token"},
        raise_error=False,
    )
    assert response.code == 200
    body = response.body.decode()
    start = body.index('id="westtek-chain"')
    return " ".join(body[start : body.index("</span>", start)].split())


def plain_sha256_chain(entries: list[AuditEntry]) -> list[AuditEntry]:
    """Numbered from 1 and chained again as anyone can: SHA-256 of each entry's content."""
    previous = audit.GENESIS
    for seq, entry in enumerate(entries, 1):
        entry.seq, entry.prev_hash = seq, previous
        content = {k: v for k, v in audit.to_json(entry).items() if k != "hash"}
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
        entry.hash = previous = hashlib.sha256(canonical.encode()).hexdigest()
    return entries


def rewrite_log(db_url: str, change: Callable[[list[AuditEntry]], list[AuditEntry]]) -> None:
    """Replace the log by ``change`` of its entries, straight in the database."""
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        entries = [AuditEntry(**{c: getattr(row, c) for c in COLUMNS}) for row in rows]
        session.execute(delete(AuditEntry))
        session.add_all(change(entries))
        session.commit()
    engine.dispose()


def delete_entry_and_renumber(entries: list[AuditEntry]) -> list[AuditEntry]:
    return plain_sha256_chain(entries[:1] + entries[2:])


def edit_entry(entries: list[AuditEntry]) -> list[AuditEntry]:
    entries[1].actor = "mallory"
    return plain_sha256_chain(entries)


def reorder_entries(entries: list[AuditEntry]) -> list[AuditEntry]:
    return plain_sha256_chain([entries[0], entries[2], entries[1], *entries[3:]])


def cut_the_end(entries: list[AuditEntry]) -> list[AuditEntry]:
    return entries[:-2]  # the rest of the chain is untouched, so every link still holds


def forge_under_own_key(entries: list[AuditEntry]) -> list[AuditEntry]:
    """The whole log again, consistently, under a key the attacker made up."""
    key = secrets.token_bytes(32)
    previous = audit.GENESIS
    for entry in entries:
        entry.actor, entry.prev_hash = "mallory", previous
        entry.hash = previous = audit.entry_hash(entry, key)
    return entries


TAMPERING = {
    "delete": (delete_entry_and_renumber, "was altered"),
    "edit": (edit_entry, "was altered"),
    "renumber": (reorder_entries, "was altered"),
    "truncate": (cut_the_end, "entries were removed from its end"),
    "rewrite": (forge_under_own_key, "was altered"),
}


async def seed_verified(api, service: Service, db_url: str, capsys) -> int:
    """Seed the log; both checks pass on it untouched. How many entries it has."""
    await seed(api)
    code, verdict = cli_verify(db_url, capsys)
    assert code == 0 and verdict["verified"] is True, verdict
    assert 'data-verified="true"' in await panel_verification(service)
    return int(verdict["checked"])


async def assert_caught(
    api, service: Service, db_url: str, capsys, tamper: Callable[..., Any], problem: str
) -> None:
    await seed_verified(api, service, db_url, capsys)

    rewrite_log(db_url, tamper)

    code, verdict = cli_verify(db_url, capsys)
    assert code == 1 and verdict["verified"] is False and problem in verdict["problem"]
    badge = await panel_verification(service)
    assert 'data-verified="false"' in badge and problem in badge


@pytest.mark.parametrize("scenario", list(TAMPERING))
async def test_a_rewritten_log_is_caught_by_the_cli_and_the_panel(
    scenario, api, service, db_url, capsys
):
    tamper, problem = TAMPERING[scenario]
    await assert_caught(api, service, db_url, capsys, tamper, problem)


@pytest.mark.parametrize("anchor_location", ["s3"], indirect=True)
async def test_a_cut_end_is_caught_through_the_s3_object_lock_anchor(
    api, service, db_url, capsys, anchor_location
):
    await assert_caught(api, service, db_url, capsys, *TAMPERING["truncate"])


@pytest.mark.parametrize("anchor_location", ["s3"], indirect=True)
async def test_s3_heads_are_locked_and_a_delete_marker_hides_none(
    api, service, db_url, capsys, anchor_location
):
    count = await seed_verified(api, service, db_url, capsys)
    bucket = anchor_location.removeprefix("s3://").split("/")[0]
    anchor = S3ObjectLockAnchor(bucket, "audit", retention_days=1)
    s3 = aws_client("s3")
    newest = s3.head_object(Bucket=bucket, Key=anchor.head_key(count))
    assert newest["ObjectLockMode"] == "COMPLIANCE"

    # the attacker cuts the log's end and hides the heads that name it behind delete markers
    rewrite_log(db_url, cut_the_end)
    for seq in (count - 1, count):
        s3.delete_object(Bucket=bucket, Key=anchor.head_key(seq))

    code, verdict = cli_verify(db_url, capsys)
    assert code == 1 and f"anchors entry {count}" in verdict["problem"]


@pytest.mark.parametrize("key_file", ["default"], indirect=True)
async def test_the_service_keeps_its_key_in_a_private_file_not_the_database(
    api, service, db_url, key_file
):
    # Given no key configured, the service made one in its data directory (the demo's case)
    key_file = Path(service.app.data_dir) / "audit_key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = bytes.fromhex(key_file.read_text().strip())
    await seed(api)
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.seq)))
    engine.dispose()
    # every hash is keyed with it, and it is nowhere in the log
    assert [audit.entry_hash(e, key) for e in entries] == [e.hash for e in entries]
    assert all(key.hex() not in json.dumps(audit.to_json(e)) for e in entries)


async def outcomes(api, action: str) -> list[tuple[str, Any]]:
    log = answer(await api("GET", "audit", "overseer"))
    return [(e["outcome"], e["detail"].get("hub_status")) for e in log["entries"]
            if e["action"] == action]  # fmt: skip


async def test_a_launch_is_logged_with_the_hubs_answer(api, fake_hub):
    await seed(api)
    fake_hub[0].failing = 500
    failed = await api("POST", "environments/jupyter", "alice", {"environment_id": "alice"})
    assert failed.code == 502
    fake_hub[0].failing = None
    started = await api("POST", "environments/jupyter", "alice", {"environment_id": "alice"})
    assert started.code == 202
    assert await outcomes(api, "server.launch") == [("error", 500), ("ok", None)]


async def test_a_stop_is_logged_with_the_hubs_answer(api, fake_hub):
    await seed(api)
    fake_hub[0].failing = 503
    failed = await api("DELETE", "environments/alice/server", "alice")
    assert failed.code == 502
    fake_hub[0].failing = None
    stopped = await api("DELETE", "environments/alice/server", "alice")
    assert stopped.code == 202
    assert await outcomes(api, "server.stop") == [("error", 503), ("ok", None)]


def test_an_anchor_never_moves_back(tmp_path):
    # two commits may anchor out of order: the older head must not replace the newer one
    anchor = FileAnchor(tmp_path / "head.json")
    anchor.record(ChainHead(7, "h7"))
    anchor.record(ChainHead(6, "h6"))
    assert anchor.latest() == ChainHead(7, "h7")


def test_a_chain_refuses_a_short_key(tmp_path):
    with pytest.raises(ValueError, match="at least 32 bytes"):
        AuditChain(b"short", FileAnchor(tmp_path / "head.json"))
