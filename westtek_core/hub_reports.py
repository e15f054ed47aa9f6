"""What a single-user server tells the hub service, from its environment service's messages.

Drift events, snapshot reports and the Drift Analyzer's assessments of events, each in the
shape the hub service validates it with (:mod:`westtek_core.wire`). :func:`forward_reports`
is the server extension's wiring, and the tests': a listener of the environment service
that hands each report to ``publish`` (``Notifier.publish``: the durable outbox, then the
hub sink, which sends assessments to ``events`` as it sends events).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from westtek_core.wire import AssessmentReport, DriftEventReport, SnapshotReport


class MessageSource(Protocol):
    """What :func:`forward_reports` needs of ``EnvironmentService`` (which imports this)."""

    def subscribe(self, listener: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``listener`` with each message; returns the unsubscribe."""
        ...


def s3_location(store_url: str, snapshot_id: str) -> str | None:
    """Where a snapshot's manifest is in an S3 store; None for a store that is not on S3.

    ``store_url`` is the store's backend URL (``s3://bucket/prefix``); the key is the
    store's ``snapshots/<id>``. A local store has none: its path is only meaningful on the
    disk of the server that wrote it, not to whoever reads the hub's registry.
    """
    if not store_url.startswith("s3://"):
        return None
    return f"{store_url.rstrip('/')}/snapshots/{snapshot_id}"


def snapshot_report(manifest: Mapping[str, Any], store_url: str = "") -> dict[str, Any]:
    """What the hub service keeps of a snapshot: the design document's fields, no content.

    ``store_url`` (the store's backend URL) gives its ``s3_location``.
    """
    fields = set(SnapshotReport.model_fields) - {"report", "lab_id", "metadata", "s3_location"}
    known = {k: manifest[k] for k in fields if manifest.get(k) is not None}
    report = SnapshotReport(
        **known,
        s3_location=s3_location(store_url, str(manifest["id"])),
        metadata=dict(manifest.get("metadata") or {}),
    )
    return report.model_dump(mode="json")


def hub_report(message: Mapping[str, Any], lab_id: str = "") -> dict[str, Any] | None:
    """The report for the hub service a service message makes; None when it makes none."""
    lab = {"lab_id": lab_id} if lab_id else {}
    kind = message.get("type")
    if kind == "event":
        event = DriftEventReport.model_validate(dict(message["event"]) | lab)
        return event.model_dump(mode="json", exclude_none=True)
    if kind == "snapshot":
        snapshot = SnapshotReport.model_validate(dict(message["snapshot"]) | lab)
        return snapshot.model_dump(mode="json")
    if kind == "assessment":
        fields = {k: message[k] for k in ("environment_id", "event_id", "assessment")}
        assessment = AssessmentReport.model_validate(fields | lab)
        return assessment.model_dump(mode="json", exclude_none=True)
    return None


def forward_reports(
    service: MessageSource,
    publish: Callable[[Mapping[str, Any]], object],
    lab_id: str = "",
) -> Callable[[], None]:
    """Publish each of ``service``'s reports for the hub; returns the unsubscribe.

    Subscribe it before any listener that answers an event with a report of its own (the
    Drift Analyzer): listeners run in order, so an event is queued before its assessment,
    and since the outbox delivers in order, the hub service has the event when the
    assessment comes.
    """

    def listener(message: dict[str, Any]) -> None:
        report = hub_report(message, lab_id)
        if report is not None:
            publish(report)

    return service.subscribe(listener)
