"""The hub service's Prometheus metrics, at ``/services/westtek/metrics``.

Scraped beside JupyterHub's own ``/hub/metrics``: environments by drift status and
snapshot bytes per lab (read from the registry at scrape time, so they are right after a
restart and across several service processes), drift events ingested and request latency
(counted by this process). Each service app has its own ``CollectorRegistry`` so several
apps in one process (the tests) never collide. A scrape needs the configured bearer token
or a hub admin's token (or the OAuth cookie of a hub admin).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from tornado import web
from traitlets import Unicode, default
from traitlets.config import LoggingConfigurable

from westtek_core.wire import DRIFT_STATUSES
from westtek_hub.models import Environment, Lab, Snapshot

# Buckets for an API answering in milliseconds, with room for the hub round trips
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RegistryCollector(Collector):
    """Gauges read from the registry at each scrape: environments and snapshot bytes per lab."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One query per gauge; every lab reports every drift status, zero included."""
        environments = GaugeMetricFamily(
            "westtek_environments",
            "Environments in the registry, by lab and drift status.",
            labels=["lab", "drift_status"],
        )
        snapshot_bytes = GaugeMetricFamily(
            "westtek_snapshot_bytes",
            "Bytes of the snapshots of each lab's environments (their manifests' size_bytes).",
            labels=["lab"],
        )
        snapshots = GaugeMetricFamily(
            "westtek_snapshots", "Snapshots of each lab's environments.", labels=["lab"]
        )
        with self.sessions() as session:
            labs = set(session.scalars(select(Lab.id)))
            counts = {
                (lab, status): n
                for lab, status, n in session.execute(
                    select(Environment.lab_id, Environment.drift_status, func.count()).group_by(
                        Environment.lab_id, Environment.drift_status
                    )
                )
            }
            sizes = {
                lab: (int(total or 0), int(n))
                for lab, total, n in session.execute(
                    select(Environment.lab_id, func.sum(Snapshot.size_bytes), func.count())
                    .join(Environment, Environment.id == Snapshot.environment_id)
                    .group_by(Environment.lab_id)
                )
            }
        labs |= {lab for lab, _ in counts} | set(sizes)
        statuses = list(DRIFT_STATUSES) + sorted({s for _, s in counts} - set(DRIFT_STATUSES))
        for lab in sorted(labs):
            for status in statuses:
                environments.add_metric([lab, status], counts.get((lab, status), 0))
            total, n = sizes.get(lab, (0, 0))
            snapshot_bytes.add_metric([lab], total)
            snapshots.add_metric([lab], n)
        yield environments
        yield snapshot_bytes
        yield snapshots


class WestTekMetrics(LoggingConfigurable):
    """The service's metrics registry, and who may scrape it."""

    bearer_token = Unicode(
        config=True,
        help="A token Prometheus sends as 'Authorization: Bearer <token>' to scrape "
        "/services/westtek/metrics without a hub account (default: $WESTTEK_METRICS_TOKEN; "
        "empty: only hub admins may scrape).",
    )

    @default("bearer_token")
    def _default_bearer_token(self) -> str:
        return os.environ.get("WESTTEK_METRICS_TOKEN", "")

    def __init__(self, sessions: sessionmaker[Session], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.registry.register(RegistryCollector(sessions))
        self.events_ingested = Counter(
            "westtek_drift_events_ingested",
            "Drift events single-user servers reported and the registry stored (not repeats).",
            ["status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "westtek_request_duration_seconds",
            "Time to answer a request to the service, by handler, method and status code.",
            ["handler", "method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_request(self, handler: web.RequestHandler) -> None:
        """Time a finished request (called from the handlers' ``on_finish``)."""
        self.request_duration.labels(
            handler=type(handler).__name__,
            method=handler.request.method or "",
            code=str(handler.get_status()),
        ).observe(handler.request.request_time())

    def event_ingested(self, status: str) -> None:
        """Count one newly stored drift event."""
        self.events_ingested.labels(status=status).inc()

    def token_matches(self, authorization: str) -> bool:
        """Whether an ``Authorization`` header carries the configured bearer token."""
        scheme, _, token = authorization.partition(" ")
        return bool(
            self.bearer_token
            and scheme.lower() == "bearer"
            and hmac.compare_digest(token.strip().encode(), self.bearer_token.encode())
        )

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
