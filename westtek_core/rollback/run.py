"""Running a rollback: the safety snapshot, the journal, the steps, the drift left after.

``westtek rollback --to ID`` first takes a *safety snapshot* of the environment as it is,
then applies the plan step by step: one distribution of one interpreter, one kernelspec or
one Jupyter config file at a time. Each step is recorded in the journal, so a rollback that
is interrupted can be resumed (``--resume``, or the same command again) or undone
(``--undo``: a rollback to the safety snapshot). The workspace (notebooks and data) is
captured by the safety snapshot and never touched.

:func:`preview_rollback` shows the plan and changes nothing; :func:`run_rollback`,
:func:`resume_rollback` and :func:`undo_rollback` apply one. :func:`live_state` describes
the live environment as :func:`~westtek_core.rollback.plan.plan_rollback` reads it.
"""

from __future__ import annotations

import os
import posixpath
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from westtek_core.capture import Capture
from westtek_core.drift.report import DriftReport
from westtek_core.rollback.apply import StepApplier
from westtek_core.rollback.journal import (
    JOURNAL_FORMAT,
    Journal,
    journal_dir,
    journals,
    new_rollback_id,
    unfinished_journal,
    utc_now,
)
from westtek_core.rollback.plan import (
    AREA_DRIFT_KINDS,
    RollbackError,
    RollbackPlan,
    RollbackStep,
    chosen_areas,
    plan_rollback,
    target_interpreters,
)
from westtek_core.snapshot.archive import require_readable
from westtek_core.snapshot.retention import (
    CONTAINER_START,
    SAFETY_LABEL,
    SAFETY_ORIGIN_LABEL,
    superseded_container_start_safeties,
)
from westtek_core.store import Repository, StoreError


@dataclass(frozen=True)
class RollbackProgress:
    """How far a rollback has got: steps done of all, and the step just done."""

    done: int
    total: int
    step: RollbackStep


ProgressCallback = Callable[[RollbackProgress], None]


# -- the live side -------------------------------------------------------------------------


def kernel_dirs() -> list[str]:
    """The Jupyter kernels directories a kernelspec may be written to."""
    from jupyter_core.paths import jupyter_path

    return [os.path.abspath(d) for d in jupyter_path("kernels")]


def config_dirs(capture: Capture | None = None) -> list[str]:
    """The Jupyter config directories a config file may be written to (present or not)."""
    from jupyter_core.paths import jupyter_config_path

    from westtek_core.capture.jupyter_env import lab_app_dir

    dirs = [os.path.abspath(d) for d in jupyter_config_path()]
    dirs.append(os.path.join(lab_app_dir(), "settings"))
    for variable in ("JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        if os.environ.get(variable):
            dirs.append(os.path.abspath(os.environ[variable]))
    if capture is not None:
        dirs.extend(c.dir for c in capture.config)
    return dirs


def live_state(capture: Capture, pythons: Sequence[str] | None = None) -> dict[str, Any]:
    """Describe a live capture for :func:`plan_rollback` (JSON-shaped, like a manifest)."""
    return {
        "pythons": list(pythons) if pythons is not None else None,
        "self_prefix": posixpath.normpath(sys.prefix),
        "interpreters": [
            {
                "path": interp.python,
                "prefix": interp.info.get("prefix"),
                "packages": [
                    {
                        "name": dist["name"],
                        "version": dist["version"],
                        "location": dist.get("location"),
                        "metadata_dir": dist.get("metadata_dir"),
                        "shadowed": dist.get("shadowed", False),
                        "files": list(dist.get("files", [])),
                    }
                    for dist in interp.info.get("distributions", [])
                ],
            }
            for interp in capture.interpreters
        ],
        "kernels": [
            {
                "name": k.name,
                "resource_dir": k.resource_dir,
                "files": [e.to_json() for e in k.tree.entries],
            }
            for k in capture.kernels
        ],
        "config": [
            {"dir": c.dir, "files": [e.to_json() for e in c.tree.entries]} for c in capture.config
        ],
        "kernel_dirs": kernel_dirs(),
        "config_dirs": config_dirs(capture),
    }


# -- the report and the orchestration ------------------------------------------------------


@dataclass
class RollbackReport:
    """What a rollback did: its steps, the safety snapshot, and the drift left afterwards.

    ``drift`` holds only the changes of the areas rolled back (the workspace is never
    touched); ``status`` is its status.
    """

    id: str | None
    kind: str
    target: str
    only: tuple[str, ...]
    safety_snapshot: str | None
    steps: list[dict[str, Any]]
    notes: list[str]
    drift: DriftReport
    resumed: bool = False
    journal: str | None = None

    @property
    def status(self) -> str:
        """The drift status of the rolled-back areas against the target."""
        return self.drift.status.value

    @property
    def steps_done(self) -> int:
        """How many steps are done."""
        return sum(1 for s in self.steps if s.get("state") == "done")

    def to_json(self) -> dict[str, Any]:
        """The ``rollback --json`` output."""
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "only": list(self.only),
            "safety_snapshot": self.safety_snapshot,
            "resumed": self.resumed,
            "steps_done": self.steps_done,
            "steps_total": len(self.steps),
            "steps": self.steps,
            "notes": self.notes,
            "status": self.status,
            "drift": self.drift.to_json(),
            "journal": self.journal,
        }


