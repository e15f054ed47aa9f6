"""The drift watcher on a real venv: pip installs and file removals become events."""

from __future__ import annotations

import queue
import threading

import pytest

from tests.core.conftest import pip_install
from westtek_core.capture import capture_environment
from westtek_core.events import EventLog
from westtek_core.snapshot import create_snapshot, load_snapshot
from westtek_core.store import Repository
from westtek_core.watch import DriftWatcher


@pytest.fixture
def watching(research_env, tmp_path):
    repo = Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")
    python, root = str(research_env["python"]), research_env["workspace"]
    baseline = load_snapshot(repo, create_snapshot(repo, capture_environment([python], root)).id)
    events = EventLog(tmp_path / "events.sqlite")
    seen: queue.Queue[dict] = queue.Queue()
    watcher = DriftWatcher([python], root, baseline, events, seen.put, environment_id="alice")
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    assert watcher.ready.wait(30), "the watcher did not start watching"
    yield watcher, seen, events
    watcher.stop_event.set()
    thread.join(10)
    events.close()


def next_event(seen: queue.Queue, kind: str, timeout: float = 60) -> dict:
    """The next event with a change of ``kind`` (bounded wait)."""
    while True:
        event = seen.get(timeout=timeout)
        if any(c["kind"] == kind for c in event["changes"]):
            return event


def test_a_pip_install_becomes_a_graded_event(watching, research_env, wheelhouse):
    watcher, seen, events = watching
    assert watcher.report.status.value == "STABLE"
    # When a package a notebook imports is upgraded in the watched venv,
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==2.0.0")
    event = next_event(seen, "package")
    # then an event says so, graded by the notebook that imports it,
    change = next(c for c in event["changes"] if c["kind"] == "package")
    assert (change["name"], change["after"], change["severity"]) == (
        "westtek_probe_pkg",
        "2.0.0",
        "critical",
    )
    assert change["affected_notebooks"] == ["analysis.ipynb"]
    assert event["status"] == "CRITICAL_DRIFT"
    # it is in the event log, and the install history names the notebook whose
    # `%pip install` cell installs that package.
    assert events.events()[-1]["id"] == event["id"]
    (history,) = events.install_history("alice")
    assert (history["package"], history["before"], history["after"]) == (
        "westtek_probe_pkg",
        "1.0.0",
        "2.0.0",
    )
    assert history["notebook"] == "analysis.ipynb"


def test_removing_read_data_is_an_event_and_restoring_it_resolves_it(watching, research_env):
    watcher, seen, _ = watching
    data = research_env["workspace"] / "data" / "measurements.csv"
    content = data.read_bytes()
    data.unlink()
    event = next_event(seen, "data")
    assert event["changes"][0]["severity"] == "critical"
    data.write_bytes(content)
    # the file is back (with a new mtime): still a change, now a minor one
    event = seen.get(timeout=60)
    assert any(c["kind"] == "data" and c["severity"] == "critical" for c in event["resolved"])


def test_only_the_changed_area_is_captured_again(watching, monkeypatch, research_env):
    watcher, _, _ = watching
    calls = []
    monkeypatch.setattr("westtek_core.watch.capture_kernels", lambda: calls.append("k") or [])
    monkeypatch.setattr("westtek_core.watch.probe_interpreter", lambda p: calls.append("p") or {})
    (research_env["workspace"] / "notes.txt").write_text("an idea")
    watcher.refresh({"workspace"})
    assert calls == []
