"""What a single-user server reports to the hub service, typed once for both ends.

The server extension sends a drift event for each change it grades and a snapshot report
for each snapshot of its environment; the hub service validates what it receives with
these same models, so the two ends cannot disagree about a field. Fields the hub service
does not know are kept (``extra="allow"``): a newer server may send more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

from westtek_core.drift.report import DriftStatus

MAX_ID = 255
"""The longest id (environment, lab, snapshot) the hub service keeps."""

DRIFT_STATUSES: tuple[str, ...] = tuple(status.value for status in DriftStatus)
"""The statuses a graded environment can have, mildest first (from ``DriftStatus``)."""

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID, pattern=r"\S")]
Epoch = StrictInt | StrictFloat


class _Report(BaseModel):
    model_config = ConfigDict(extra="allow")

    environment_id: Id
    lab_id: Id | None = Field(
        default=None, description="The server's lab; the hub service checks it is the caller's"
    )


class DriftEventReport(_Report):
    """A drift event as the server's event log recorded it (``POST events``)."""

    id: StrictInt | str | None = Field(default=None, description="The server's event id")
    baseline: str | None = None
    status: DriftStatus
    time: Epoch = Field(description="When the event was recorded (epoch seconds)")
    changes: list[dict[str, Any]] = Field(default_factory=list)
    resolved: list[dict[str, Any]] = Field(default_factory=list)


class SnapshotReport(_Report):
    """What the hub service keeps of a snapshot: its record, no content (``POST snapshots``)."""

    report: Literal["snapshot"] = "snapshot"
    id: Id
    created_by: str | None = None
    timestamp: str | Epoch | None = Field(
        default=None, description="When it was taken: ISO 8601, or epoch seconds"
    )
    size_bytes: StrictInt = Field(default=0, ge=0)
    checksum: str | None = None
    s3_location: str | None = None
    container_image: str | None = None
    efs_snapshot_id: str | None = None
    ebs_snapshot_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


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