def _restricted(target: Mapping[str, Any], pythons: Sequence[str]) -> dict[str, Any]:
    """The target with only the interpreters being rolled back (what drift compares)."""
    chosen = [interp for _, interp in target_interpreters(target, pythons)]
    return {**target, "interpreters": chosen}


def _final_drift(
    target: Mapping[str, Any], pythons: Sequence[str], root: Path, areas: Sequence[str]
) -> DriftReport:
    from westtek_core.drift import capture_live, detect_drift

    report = detect_drift(capture_live(pythons, root), _restricted(target, pythons), root)
    kinds = frozenset().union(*(AREA_DRIFT_KINDS[a] for a in areas))
    return DriftReport(report.baseline, [c for c in report.changes if c.kind in kinds])


def _apply(
    repo: Repository,
    journal: Journal,
    target: Mapping[str, Any],
    capture: Capture,
    progress: ProgressCallback | None,
) -> None:
    pythons = list(journal.data["pythons"])
    applier = StepApplier(repo, target, live_state(capture, pythons))
    steps = journal.steps
    journal.claim()
    try:
        for index, step in enumerate(steps):
            if journal.data["steps"][index].get("state") == "done":
                continue
            applier.apply(step)
            journal.mark(index, "done")
            if progress is not None:
                done = sum(1 for s in journal.data["steps"] if s.get("state") == "done")
                progress(RollbackProgress(done, len(steps), step))
    except BaseException as e:
        journal.data["state"] = "failed"
        journal.data["error"] = f"{type(e).__name__}: {e}"
        journal.add_notes(applier.notes)
        raise
    journal.data["state"] = "done"
    journal.add_notes(applier.notes)


def _finish(
    repo: Repository,
    journal: Journal,
    target: Mapping[str, Any],
    root: Path,
    *,
    resumed: bool,
    progress: ProgressCallback | None,
) -> RollbackReport:
    from westtek_core.drift import capture_live

    pythons = list(journal.data["pythons"])
    _apply(repo, journal, target, capture_live(pythons, root), progress)
    if journal.data.get("kind") == "undo" and journal.data.get("undoes"):
        undone = journal_dir() / f"{journal.data['undoes']}.json"
        if undone.exists():
            Journal.load(undone).mark_undone(journal.id)
    areas = tuple(journal.data["only"])
    drift = _final_drift(target, pythons, root, areas)
    journal.data["status"] = drift.status.value
    journal.save()
    return RollbackReport(
        id=journal.id,
        kind=str(journal.data.get("kind", "rollback")),
        target=str(target["id"]),
        only=areas,
        safety_snapshot=journal.data.get("safety_snapshot"),
        steps=[dict(s) for s in journal.data["steps"]],
        notes=list(journal.data.get("notes", [])),
        drift=drift,
        resumed=resumed,
        journal=str(journal.path),
    )


