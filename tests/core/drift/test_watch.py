"""The drift watcher on a real venv: pip installs and file removals become events."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.core.conftest import pip_install
from westtek_core.capture import capture_environment
from westtek_core.drift.events import EventLog
from westtek_core.drift.watch import DriftWatcher
from westtek_core.snapshot import create_snapshot, load_snapshot
from westtek_core.store import Repository


class Watching(NamedTuple):
    """A running watcher, what it reported, and every set of areas it graded again."""

    watcher: DriftWatcher
    seen: queue.Queue[dict]
    events: EventLog
    refreshes: list[set[str]]


StartWatcher = Callable[..., Watching]


@pytest.fixture
def start_watcher(tmp_path) -> Iterator[StartWatcher]:
    """Start watching ``python`` and ``root`` against a baseline taken now; stopped after."""
    running: list[tuple[DriftWatcher, threading.Thread, EventLog]] = []

    def start(python: str, root: Path, events_file: Path | None = None) -> Watching:
        repo = Repository.open(str(tmp_path / "store"), cache_dir=tmp_path / "cache")
        capture = capture_environment([python], root)
        baseline = load_snapshot(repo, create_snapshot(repo, capture).id)
        events = EventLog(events_file or tmp_path / "events.sqlite")
        seen: queue.Queue[dict] = queue.Queue()
        watcher = DriftWatcher([python], root, baseline, events, seen.put, environment_id="alice")
        refreshes: list[set[str]] = []
        refresh = watcher.refresh
        watcher.refresh = lambda areas: (refreshes.append(areas), refresh(areas))[1]  # type: ignore[method-assign]
        thread = threading.Thread(target=watcher.run, daemon=True)
        running.append((watcher, thread, events))
        thread.start()
        assert watcher.ready.wait(30), "the watcher did not start watching"
        return Watching(watcher, seen, events, refreshes)

    yield start
    for watcher, thread, events in running:
        watcher.stop_event.set()
        thread.join(10)
        events.close()


@pytest.fixture
def watching(research_env, start_watcher: StartWatcher) -> Watching:
    return start_watcher(str(research_env["python"]), research_env["workspace"])


def next_event(seen: queue.Queue, kind: str, timeout: float = 60) -> dict:
    """The next event with a change of ``kind`` (bounded wait)."""
    while True:
        event = seen.get(timeout=timeout)
        if any(c["kind"] == kind for c in event["changes"]):
            return event


def test_a_pip_install_becomes_a_graded_event(watching, research_env, wheelhouse):
    watcher, seen, events, _ = watching
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
    seen = watching.seen
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
    watcher = watching.watcher
    calls = []
    monkeypatch.setattr("westtek_core.drift.watch.capture_kernels", lambda: calls.append("k") or [])
    monkeypatch.setattr(
        "westtek_core.drift.watch.probe_interpreter", lambda p: calls.append("p") or {}
    )
    (research_env["workspace"] / "notes.txt").write_text("an idea")
    watcher.refresh({"workspace"})
    assert calls == []


def test_an_install_into_a_venv_named_dot_venv_is_seen(tmp_path, wheelhouse, start_watcher):
    # Given a home directory whose kernel runs `~/.venv` (the name `python -m venv .venv`
    # and uv give; watchfiles' default filter drops every path through a `.venv`),
    home = tmp_path / "home"
    home.mkdir()
    venv = home / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip_install(python, wheelhouse, "westtek_probe_pkg==1.0.0")
    seen = start_watcher(str(python), home).seen
    # when a package is upgraded in it,
    pip_install(python, wheelhouse, "westtek_probe_pkg==2.0.0")
    # then the watcher grades it: one event, the upgrade, not one per file written.
    event = next_event(seen, "package", timeout=30)
    assert [(c["name"], c["change"], c["after"]) for c in event["changes"]] == [
        ("westtek_probe_pkg", "upgraded", "2.0.0")
    ]


# What merely running a server and using JupyterLab writes in a home directory.
SESSION_CHURN = [
    ".westtek/singleuser.log",
    ".local/share/westtek/events.sqlite-wal",
    ".local/share/westtek/notebook-analyses.json",
    ".local/share/jupyter/runtime/kernel-1.json",
    ".jupyter/lab/workspaces/default-37a8.jupyterlab-workspace",
    ".ipython/profile_default/history.sqlite",
    ".cache/pip/selfcheck/abc.json",
    ".cache/westtek/0123/statcache.sqlite",
    "__pycache__/helpers.cpython-311.pyc",
]


@pytest.fixture
def home(research_env, monkeypatch) -> Path:
    """The research workspace as a home directory with West Tek's state inside it."""
    home = research_env["workspace"]
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DATA_HOME")  # West Tek's state then lies inside the home
    monkeypatch.delenv("WESTTEK_DATA_DIR", raising=False)
    for rel in SESSION_CHURN:  # a home that has been used before: its directories exist
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
    return home


