"""The hub service's Prometheus metrics: values after seeding through the API, and who may
scrape them. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from tests.hub.conftest import Service, answer

SNAPSHOTS = {"alice": ("a1" * 32, 1000), "bob": ("b0" * 32, 2500), "carol": ("ca" * 32, 400)}


def snapshot_report(env: str) -> dict[str, Any]:
    snap, size = SNAPSHOTS[env]
    return {"id": snap, "environment_id": env, "created_by": env,
            "timestamp": "2026-11-20T10:00:00+00:00", "size_bytes": size}  # fmt: skip


def drift_event(env: str, n: int, status: str) -> dict[str, Any]:
    return {"id": n, "time": 1_790_000_000.0 + n, "environment_id": env, "status": status,
            "changes": [], "resolved": []}  # fmt: skip


async def scrape(service: Service, headers: dict[str, str] | None = None) -> HTTPResponse:
    return await AsyncHTTPClient().fetch(
        service.base.removesuffix("api/") + "metrics", headers=headers or {}, raise_error=False
    )


def samples(response: HTTPResponse) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(sample name, labels): value}`` of a scrape."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.body.decode())
        for s in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str):
    return found.get((name, frozenset(labels.items())))


@pytest.fixture
def metrics_settings(service: Service):
    return service.tornado_app.settings["westtek_metrics"]


async def test_the_metrics_count_environments_bytes_events_and_requests(api, service):
    # Given three environments in two labs, with their snapshots and drift events
    for user in SNAPSHOTS:
        assert (await api("POST", "snapshots", user, snapshot_report(user))).code == 201
    for user, n, status in [
        ("alice", 1, "CRITICAL_DRIFT"),
        ("alice", 1, "CRITICAL_DRIFT"),  # a retry: stored once
        ("alice", 2, "CRITICAL_DRIFT"),
        ("carol", 1, "MINOR_DRIFT"),
    ]:
        assert (await api("POST", "events", user, drift_event(user, n, status))).code in (200, 201)

    # When an admin scrapes the metrics
    response = await scrape(service, {"Authorization": "token overseer-token"})
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    found = samples(response)

    # Then environments by lab and drift status, zeros included
    environments = {
        ("vault-13", "CRITICAL_DRIFT"): 1,
        ("vault-13", "STABLE"): 1,
        ("vault-13", "MINOR_DRIFT"): 0,
        ("vault-101", "MINOR_DRIFT"): 1,
        ("vault-101", "STABLE"): 0,
        ("vault-101", "CRITICAL_DRIFT"): 0,
    }
    for (lab, status), n in environments.items():
        assert value(found, "westtek_environments", lab=lab, drift_status=status) == n
    # snapshot bytes and counts per lab
    assert value(found, "westtek_snapshot_bytes", lab="vault-13") == 3500
    assert value(found, "westtek_snapshot_bytes", lab="vault-101") == 400
    assert value(found, "westtek_snapshots", lab="vault-13") == 2
    # drift events ingested: new ones only
    assert value(found, "westtek_drift_events_ingested_total", status="CRITICAL_DRIFT") == 2
    assert value(found, "westtek_drift_events_ingested_total", status="MINOR_DRIFT") == 1
    # request latency by handler, method and status
    count = "westtek_request_duration_seconds_count"
    assert value(found, count, handler="ReportedEventsHandler", method="POST", code="201") == 3
    assert value(found, count, handler="ReportedEventsHandler", method="POST", code="200") == 1
    assert value(found, count, handler="ReportedSnapshotsHandler", method="POST", code="201") == 3
    bucket = "westtek_request_duration_seconds_bucket"
    inf = value(
        found, bucket, handler="ReportedEventsHandler", method="POST", code="201", le="+Inf"
    )
    assert inf == 3
    # the process's own metrics, as JupyterHub exports its own
    assert any(name == "process_cpu_seconds_total" for name, _ in found)


async def test_the_gauges_follow_the_registry_after_a_reassignment(api, service):
    for user in SNAPSHOTS:
        assert (await api("POST", "snapshots", user, snapshot_report(user))).code == 201
    moved = {"environment_id": "bob", "to_researcher": "carol"}
    assert (await api("POST", "knowledge/transfer", "overseer", moved)).code == 200
    found = samples(await scrape(service, {"Authorization": "token overseer-token"}))
    assert value(found, "westtek_snapshot_bytes", lab="vault-13") == 1000
    assert value(found, "westtek_snapshot_bytes", lab="vault-101") == 2900
    assert value(found, "westtek_environments", lab="vault-101", drift_status="STABLE") == 2


async def test_panel_pages_are_timed_too(service, api):
    page = await AsyncHTTPClient().fetch(
        service.base.removesuffix("api/") + "drift",
        headers={"Authorization": "token alice-token"},
        raise_error=False,
    )
    assert page.code == 200
    found = samples(await scrape(service, {"Authorization": "token overseer-token"}))
    count = "westtek_request_duration_seconds_count"
    assert value(found, count, handler="DriftPage", method="GET", code="200") == 1


async def test_only_hub_admins_or_the_configured_token_may_scrape(api, service, metrics_settings):
    denied = await scrape(service, {"Authorization": "token alice-token"})
    assert denied.code == 403 and "not a hub admin" in answer(denied)["message"]
    log = answer(await api("GET", "audit", "overseer"))["entries"]
    assert (log[-1]["actor"], log[-1]["action"], log[-1]["outcome"]) == (
        "alice",
        "metrics.read",
        "denied",
    )
    assert (await scrape(service)).code == 403
    # Prometheus with the configured bearer token, and nothing else
    assert (await scrape(service, {"Authorization": "Bearer prom-secret"})).code == 403
    metrics_settings.bearer_token = "prom-secret"
    assert (await scrape(service, {"Authorization": "Bearer prom-secret"})).code == 200
    assert (await scrape(service, {"Authorization": "Bearer prom-secreT"})).code == 403
    assert (await scrape(service, {"Authorization": "token prom-secret"})).code == 403
