"""Retention: what a policy keeps, what is never deleted, and a prune that frees the rest."""

from __future__ import annotations

import json
import os

import pytest

from tests.core.snapshot.test_snapshot_roundtrip import snapshot
from westtek_core.cli import main
from westtek_core.snapshot import verify_snapshots
from westtek_core.snapshot.retention import (
    RetentionPolicy,
    plan_retention,
    superseded_container_start_safeties,
)
from westtek_core.store import Repository


def row(sid: str, when: str, env: str = "alice", **labels: str) -> dict:
    return {"id": sid, "timestamp": when, "environment_id": env, "labels": labels}


HISTORY = [
    row("a1", "2026-11-26T09:00:00+00:00"),
    row("a2", "2026-11-26T08:00:00+00:00"),
    row("a3", "2026-11-25T18:00:00+00:00"),
    row("a4", "2026-11-18T12:00:00+00:00"),
    row("a5", "2026-10-02T12:00:00+00:00", **{"westtek.keep": "paper"}),
    row("a6", "2026-10-01T12:00:00+00:00"),
    row("b1", "2026-01-01T00:00:00+00:00", env="bob"),
]


def test_a_policy_keeps_the_newest_of_each_period_per_environment():
    plan = plan_retention(HISTORY, RetentionPolicy(keep_last=1, keep_daily=2), protected={"a6"})
    assert plan.to_json() == {
        "keep": {
            "a1": ["last", "daily 2026-11-26"],
            "a3": ["daily 2026-11-25"],
            "a5": ["label westtek.keep"],
            "a6": ["protected"],
            "b1": ["last", "daily 2026-01-01"],
        },
        "delete": ["a2", "a4"],
    }


def test_weekly_and_monthly_buckets():
    plan = plan_retention(HISTORY, RetentionPolicy(keep_weekly=2, keep_monthly=2))
    assert plan.keep["a1"] == ["weekly 2026-W48", "monthly 2026-11"]
    assert plan.keep["a4"] == ["weekly 2026-W47"]
    assert plan.keep["a5"] == ["monthly 2026-10", "label westtek.keep"]
    assert plan.delete == ["a2", "a3", "a6"]


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (lambda: RetentionPolicy(), "must keep something"),
        (lambda: RetentionPolicy(keep_last=-1), "keep-last must not be negative"),
    ],
)
def test_a_policy_that_would_delete_everything_is_refused(policy, message):
    with pytest.raises(ValueError, match=message):
        plan_retention(HISTORY, policy())


@pytest.mark.slow
def test_prune_deletes_what_the_policy_drops_and_never_the_baseline(
    tmp_path, research_env, monkeypatch, capsys
):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    store = str(tmp_path / "store")
    repo = Repository.open(store, create=True)
    first = snapshot(repo, research_env)  # the environment's baseline
    ids = [first.id]
    data = research_env["workspace"] / "data"
    for size in (1, 2, 3):
        for old in data.glob("run*.bin"):
            old.unlink()
        (data / f"run{size}.bin").write_bytes(os.urandom(size << 20))
        ids.append(snapshot(repo, research_env).id)
    repo.close()

    assert (
        main(["snapshot", "prune", "--keep-last", "1", "--dry-run", "--json", "--store", store])
        == 0
    )
    dry = json.loads(capsys.readouterr().out)
    assert sorted(dry["delete"]) == sorted(ids[1:3])
    assert "protected" in dry["keep"][first.id]
    assert dry["reclaimable_bytes"] > 2_500_000  # run1 and run2 are only in the dropped ones

    assert main(["snapshot", "prune", "--keep-last", "1", "--json", "--store", store]) == 0
    done = json.loads(capsys.readouterr().out)
    assert sorted(done["deleted"]) == sorted(ids[1:3])
    repo = Repository.open(store)
    assert sorted(repo.list_manifests()) == sorted([first.id, ids[3]])
    assert verify_snapshots(repo).ok
    repo.close()

    assert main(["snapshot", "prune", "--store", store]) == 1
    assert "must keep something" in capsys.readouterr().err


def test_of_the_container_start_safety_snapshots_only_the_latest_is_kept():
    # a server restoring the environment at each container start takes one each time; a
    # researcher's own rollback's safety snapshot is kept whatever the policy says
    restore = {"westtek.rollback": "safety", "westtek.rollback.origin": "container-start"}
    history = [
        row("s3", "2026-11-26T09:00:00+00:00", **restore),
        row("a1", "2026-11-26T08:00:00+00:00"),
        row("s2", "2026-11-25T09:00:00+00:00", **restore),
        row("a2", "2026-11-25T08:00:00+00:00"),
        row("r1", "2026-11-24T09:00:00+00:00", **{"westtek.rollback": "safety"}),
        row("s1", "2026-11-24T08:00:00+00:00", **restore),
    ]
    plan = plan_retention(history, RetentionPolicy(keep_last=2))
    # they take none of the policy's places: the two newest others are the "last" two
    assert plan.keep == {
        "s3": ["latest container-start safety snapshot"],
        "a1": ["last"],
        "a2": ["last"],
        "r1": ["label westtek.rollback"],
    }
    assert plan.delete == ["s2", "s1"]


def test_a_container_start_forgets_the_safety_snapshots_its_own_supersedes():
    # what each container start drops right after taking its own (automatic snapshots or
    # not): the earlier container-start ones of that environment, never the baseline
    restore = {"westtek.rollback": "safety", "westtek.rollback.origin": "container-start"}
    history = [
        row("s3", "2026-11-26T09:00:00+00:00", **restore),
        row("a1", "2026-11-26T08:00:00+00:00"),
        row("s2", "2026-11-25T09:00:00+00:00", **restore),
        row("r1", "2026-11-24T09:00:00+00:00", **{"westtek.rollback": "safety"}),
        row("s1", "2026-11-24T08:00:00+00:00", **restore),
        row("t1", "2026-11-23T08:00:00+00:00", env="bob", **restore),
    ]
    assert superseded_container_start_safeties(history, "alice") == ["s2", "s1"]
    assert superseded_container_start_safeties(history, "alice", protected=["s1"]) == ["s2"]
    assert superseded_container_start_safeties(history, "bob") == []
    assert superseded_container_start_safeties(history, "carol") == []
