"""A snapshot's record names where it is in the store and the image its server ran in.

``s3_location`` comes with the server's report; ``image_digest`` from the spawner's report
of the server's container, only for snapshots taken after it. Shown by the API and the
panel's succession page; the migration adding the column keeps what was recorded before.
Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from tests.hub.conftest import answer
from tests.hub.test_panel import fetch
from tests.hub.test_registry_api import snapshot_report
from westtek_hub.db import alembic_config, make_engine, upgrade
from westtek_hub.models import Base

INFO = {"task_arn": "arn:aws:ecs:eu-west-1:1:task/c/abc", "cluster": "westtek",
        "jupyter_url": "http://10.0.0.5:8888/", "efs_access_point": "fsap-1"}  # fmt: skip
DIGEST = "sha256:" + "fe" * 32


def at(seconds_from_now: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now)).isoformat()


async def snapshots_of(api, env: str, user: str) -> dict[str, dict[str, Any]]:
    """The environment's snapshot records as the API shows them (its transfer package)."""
    package = answer(await api("GET", f"knowledge/transfer?environment_id={env}", user))
    return {snap["id"]: snap for snap in package["snapshots"]}


async def test_a_snapshot_taken_in_a_container_records_its_location_and_image(api, service):
    # Given alice's server, reported by the spawner as running an image with a digest,
    assert (await api("POST", "snapshots", "alice", snapshot_report("alice", "0a" * 32))).code
    body = {"container_info": INFO, "image_digest": DIGEST}
    assert (await api("PUT", "environments/alice/container", "alice", body)).code == 200
    # when it reports a snapshot in its S3 store,
    location = f"s3://westtek-labs/labs/vault-13/snapshots/{'1a' * 32}"
    report = snapshot_report("alice", "1a" * 32, timestamp=at(1), s3_location=location)
    assert (await api("POST", "snapshots", "alice", report)).code == 201
    # its record names the manifest's object and the image's digest;
    snaps = await snapshots_of(api, "alice", "alice")
    assert (snaps["1a" * 32]["s3_location"], snaps["1a" * 32]["image_digest"]) == (
        location,
        DIGEST,
    )
    # a snapshot from before that server started (delivered late by its outbox) is not
    # stamped with an image it may not have run in, nor is one reported before the spawner's.
    late = snapshot_report("alice", "2a" * 32, timestamp=at(-3600))
    assert (await api("POST", "snapshots", "alice", late)).code == 201
    snaps = await snapshots_of(api, "alice", "alice")
    assert snaps["2a" * 32]["image_digest"] is None
    assert snaps["0a" * 32]["image_digest"] is None
    # The panel's succession page shows both.
    page = re.sub(r"\s+", " ", (await fetch(service, "succession?environment_id=alice", "alice"))
                  .body.decode())  # fmt: skip
    row = re.search(rf'<tr data-snapshot="{"1a" * 32}">(.*?)</tr>', page)
    assert row is not None
    assert f"<code>{location}</code>" in row.group(1)
    assert f'<code title="{DIGEST}">{DIGEST[:19]}</code>' in row.group(1)
    old = re.search(rf'<tr data-snapshot="{"2a" * 32}">(.*?)</tr>', page)
    assert old is not None and "local store" in old.group(1) and "no image" in old.group(1)


async def test_a_local_process_server_records_no_image(api):
    # Given a server started in an image, then restarted as a local process (no digest),
    body = {"container_info": INFO, "image_digest": DIGEST}
    assert (await api("PUT", "environments/bob/container", "bob", body)).code == 200
    local = {"container_info": {"jupyter_url": "http://127.0.0.1:8890/"}, "image_digest": ""}
    assert (await api("PUT", "environments/bob/container", "bob", local)).code == 200
    # its snapshots (in a local store) record neither a location nor the former image.
    report = snapshot_report("bob", "3b" * 32, timestamp=at(1))
    assert (await api("POST", "snapshots", "bob", report)).code == 201
    snap = (await snapshots_of(api, "bob", "bob"))["3b" * 32]
    assert (snap["s3_location"], snap["image_digest"]) == (None, None)


def test_the_migration_adds_the_image_digest_and_keeps_recorded_snapshots(db_url):
    # Given a registry at the previous revision holding a snapshot,
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0002_share_copies")
        with engine.begin() as db:
            db.execute(text("INSERT INTO labs (id, created_at) VALUES ('vault-13', :t)"),
                       {"t": datetime.now(timezone.utc)})  # fmt: skip
            db.execute(text("INSERT INTO researchers (name, created_at) VALUES ('alice', :t)"),
                       {"t": datetime.now(timezone.utc)})  # fmt: skip
            db.execute(
                text("INSERT INTO environments (id, lab_id, researcher_id, name, created_at, "
                     "drift_status, container_info, metadata) VALUES ('alice', 'vault-13', "
                     "'alice', 'alice', :t, 'STABLE', '{}', '{}')"),
                {"t": datetime.now(timezone.utc)},
            )  # fmt: skip
            db.execute(
                text("INSERT INTO snapshots (id, environment_id, created_by, timestamp, "
                     "s3_location, size_bytes, metadata) VALUES ('5a', 'alice', 'alice', :t, "
                     "'s3://b/snapshots/5a', 1, '{}')"),
                {"t": datetime.now(timezone.utc)},
            )  # fmt: skip
        # when it is upgraded, the snapshot is kept, its image unknown,
        upgrade(engine)
        with engine.connect() as db:
            row = db.execute(text("SELECT s3_location, image_digest FROM snapshots")).one()
            assert tuple(row) == ("s3://b/snapshots/5a", None)
            # and the schema is exactly what the models describe.
            assert compare_metadata(MigrationContext.configure(db), Base.metadata) == []
        # Downgrading drops the column again.
        with engine.begin() as db:
            command.downgrade(alembic_config(db), "0002_share_copies")
        columns = {c["name"] for c in inspect(engine).get_columns("snapshots")}
        assert "image_digest" not in columns and "s3_location" in columns
    finally:
        engine.dispose()
