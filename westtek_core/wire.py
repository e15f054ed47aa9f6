"""What a single-user server reports to the hub service, typed once for both ends.

The server extension sends a drift event for each change it grades and a snapshot report
for each snapshot of its environment; the hub service validates what it receives with
these same models, so the two ends cannot disagree about a field. Fields the hub service
does not know are kept (``extra="allow"``): a newer server may send more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from westtek_core.drift.report import DriftStatus, Severity
from westtek_core.request_input import MAX_INT

MAX_ID = 255
"""The longest id (environment, lab, snapshot) the hub service keeps."""

DRIFT_STATUSES: tuple[str, ...] = tuple(status.value for status in DriftStatus)
"""The statuses a graded environment can have, mildest first (from ``DriftStatus``)."""

MAX_EPOCH = 253_402_300_799.0
"""The last second of year 9999 (UTC): the latest time a report may carry."""

MAX_TEXT = 4096
"""The longest name, version or path in a reported change."""

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID, pattern=r"\S")]
Epoch = Annotated[float, Field(strict=True, ge=0, le=MAX_EPOCH, allow_inf_nan=False)]
"""Seconds since 1970 (UTC), up to :data:`MAX_EPOCH`; an integer is taken as well."""
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_INT)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]


def _iso_time(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not an ISO 8601 time") from None
    return value


IsoTime = Annotated[str, Field(max_length=64), AfterValidator(_iso_time)]


def epoch_time(value: Any) -> datetime | None:
    """A stored epoch as a UTC time; None when it is not a time a report may carry."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not (math.isfinite(value) and 0 <= value <= MAX_EPOCH):
        return None
    return datetime.fromtimestamp(value, timezone.utc)


class _Report(BaseModel):
    model_config = ConfigDict(extra="allow")

    environment_id: Id
    lab_id: Id | None = Field(
        default=None, description="The server's lab; the hub service checks it is the caller's"
    )


class ChangeReport(BaseModel):
    """One change of a drift event (``westtek_core.drift.report.Change`` on the wire)."""

    model_config = ConfigDict(extra="allow")

    kind: Annotated[str, Field(max_length=MAX_ID)]
    name: Text
    change: Annotated[str, Field(max_length=MAX_ID)]
    before: Text | None = None
    after: Text | None = None
    severity: Severity
    reason: Annotated[str, Field(max_length=4 * MAX_TEXT)] = ""
    affected_notebooks: list[Text] = Field(default_factory=list)


class DriftEventReport(_Report):
    """A drift event as the server's event log recorded it (``POST events``)."""

    id: Count | Id | None = Field(default=None, description="The server's event id")
    baseline: Text | None = None
    status: DriftStatus
    time: Epoch = Field(description="When the event was recorded (epoch seconds)")
    changes: list[ChangeReport] = Field(default_factory=list)
    resolved: list[ChangeReport] = Field(default_factory=list)


class StaleModuleReport(BaseModel):
    """A running kernel that runs a distribution at a version no longer installed.

    ``westtek_core.drift.stale_kernels`` makes them; ``GET drift`` lists them
    (``stale_kernels``) with the kernel's id, which the sidebar's "Restart kernel" uses.
    """

    kernel_id: Id
    notebook: Text | None = Field(default=None, description="The kernel's notebook, if any")
    distribution: Text
    loaded: Text = Field(description="The version the kernel imported and still runs")
    installed: Text | None = Field(description="The version installed now (None: uninstalled)")
    message: Annotated[str, Field(max_length=4 * MAX_TEXT)]


