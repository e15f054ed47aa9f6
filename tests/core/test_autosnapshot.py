"""Automatic snapshots of a real venv: after a pip install settles, skipped when nothing
changed, pruned by their own retention, and one before the server stops."""

from __future__ import annotations

import time

from tests.core.conftest import pip_install
from tests.core.test_environment_service import service, taken  # noqa: F401 (a fixture)
from westtek_core.autosnapshot import AUTO_LABEL, AutoReason, AutoSnapshotter, prune_automatic
from westtek_core.snapshot import load_snapshot, snapshot_summaries
from westtek_core.snapshot.retention import (
    CONTAINER_START,
    SAFETY_LABEL,
    SAFETY_ORIGIN_LABEL,
    RetentionPolicy,
)


def automatic(service):  # noqa: F811
    """The environment's automatic snapshots, oldest first: (reason, probe version)."""
    repo = service.repo()
    rows = sorted(snapshot_summaries(repo), key=lambda s: str(s["timestamp"]))
    found = []
    for row in rows:
        if AUTO_LABEL in (row.get("labels") or {}):
            manifest = load_snapshot(repo, str(row["id"]))
            versions = {
                p["name"]: p["version"]
                for interp in manifest["interpreters"]
                for p in interp["packages"]
            }
            found.append((row["labels"][AUTO_LABEL], versions.get("westtek_probe_pkg")))
    return found


def test_a_pip_install_is_snapshotted_once_it_settles(service, research_env, wheelhouse):  # noqa: F811
    # Given a server's environment, snapshotted once by hand
    taken(service, service.start_snapshot(note="by hand"))
    snapshotter = AutoSnapshotter(service, settle_seconds=0.6, check_seconds=0.1)
    snapshotter.start()
    assert snapshotter.ready.wait(60)
    try:
        # when the researcher pip-installs an upgrade and then leaves the environment alone,
        pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==1.1.0")
        deadline = time.monotonic() + 60
        while not snapshotter.taken and time.monotonic() < deadline:
            time.sleep(0.1)
        # one automatic snapshot records it, labelled with why it was taken
        assert snapshotter.taken, "no automatic snapshot after the install settled"
        result = taken(service, snapshotter.taken[0])
        assert "unchanged_since" not in result
        assert automatic(service) == [("after-change", "1.1.0")]
        assert load_snapshot(service.repo(), result["id"])["notes"] == AutoReason.CHANGE.note
    finally:
        snapshotter.stop(final_snapshot=False)


def test_an_unchanged_environment_writes_nothing(service):  # noqa: F811
    first = taken(service, service.start_snapshot(note="by hand"))
    before = sorted(service.repo().backend.list(""))
    # an automatic snapshot of the same environment is skipped: not one object is written
    result = taken(service, AutoSnapshotter(service).take(AutoReason.SCHEDULE))
    assert result == {"unchanged_since": first["id"]}
    assert sorted(service.repo().backend.list("")) == before


def test_a_jupyterlab_setting_alone_is_no_reason_to_snapshot(service, research_env):  # noqa: F811
    first = taken(service, service.start_snapshot(note="by hand"))
    before = sorted(service.repo().backend.list(""))
    # Given the researcher answers JupyterLab's news prompt, which JupyterLab saves as a setting
    settings = research_env["tmp"] / "jupyter-config" / "lab" / "user-settings"
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')
    # then the automatic snapshot it set off writes nothing: the home keeps the setting
    result = taken(service, AutoSnapshotter(service).take(AutoReason.CHANGE))
    assert result == {"unchanged_since": first["id"]}
    assert sorted(service.repo().backend.list("")) == before
    # while a change of her Jupyter config is snapshotted
    (research_env["tmp"] / "jupyter-config" / "jupyter_server_config.py").write_text("c = 1\n")
    result = taken(service, AutoSnapshotter(service).take(AutoReason.CHANGE))
    assert "unchanged_since" not in result, result


def test_automatic_snapshots_beyond_retention_are_pruned_and_nothing_else(
    service,  # noqa: F811
    research_env,
    wheelhouse,
):
    # Given a snapshot by hand (the baseline) and two automatic ones
    baseline = taken(service, service.start_snapshot(note="by hand"))["id"]
    snapshotter = AutoSnapshotter(service, retention=RetentionPolicy(keep_last=2))
    ids = []
    for version in ("1.1.0", "2.0.0", "1.0.0"):
        pip_install(research_env["python"], wheelhouse, f"westtek_probe_pkg=={version}")
        result = taken(service, snapshotter.take(AutoReason.CHANGE))
        ids.append(result["id"])
    # the third pruned the oldest automatic one: the baseline and the last two stay
    assert result["pruned"] == [ids[0]]
    remaining = {s["id"] for s in snapshot_summaries(service.repo())}
    assert remaining == {baseline, ids[1], ids[2]}
    assert automatic(service) == [("after-change", "2.0.0"), ("after-change", "1.0.0")]


def test_stopping_takes_the_before_stop_snapshot(service, research_env, wheelhouse):  # noqa: F811
    taken(service, service.start_snapshot(note="by hand"))
    snapshotter = AutoSnapshotter(service, settle_seconds=3600, check_seconds=0.1)
    snapshotter.start()
    assert snapshotter.ready.wait(60)
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==2.0.0")
    # the server stops before the change settled: what was installed is still kept
    outcome = snapshotter.stop(final_snapshot=True, timeout=120)
    assert outcome.result is not None and "unchanged_since" not in outcome.result, outcome
    assert automatic(service) == [("before-stop", "2.0.0")]
    # and the server's log says which snapshot it was
    assert str(outcome) == f"{outcome.result['id'][:12]} ({outcome.result['files']} files)"


def test_a_server_stopping_as_it_started_takes_no_snapshot(service):  # noqa: F811
    snapshotter = AutoSnapshotter(service, check_seconds=0.1)
    snapshotter.start()
    assert snapshotter.ready.wait(60)
    # nothing installed since the server started: its end loses nothing, nothing is written
    outcome = snapshotter.stop(final_snapshot=True)
    assert str(outcome) == "none: the environment is as the server started"
    assert snapshotter.taken == []


def test_container_start_safety_snapshots_go_but_the_latest(service):  # noqa: F811
    # Given a snapshot by hand, a researcher's rollback's safety snapshot and three safety
    # snapshots, as three container starts that restored the environment leave
    by_hand = taken(service, service.start_snapshot(note="by hand"))["id"]
    own = {SAFETY_LABEL: "safety"}
    rollback = taken(service, service.start_snapshot(note="rollback", labels=own))["id"]
    restore = {SAFETY_LABEL: "safety", SAFETY_ORIGIN_LABEL: CONTAINER_START}
    restores = [
        taken(service, service.start_snapshot(note="restore", labels=restore))["id"]
        for _ in range(3)
    ]
    # When the automatic retention runs
    pruned = prune_automatic(service.repo(), service.environment_id, RetentionPolicy(keep_last=1))
    # Then the older container-start ones go; the rest stay
    assert sorted(pruned) == sorted(restores[:2])
    remaining = {s["id"] for s in snapshot_summaries(service.repo())}
    assert remaining == {by_hand, rollback, restores[2]}
