"""The reports servers send the hub service: one typed shape, one set of drift statuses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from westtek_core.drift.report import STALE_KERNEL
from westtek_core.hub_reports import snapshot_report
from westtek_core.wire import (
    DRIFT_STATUSES,
    DriftEventReport,
    InvalidReport,
    SnapshotReport,
    StaleModuleReport,
    parse_report,
)
from westtek_server_ext import models

REPO = Path(__file__).resolve().parents[2]


def test_every_side_names_the_same_drift_statuses():
    # the server's API adds only the state before any snapshot; the sidebar's tokens match
    assert DRIFT_STATUSES == ("STABLE", "MINOR_DRIFT", "CRITICAL_DRIFT")
    assert get_args(models.DriftStatus) == (*DRIFT_STATUSES, "NO_BASELINE")
    tokens = (REPO / "labextension" / "src" / "tokens.ts").read_text()
    union = re.search(r"export type DriftStatus =([^;]+);", tokens)
    assert union is not None
    assert tuple(re.findall(r"'(\w+)'", union.group(1))) == (*DRIFT_STATUSES, "NO_BASELINE")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"status": "FINE", "time": 1}, "'status': Input should be 'STABLE'"),
        ({"status": "STABLE", "time": True}, "'time': Input should be a valid number"),
        ({"status": "STABLE", "time": 1, "changes": {}}, "'changes': Input should be a valid list"),
        ({"status": "STABLE", "time": 1, "environment_id": " "}, "'environment_id'"),
    ],
)
def test_a_malformed_event_is_refused_in_one_line_naming_the_field(body, problem):
    with pytest.raises(InvalidReport) as refused:
        parse_report(DriftEventReport, {"environment_id": "alice"} | body)
    assert str(refused.value).startswith(problem) and "\n" not in str(refused.value)


def test_what_the_server_reports_of_a_snapshot_is_what_the_hub_service_accepts():
    manifest = {"id": "ab" * 32, "environment_id": "alice", "created_by": "alice",
                "timestamp": "2026-12-04T10:00:00+00:00", "size_bytes": 42,
                "metadata": {"note": "clean"}, "interpreters": [{"packages": []}]}  # fmt: skip
    report = snapshot_report(manifest)
    assert parse_report(SnapshotReport, report).model_dump(mode="json") == report
    assert "interpreters" not in report  # the record, never the content
    with pytest.raises(InvalidReport, match="'size_bytes'"):
        parse_report(SnapshotReport, report | {"size_bytes": -1})


def test_every_side_names_the_same_change_kinds_and_stale_kernel_fields():
    # the API's change kinds include the stale kernels', and the sidebar's tokens match
    kinds = get_args(models.Change.model_fields["kind"].annotation)
    assert STALE_KERNEL in kinds
    tokens = (REPO / "labextension" / "src" / "tokens.ts").read_text()
    union = re.search(r"export interface IChange \{.*?kind:([^;]+);", tokens, re.S)
    assert union is not None
    assert tuple(re.findall(r"'(\w+)'", union.group(1))) == kinds
    stale = re.search(r"export interface IStaleKernel \{(.*?)\n\}", tokens, re.S)
    assert stale is not None
    fields = re.findall(r"^  (\w+)\??:", stale.group(1), re.M)
    assert sorted(fields) == sorted(StaleModuleReport.model_fields)