class SnapshotReport(_Report):
    """What the hub service keeps of a snapshot: its record, no content (``POST snapshots``)."""

    report: Literal["snapshot"] = "snapshot"
    id: Id
    created_by: str | None = None
    timestamp: IsoTime | Epoch | None = Field(
        default=None, description="When it was taken: ISO 8601, or epoch seconds"
    )
    size_bytes: Count = 0
    checksum: str | None = None
    s3_location: str | None = None
    container_image: str | None = None
    efs_snapshot_id: str | None = None
    ebs_snapshot_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class SnapshotRecord(BaseModel):
    """A snapshot as the hub service's API and panel show it (its registry record).

    ``s3_location`` is where the snapshot's manifest is in an S3 store
    (``s3://bucket/prefix/snapshots/<id>``), None for a local store: a path on a server's
    disk means nothing to whoever reads the registry. ``image_digest`` is the digest of the
    container image the reporting server ran in (from the spawner's report of that
    server), None when it ran in no image or when that is not known for sure.
    """

    id: str
    environment_id: str
    created_by: str
    timestamp: str | None = Field(description="When it was taken (ISO 8601)")
    s3_location: str | None = None
    size_bytes: int = 0
    checksum: str | None = None
    container_image: str | None = None
    image_digest: str | None = None
    efs_snapshot_id: str | None = None
    ebs_snapshot_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class RiskLevel(str, Enum):
    """The risk the Drift Analyzer states for a drift event (UNKNOWN: it stated none)."""

    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    UNKNOWN = "UNKNOWN"


MAX_ANSWER = 64 * 1024
"""The longest assessment text the hub service keeps."""


class CitationReport(BaseModel):
    """Where a statement of an assessment comes from (``Citation.to_json`` on the wire)."""

    model_config = ConfigDict(extra="allow")

    source: Text
    locator: Text


class RiskAssessment(BaseModel):
    """The Drift Analyzer's assessment of one drift event: its risk level, text, citations."""

    model_config = ConfigDict(extra="allow")

    agent: Annotated[str, Field(max_length=MAX_ID)] = "drift"
    risk: RiskLevel
    answer: Annotated[str, Field(max_length=MAX_ANSWER)]
    citations: list[CitationReport] = Field(default_factory=list)
    time: Epoch | None = Field(default=None, description="When it was made (epoch seconds)")


class AssessmentReport(_Report):
    """An assessment of a drift event the server reported before (``POST events``).

    It updates that event's record: the hub service finds it by the server's event id.
    """

    report: Literal["assessment"] = "assessment"
    event_id: Count | Id = Field(description="The server's id of the assessed event")
    assessment: RiskAssessment


def readable_event(body: Any, time: Any, status: str) -> dict[str, Any]:
    """A stored drift event as pages and packages can show it, whatever the row holds.

    A body that is a valid :class:`DriftEventReport` is shown as it is. Rows stored before
    reports were validated on ingest (or edited in the database) may hold a time no clock
    reads or changes of another shape: those show what is valid, the row's own status and
    time (None when out of range), and ``"unreadable": true``, so that one bad row never
    stops a lab's drift history, transfer package or succession page from rendering.
    """
    source = body if isinstance(body, dict) else {}
    try:
        DriftEventReport.model_validate(source)
    except ValidationError:
        pass
    else:
        return dict(source)
    shown: dict[str, Any] = {
        key: source[key]
        for key in ("id", "environment_id", "lab_id", "baseline")
        if isinstance(source.get(key), str) and len(source[key]) <= MAX_TEXT
    }
    shown["status"] = status
    shown["time"] = time if epoch_time(time) is not None else None
    for key in ("changes", "resolved"):
        items = source.get(key)
        shown[key] = [c for c in items if _is_change(c)] if isinstance(items, list) else []
    shown["unreadable"] = True
    return shown


def _is_change(item: Any) -> bool:
    try:
        ChangeReport.model_validate(item)
    except ValidationError:
        return False
    return True


ReportT = TypeVar("ReportT", bound=_Report)


class InvalidReport(ValueError):
    """A report that does not have the shape both ends agree on; one line saying why."""


def parse_report(model: type[ReportT], body: Mapping[str, Any]) -> ReportT:
    """``body`` as ``model``; :class:`InvalidReport` naming the first field that is wrong."""
    try:
        return model.model_validate(dict(body))
    except ValidationError as exc:
        errors = exc.errors()
        # the field and any list positions; a union adds its members' names, not wanted here
        field = errors[0]["loc"][:1]
        where = [str(part) for part in errors[0]["loc"] if part in field or isinstance(part, int)]
        # each member of a union explains itself: together they say what is accepted
        reasons = dict.fromkeys(e["msg"] for e in errors if e["loc"][:1] == field)
        raise InvalidReport(f"'{'.'.join(where) or 'body'}': {' or '.join(reasons)}") from None
