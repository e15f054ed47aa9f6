"""The Drift Analyzer's assessments of drift events, kept with the hub's record of each event.

A server analyses its critical drift events after reporting them, then reports each
assessment (``AssessmentReport``) to ``POST events``; it updates the event that server
reported under that id. The latest assessment of an event wins, as in the server's own log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from westtek_core.wire import AssessmentReport, InvalidReport, parse_report
from westtek_hub import audit
from westtek_hub.models import DriftEvent
from westtek_hub.registry import Caller, Invalid, NotFound, event_key, reporting_environment

ASSESSMENT = "assessment"
"""The ``report`` of an assessment posted to ``events`` (a drift event has none)."""


def is_assessment(body: Mapping[str, Any]) -> bool:
    """Whether a body posted to ``events`` is an assessment rather than a drift event."""
    return body.get("report") == ASSESSMENT


def record_assessment(session: Session, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
    """Store an assessment with the event the caller's server reported under its id.

    404 when that server reported no such event: the assessment is of an event the hub
    does not have, so there is nothing to update.
    """
    try:
        report = parse_report(AssessmentReport, body)
    except InvalidReport as exc:
        raise Invalid(str(exc)) from None
    env = reporting_environment(session, caller, body)
    key = event_key({"id": report.event_id})
    event = session.scalar(
        select(DriftEvent).where(
            DriftEvent.environment_id == env.id,
            DriftEvent.reported_by == caller.name,
            DriftEvent.event_key == key,
        )
    )
    if event is None:
        raise NotFound(f"no drift event {key!r} of {env.id!r} reported by {caller.name}")
    assessment = report.assessment.model_dump(mode="json", exclude_none=True)
    event.risk_assessment = assessment
    audit.append(
        session,
        caller.name,
        "event.assessment",
        f"{env.id}#{key}",
        lab_id=env.lab_id,
        detail={"event_id": key, "risk": assessment["risk"]},
    )
    return {"assessed": True, "environment_id": env.id, "event_id": report.event_id}
