"""Drift: how the live environment differs from its baseline, graded by what notebooks use.

The package's parts, each importing only those before it:

* ``report``: Severity, DriftStatus, Change and DriftReport, the values every other part
  and the wire shapes share (imports nothing of the suite);
* ``facets``: manifests (a snapshot's or a live capture's) reduced to comparable facets,
  and the raw differences between two;
* ``grading``: the severity policy and what the workspace's notebooks import, run and read;
* ``detect``: the live environment against its baseline, and one snapshot against another;
* ``baseline``: which snapshot an environment is compared with;
* ``baseline_view``: what a drift check reads of its baseline, kept per snapshot;
* ``events``: the drift and install history, one SQLite file per environment;
* ``watch``: the live watcher that re-checks after each change on disk;
* ``stale_kernels``: running kernels whose imported packages are no longer those on disk.

``baseline``, ``baseline_view``, ``events`` and ``watch`` are imported by their module path
(they bring in the store, the file watcher and SQLite); the names below are the comparison
itself.
"""

from westtek_core.drift.detect import capture_live, detect_drift, diff_manifests
from westtek_core.drift.facets import RawChange, live_manifest, manifest_facets, raw_changes
from westtek_core.drift.grading import (
    GradingContext,
    NotebookUse,
    SeverityPolicy,
    analyse_notebooks_cached,
    grading_context,
)
from westtek_core.drift.report import (
    Change,
    DriftReport,
    DriftStatus,
    Severity,
    fails_at,
    is_breaking,
    version_direction,
)

__all__ = [
    "Change",
    "DriftReport",
    "DriftStatus",
    "GradingContext",
    "NotebookUse",
    "RawChange",
    "Severity",
    "SeverityPolicy",
    "analyse_notebooks_cached",
    "capture_live",
    "detect_drift",
    "diff_manifests",
    "fails_at",
    "grading_context",
    "is_breaking",
    "live_manifest",
    "manifest_facets",
    "raw_changes",
    "version_direction",
]