def _start(
    repo: Repository,
    target: Mapping[str, Any],
    pythons: Sequence[str],
    root: Path,
    areas: tuple[str, ...],
    progress: ProgressCallback | None,
    *,
    kind: str = "rollback",
    undoes: str | None = None,
    expected_plan: str | None = None,
    origin: str | None = None,
) -> RollbackReport:
    from westtek_core.snapshot import create_snapshot, referenced_chunks

    capture, plan = _live_plan(target, pythons, root, areas)
    if expected_plan is not None and plan.fingerprint != expected_plan:
        raise RollbackError(
            "the environment changed since the rollback was previewed: "
            "review the new preview and confirm again"
        )
    if not plan.steps:
        drift = _final_drift(target, pythons, root, areas)
        return RollbackReport(None, kind, str(target["id"]), areas, None, [], plan.notes, drift)
    # A year on, the packs may be in archive storage: ask for them back and stop before
    # anything changes (ArchiveWait), rather than fail half-way through the steps.
    needed = referenced_chunks(target, workspace=False)
    require_readable(repo, needed, f"snapshot {str(target['id'])[:12]}")
    rollback_id = new_rollback_id()
    safety = create_snapshot(
        repo,
        capture,
        note=f"safety snapshot before rollback {rollback_id} to {str(target['id'])[:12]}",
        labels={
            SAFETY_LABEL: "safety",
            f"{SAFETY_LABEL}.id": rollback_id,
            **({SAFETY_ORIGIN_LABEL: origin} if origin else {}),
        },
        environment_id=str(target.get("environment_id") or "") or None,
    )
    if origin == CONTAINER_START:
        _forget_superseded_safeties(repo, str(target.get("environment_id") or ""))
    journal = Journal(
        journal_dir() / f"{rollback_id}.json",
        {
            "format": JOURNAL_FORMAT,
            "id": rollback_id,
            "kind": kind,
            "undoes": undoes,
            "store_id": repo.id,
            "store": repo.backend.url,
            "target": str(target["id"]),
            "safety_snapshot": safety.id,
            "only": list(areas),
            "pythons": list(pythons),
            "root": str(Path(root).absolute()),
            "started": utc_now(),
            "state": "running",
            "notes": list(plan.notes),
            "unchanged": plan.unchanged,
            "steps": [{**s.to_json(), "state": "pending"} for s in plan.steps],
        },
    )
    journal.save()
    return _finish(repo, journal, target, root, resumed=False, progress=progress)


def _forget_superseded_safeties(repo: Repository, environment_id: str) -> None:
    """Delete the container-start safety snapshots the one just taken supersedes.

    Only their manifests: what they alone held (little: the same image each time) goes
    with the next prune. Done here, at each start, so they never pile up between
    automatic snapshots (which apply the same rule) or when those are off.
    """
    from westtek_core.drift.baseline import chosen_baseline
    from westtek_core.snapshot import snapshot_summaries

    try:
        baseline = chosen_baseline(repo, environment_id)
        rows = snapshot_summaries(repo)
        protected = [baseline] if baseline else []
        for snapshot_id in superseded_container_start_safeties(rows, environment_id, protected):
            repo.delete_manifest(snapshot_id)
    except (StoreError, OSError) as e:  # housekeeping: never what stops a restore
        print(f"westtek: old container-start safety snapshots left: {e}", file=sys.stderr)


def _live_plan(
    target: Mapping[str, Any], pythons: Sequence[str], root: Path, areas: tuple[str, ...]
) -> tuple[Capture, RollbackPlan]:
    """Capture the live environment and plan the rollback from it."""
    from westtek_core.capture import capture_environment

    present = [p for p in pythons if Path(p).exists()]
    capture = capture_environment(present, root)
    return capture, plan_rollback(target, live_state(capture, pythons), areas)


def preview_rollback(
    repo: Repository,
    target_id: str,
    pythons: Sequence[str] | None,
    root: Path,
    only: Collection[str] | None = None,
) -> RollbackPlan:
    """What :func:`run_rollback` with the same arguments would do now; changes nothing.

    Pass the plan's ``fingerprint`` to ``run_rollback(expected_plan=...)`` so that what is
    applied is exactly what was previewed.
    """
    areas = chosen_areas(only)
    target = _load_target(repo, target_id)
    chosen = [str(i.get("path")) for _, i in target_interpreters(target, pythons)]
    return _live_plan(target, chosen, Path(root), areas)[1]


def latest_snapshot(repo: Repository, environment_id: str) -> dict[str, Any] | None:
    """The newest snapshot of ``environment_id`` in ``repo``, safety snapshots aside."""
    from westtek_core.snapshot import load_snapshot, snapshot_summaries

    mine = [
        summary
        for summary in snapshot_summaries(repo)
        if summary.get("environment_id") == environment_id
        and SAFETY_LABEL not in (summary.get("labels") or {})
    ]
    newest = max(mine, key=lambda m: str(m.get("timestamp")), default=None)
    return None if newest is None else load_snapshot(repo, str(newest["id"]))


