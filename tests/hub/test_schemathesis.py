"""Property-based fuzzing of the hub service's REST API with schemathesis: never a 5xx.

The service publishes no OpenAPI document, so its routes are described here (paths, verbs,
query parameters and the fields each body carries, loosely typed so that schemathesis also
sends wrong types). The service runs on 127.0.0.1 against SQLite with the fake hub API of
tests/hub/conftest.py; requests go as a lab admin (who may do the most) and as a hub admin.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis

from tests.hub.test_registry_api import seed, snapshot_report
from tests.server_ext.test_schemathesis import fuzz

ANY = {}  # any JSON value
TEXT = {"type": "string"}


def body(**fields: Any) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": fields, "additionalProperties": True}
            }
        },
    }


def query(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "schema": TEXT} for n in names]


def path(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": TEXT} for n in names]


ANSWER = {"responses": {"default": {"description": "any"}}}
EVENT = body(
    id=ANY, time=ANY, environment_id=TEXT, baseline=TEXT, status=TEXT, changes=ANY, resolved=ANY
)
SNAPSHOT = body(
    id=TEXT, environment_id=TEXT, created_by=TEXT, timestamp=TEXT, size_bytes=ANY,
    checksum=TEXT, metadata=ANY,
)  # fmt: skip

HUB_API: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "West Tek hub service (as tested)", "version": "1"},
    "paths": {
        "/environments": {"get": {**ANSWER, "parameters": query("lab", "drift")}},
        "/environments/jupyter": {
            "post": {
                **ANSWER,
                "requestBody": body(environment_id=TEXT, snapshot_id=ANY, server_name=ANY),
            }  # fmt: skip
        },
        "/environments/snapshot": {
            "post": {**ANSWER, "requestBody": body(environment_id=TEXT, note=ANY)}
        },
        "/environments/take-over": {"post": {**ANSWER, "requestBody": body(environment_id=TEXT)}},
        "/environments/own-id": {"get": {**ANSWER, "parameters": query("server_name")}},
        "/environments/{env_id}/drift": {"get": {**ANSWER, "parameters": path("env_id")}},
        "/environments/{env_id}/container": {
            "put": {
                **ANSWER,
                "parameters": path("env_id"),
                "requestBody": body(container_info=ANY, image_digest=ANY),
            }  # fmt: skip
        },
        "/events": {
            "post": {**ANSWER, "requestBody": EVENT},
            "get": {**ANSWER, "parameters": query("environment_id", "limit")},
        },
        "/snapshots": {"post": {**ANSWER, "requestBody": SNAPSHOT}},
        "/collaboration/share": {
            "post": {**ANSWER, "requestBody": body(snapshot_id=TEXT, to_lab=TEXT, permission=ANY)},
            "get": ANSWER,
        },
        "/collaboration/share/{share_id}": {
            "delete": {
                **ANSWER,
                "parameters": [
                    {
                        "name": "share_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9]+$"},
                    }
                ],
            }  # fmt: skip
        },
        "/knowledge/transfer": {
            "get": {**ANSWER, "parameters": query("environment_id")},
            "post": {**ANSWER, "requestBody": body(environment_id=TEXT, to_researcher=ANY)},
        },
        "/knowledge/search": {"get": {**ANSWER, "parameters": query("q", "k", "lab_id")}},
        "/knowledge/cell": {
            "get": {
                **ANSWER,
                "parameters": query("environment_id", "snapshot_id", "path", "cell"),
            }  # fmt: skip
        },
        "/labs/{lab_id}/auto-snapshots": {
            "get": {**ANSWER, "parameters": path("lab_id")},
            "put": {
                **ANSWER,
                "parameters": path("lab_id"),
                "requestBody": body(
                    enabled=ANY, settle_seconds=ANY, interval_hours=ANY, retention=ANY
                ),
            },
        },
        "/audit": {"get": {**ANSWER, "parameters": query("format")}},
        "/storage": {"get": ANSWER},
        "/status": {"get": ANSWER},
    },
}


@pytest.fixture
def db_url(tmp_path) -> str:
    """SQLite only: the PostgreSQL side of the registry runs the matrix tests."""
    return f"sqlite:///{tmp_path / 'registry.sqlite'}"


@pytest.mark.parametrize("user", ["dana", "overseer"])
async def test_no_generated_request_makes_the_hub_service_answer_5xx(api, service, user):
    await seed(api)
    assert (await api("POST", "snapshots", "erin", snapshot_report("erin:env", "e0" * 32))).code
    schema = schemathesis.openapi.from_dict(HUB_API)
    statuses: list[int] = []
    failures = await asyncio.to_thread(
        fuzz,
        schema,
        service.base.rstrip("/"),
        {"Authorization": f"token {user}-token"},
        set(),
        statuses,
    )
    assert failures == [], "\n".join(failures)
    assert len(statuses) >= 100 and 200 in statuses, statuses
