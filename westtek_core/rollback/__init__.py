"""Rollback: put the live environment back to a snapshot, in place, one step at a time.

* :mod:`~westtek_core.rollback.plan`: the plan as a value (pure: no I/O), its safety
  checks, its fingerprint and preview;
* :mod:`~westtek_core.rollback.apply`: carrying out the steps from the store's files,
  live secrets put back into redacted config;
* :mod:`~westtek_core.rollback.journal`: the journal an interrupted rollback resumes from;
* :mod:`~westtek_core.rollback.run`: the orchestration (safety snapshot, journal, steps,
  drift left) behind ``westtek rollback``;
* :mod:`~westtek_core.rollback.container_start`: the restore at a container start, its
  record, and what it leaves to the server while the packs are in archive storage.
"""

from westtek_core.areas import AREAS
from westtek_core.rollback.journal import Journal, journals, unfinished_journal
from westtek_core.rollback.plan import (
    RollbackError,
    RollbackPlan,
    RollbackStep,
    plan_rollback,
)
from westtek_core.rollback.run import (
    ProgressCallback,
    RollbackProgress,
    RollbackReport,
    latest_snapshot,
    live_state,
    preview_rollback,
    resume_rollback,
    run_rollback,
    undo_rollback,
)
from westtek_core.snapshot.retention import SAFETY_LABEL

__all__ = [
    "AREAS",
    "SAFETY_LABEL",
    "Journal",
    "ProgressCallback",
    "RollbackError",
    "RollbackPlan",
    "RollbackProgress",
    "RollbackReport",
    "RollbackStep",
    "journals",
    "latest_snapshot",
    "live_state",
    "plan_rollback",
    "preview_rollback",
    "resume_rollback",
    "run_rollback",
    "undo_rollback",
    "unfinished_journal",
]