def _load_target(repo: Repository, snapshot_id: str) -> dict[str, Any]:
    from westtek_core.snapshot import load_snapshot

    return load_snapshot(repo, snapshot_id)


def run_rollback(
    repo: Repository,
    target_id: str,
    pythons: Sequence[str] | None,
    root: Path,
    only: Collection[str] | None = None,
    progress: ProgressCallback | None = None,
    expected_plan: str | None = None,
    origin: str | None = None,
) -> RollbackReport:
    """Roll the live environment back to snapshot ``target_id``, in place.

    ``pythons`` are the target's interpreters to roll back (None: all of them); ``root``
    is the workspace (captured by the safety snapshot, never changed). When this store has
    an unfinished rollback to the same snapshot and areas, it is resumed; an unfinished
    rollback to anything else must be resumed or undone first. ``expected_plan`` (a
    preview's fingerprint) refuses to start when the plan is no longer the one previewed.
    ``origin`` labels the safety snapshot with what rolled back (``SAFETY_ORIGIN_LABEL``).
    When packs it needs are in archive storage, their restore is requested and
    :class:`~westtek_core.store.ArchiveWait` raised before anything changes.
    """
    areas = chosen_areas(only)
    target = _load_target(repo, target_id)
    pending = unfinished_journal(repo)
    if pending is not None:
        same = pending.data.get("target") == target["id"] and tuple(pending.data["only"]) == areas
        if same and pending.data.get("kind") == "rollback":
            return resume_rollback(repo, pending.id, progress=progress)
        raise RollbackError(
            f"rollback {pending.id} to {str(pending.data.get('target'))[:12]} is unfinished: "
            "finish it with `westtek rollback --resume` or undo it with `westtek rollback --undo`"
        )
    chosen = [str(i.get("path")) for _, i in target_interpreters(target, pythons)]
    return _start(
        repo, target, chosen, Path(root), areas, progress, expected_plan=expected_plan,
        origin=origin,
    )  # fmt: skip


def resume_rollback(
    repo: Repository, rollback_id: str | None = None, progress: ProgressCallback | None = None
) -> RollbackReport:
    """Carry on an unfinished rollback (the latest one of this store when no id is given)."""
    if rollback_id is None:
        journal = unfinished_journal(repo)
        if journal is None:
            raise RollbackError("no unfinished rollback of this store to resume")
    else:
        journal = Journal.load(journal_dir() / f"{rollback_id}.json")
        if journal.finished:
            raise RollbackError(f"rollback {rollback_id} is already {journal.data['state']}")
    target = _load_target(repo, str(journal.data["target"]))
    root = Path(str(journal.data["root"]))
    return _finish(repo, journal, target, root, resumed=True, progress=progress)


def undo_rollback(
    repo: Repository, rollback_id: str | None = None, progress: ProgressCallback | None = None
) -> RollbackReport:
    """Put back the safety snapshot of a rollback (the latest one of this store by default).

    Only the latest rollback is undone by default: undoing further back is a rollback to
    an older safety snapshot (``run_rollback`` with its id), chosen knowingly.

    The undo is itself a rollback with a journal (and its own safety snapshot), so an
    interrupted undo resumes like any other; once it is done the undone rollback is marked
    ``undone``.
    """
    pending = unfinished_journal(repo)
    if pending is not None and pending.data.get("kind") == "undo":
        return resume_rollback(repo, pending.id, progress=progress)
    candidates = [j for j in journals(repo) if j.data.get("kind") == "rollback"]
    if rollback_id is not None:
        candidates = [j for j in candidates if j.id == rollback_id]
    if not candidates:
        raise RollbackError("no rollback of this store to undo")
    original = candidates[-1]
    if original.data.get("state") == "undone":
        raise RollbackError(f"rollback {original.id} is undone already")
    original.refuse_if_busy()
    target = _load_target(repo, str(original.data["safety_snapshot"]))
    areas = tuple(original.data["only"])
    pythons = list(original.data["pythons"])
    root = Path(str(original.data["root"]))
    report = _start(repo, target, pythons, root, areas, progress, kind="undo", undoes=original.id)
    if report.id is None:  # nothing to change: the environment is the safety snapshot already
        original.mark_undone("")
    return report
