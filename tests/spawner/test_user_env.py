"""Each local user's own kernel environment: layered over the suite, private to the user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.core.conftest import build_wheel
from westtek_spawner.user_env import ensure_user_env, user_env_vars


def run(python, code: str) -> str:
    # from the user's home, as her terminal does: the repository is not on sys.path there
    return subprocess.run(
        [str(python), "-c", code], check=True, capture_output=True, text=True,
        cwd=Path(python).parents[2],
    ).stdout.strip()  # fmt: skip


def test_a_users_installs_stay_in_their_own_environment(tmp_path):
    # Given alice's first spawn, which creates her environment,
    home = tmp_path / "alice"
    home.mkdir()
    python = ensure_user_env(home)
    assert python == home / ".venv" / "bin" / "python"
    # it runs the suite (ipykernel, West Tek) from the hub's packages, copying nothing,
    assert run(python, "import ipykernel, westtek_core; print('ok')") == "ok"
    assert not list((home / ".venv").rglob("ipykernel"))
    # and her terminal's `westtek` runs (the suite's own .pth files are read, an editable
    # install's included)
    cli = subprocess.run([str(home / ".venv" / "bin" / "westtek"), "--help"], cwd=home,
                         capture_output=True, text=True)  # fmt: skip
    assert cli.returncode == 0 and "snapshot" in cli.stdout, cli.stderr
    # and when she pip-installs a package with her environment's pip,
    wheels = build_wheel(tmp_path, "westtek_private_pkg", "1.0.0")
    subprocess.run(
        [str(home / ".venv" / "bin" / "pip"), "install", "-q", "--no-index",
         "--find-links", str(wheels), "--disable-pip-version-check", "westtek_private_pkg"],
        check=True, capture_output=True,
    )  # fmt: skip
    # it is hers: installed in her venv, invisible to the hub's interpreter.
    where = run(python, "import westtek_private_pkg; print(westtek_private_pkg.__file__)")
    assert where.startswith(str(home / ".venv"))
    hub = subprocess.run([sys.executable, "-c", "import westtek_private_pkg"], capture_output=True)
    assert hub.returncode != 0


def test_the_environment_is_the_default_kernel_and_first_on_a_login_shells_path(tmp_path):
    home = tmp_path / "bob"
    home.mkdir()
    python = ensure_user_env(home)
    spec = json.loads((home / ".local/share/jupyter/kernels/python3/kernel.json").read_text())
    assert spec["argv"][0] == str(python)
    # A login bash (what his terminals run) finds his pip and westtek first.
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    script = "command -v pip; command -v westtek; westtek --help >/dev/null && echo runs"
    found = subprocess.run(
        ["bash", "-l", "-c", script],
        env=env, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    assert found == [str(home / ".venv/bin/pip"), str(home / ".venv/bin/westtek"), "runs"]
    # The server's own environment puts it first too (its subprocesses, `%pip`).
    assert user_env_vars(home, "/usr/bin")["PATH"].split(os.pathsep)[0] == str(home / ".venv/bin")


def test_what_the_user_changed_is_kept_on_the_next_spawn(tmp_path):
    home = tmp_path / "carol"
    home.mkdir()
    ensure_user_env(home)
    profile = home / ".bash_profile"
    profile.write_text("# carol's own\n")
    kernel = home / ".local/share/jupyter/kernels/python3/kernel.json"
    kernel.write_text('{"argv": ["python"], "display_name": "mine", "language": "python"}')
    ensure_user_env(home)
    assert profile.read_text() == "# carol's own\n"
    assert json.loads(kernel.read_text())["display_name"] == "mine"


def start_no_process(*args, **kwargs):
    raise AssertionError(f"a process was started: {args}")


def test_a_spawn_over_an_existing_environment_starts_no_process(tmp_path, monkeypatch):
    # Given dave's environment, made on his first spawn,
    home = tmp_path / "dave"
    home.mkdir()
    python = ensure_user_env(home)
    (layer,) = (home / ".venv").rglob("westtek-suite.pth")
    suite_site = layer.read_text()
    # when he spawns again, nothing is run (the venv's site-packages is derived, not asked)
    monkeypatch.setattr(subprocess, "run", start_no_process)
    monkeypatch.setattr(subprocess, "Popen", start_no_process)
    assert ensure_user_env(home) == python
    monkeypatch.undo()
    # and the layer was found where his interpreter looks, not written a second time.
    assert list((home / ".venv").rglob("westtek-suite.pth")) == [layer]
    assert layer.read_text() == suite_site
    purelib = run(python, "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    assert layer.parent == Path(purelib)


def watched_service(tmp_path, home, python):
    """The server's environment service over ``home``, its environment ``python``'s."""
    from westtek_core.drift.events import EventLog
    from westtek_core.environment_service import EnvironmentService

    service = EnvironmentService(
        store=str(tmp_path / "store"), key_file=tmp_path / "store.key", root=home,
        pythons=[str(python)], environment_id=home.name,
        event_log=EventLog(tmp_path / "events.sqlite"),
    )  # fmt: skip
    job = service.start_snapshot()
    assert service.jobs.wait(job.id, timeout=120).error is None
    return service


def test_a_package_she_installs_over_the_suites_copy_is_drift_and_listed_once(
    tmp_path, research_env, wheelhouse
):
    from tests.core.conftest import pip_install

    # Given erin's environment layered over a suite that has westtek_probe_pkg 1.0.0,
    home = tmp_path / "erin"
    home.mkdir()
    python = ensure_user_env(home, suite_python=str(research_env["python"]))
    service = watched_service(tmp_path, home, python)
    # when she installs another version into her own venv, ahead of the suite's copy,
    pip_install(python, wheelhouse, "westtek_probe_pkg==1.1.0")
    # the drift says so (the copy import finds is hers), and her packages list it once.
    changes = service.drift_state(fresh=True)["changes"]
    probe = [(c["change"], c["before"], c["after"]) for c in changes if c["kind"] == "package"]
    assert probe == [("upgraded", "1.0.0", "1.1.0")]
    listed = [p["version"] for i in service.environment_view()["interpreters"]
              for p in i["packages"] if p["name"] == "westtek_probe_pkg"]  # fmt: skip
    assert listed == ["1.1.0"]


def test_an_editable_install_of_her_project_is_seen_live(tmp_path):
    import time

    # Given frank's watched environment (the suite's build backend seen through the layer),
    home = tmp_path / "frank"
    project = tmp_path / "project"
    (project / "westtek_editable_pkg").mkdir(parents=True)
    (project / "westtek_editable_pkg" / "__init__.py").write_text("VERSION = '0.1.0'\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        '[project]\nname = "westtek-editable-pkg"\nversion = "0.1.0"\n'
    )
    home.mkdir()
    python = ensure_user_env(home)
    service = watched_service(tmp_path, home, python)
    events: list[dict] = []
    service.subscribe(lambda m: events.append(m["event"]) if m["type"] == "event" else None)
    try:
        service.start_watching()
        assert service.wait_watching(60)
        # when he installs his project in development mode from his terminal,
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--no-index", "--no-build-isolation",
             "--disable-pip-version-check", "-e", str(project)],
            check=True, capture_output=True, cwd=home,
        )  # fmt: skip
        # a drift event names it, as for any other install.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not events:
            time.sleep(0.1)
        added = [(c["name"], c["change"]) for e in events for c in e["changes"]]
        assert ("westtek-editable-pkg", "added") in added, events
    finally:
        service.stop()