def test_the_products_own_writes_and_session_churn_wake_nothing(home, research_env, start_watcher):
    events_file = home / ".local" / "share" / "westtek" / "events.sqlite"
    watcher, seen, _, refreshes = start_watcher(str(research_env["python"]), home, events_file)
    # When only the product's own state and a working session's churn are written, for
    # a while (a log line, the event log's WAL, runtime files, the lab's autosave, IPython
    # history, pip's self-check, West Tek's stat cache),
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for rel in SESSION_CHURN:
            with (home / rel).open("a") as out:
                out.write("x\n")
        time.sleep(0.1)
    time.sleep(1)
    # then nothing was graded again and the state is STABLE with no change;
    assert refreshes == []
    assert seen.empty()
    assert watcher.report.status.value == "STABLE" and watcher.report.changes == []
    # while a real edit of the workspace still is an event.
    (home / "notes.md").write_text("why the fit uses robust errors\n")
    event = seen.get(timeout=30)
    assert [c["name"] for c in event["changes"]] == ["notes.md"]


def test_a_failed_grading_does_not_end_the_watching(watching, research_env, wheelhouse, caplog):
    watcher, seen, _, _ = watching
    refresh = watcher.refresh
    calls = []

    def flaky(areas):
        calls.append(areas)
        if len(calls) == 1:
            raise OSError("a file vanished mid-capture")
        return refresh(areas)

    watcher.refresh = flaky  # type: ignore[method-assign]
    # Given a first grading that fails,
    (research_env["workspace"] / "notes.md").write_text("first\n")
    deadline = time.monotonic() + 30
    while not calls and time.monotonic() < deadline:
        time.sleep(0.05)
    assert calls, "the change was not graded"
    # when the packages change afterwards, the watcher still grades them.
    pip_install(research_env["python"], wheelhouse, "westtek_probe_pkg==2.0.0")
    event = next_event(seen, "package", timeout=30)
    assert event["status"] == "CRITICAL_DRIFT"
    assert "a file vanished mid-capture" in caplog.text


def test_a_pip_install_user_is_seen(tmp_path, wheelhouse, monkeypatch, start_watcher):
    # Given an interpreter that reads the user site (not a venv) and a home as the
    # workspace, where that user site does not exist yet,
    python = os.path.join(sys.base_prefix, "bin", "python3")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("PYTHONUSERBASE", raising=False)
    seen = start_watcher(python, home).seen
    # when a package is installed with `pip install --user`,
    subprocess.run(
        [python, "-m", "pip", "install", "--user", "-q", "--no-index", "--find-links",
         str(wheelhouse), "--disable-pip-version-check", "westtek_unused_pkg==1.0.0"],
        check=True, capture_output=True,
    )  # fmt: skip
    # then it is a package event of that interpreter, not a workspace file.
    # (Tools of this machine may write their own dot-directories into the home meanwhile,
    # e.g. ~/.rustup: those are the workspace's; the user site's files must not be.)
    event = next_event(seen, "package", timeout=30)
    changes = [(c["kind"], c["name"], c["change"]) for c in event["changes"]]
    assert [c for c in changes if c[0] == "package"] == [("package", "westtek_unused_pkg", "added")]
    assert not [c for c in changes if c[1].startswith(".local/")], changes
