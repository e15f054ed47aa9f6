"""WestTekSpawner with its local backend, driven as JupyterHub drives it.

The server command is a tiny HTTP server so these tests are fast; the end-to-end test runs
the real jupyterhub-singleuser through a real hub.
"""

import asyncio
import os
import socket
import sys
import urllib.request
from types import SimpleNamespace

import psutil
import pytest
from jupyterhub.objects import Hub
from jupyterhub.utils import random_port

from westtek_spawner import WestTekSpawner

# Serves HTTP on the port JupyterHub hands the server in JUPYTERHUB_SERVICE_URL.
TINY_SERVER = (
    "import http.server, os, urllib.parse;"
    "port = urllib.parse.urlparse(os.environ['JUPYTERHUB_SERVICE_URL']).port;"
    "open('home-was', 'w').write(os.environ['HOME']);"
    "http.server.HTTPServer(('127.0.0.1', port), http.server.SimpleHTTPRequestHandler)"
    ".serve_forever()"
)


def make_spawner(tmp_path, name="alice", hub_db=None, **traits):
    """alice's spawner; with ``hub_db``, her user carries JupyterHub's database session."""
    user = SimpleNamespace(name=name, escaped_name=name, url=f"/user/{name}/", db=hub_db)
    spawner = WestTekSpawner(
        user=user,
        hub=Hub(ip="127.0.0.1", port=8081, base_url="/hub/"),
        api_token="test-token",
        oauth_client_id=f"jupyterhub-user-{name}",
        cmd=[sys.executable, "-c", TINY_SERVER],
        **traits,
    )
    spawner.config.LocalBackend.home_dir_template = str(tmp_path / "homes" / "{username}")
    spawner.config.LocalBackend.state_dir_template = str(tmp_path / "state" / "{username}")
    return spawner


async def wait_for_http(ip, port, timeout=10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await asyncio.to_thread(urllib.request.urlopen, f"http://{ip}:{port}/", timeout=1)
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


@pytest.fixture
async def started(tmp_path):
    spawner = make_spawner(tmp_path)
    events = []

    async def collect():
        async for event in spawner.progress():
            events.append(event)

    start = asyncio.ensure_future(spawner.start())
    await asyncio.sleep(0)
    collector = asyncio.ensure_future(collect())
    ip, port = await start
    await asyncio.wait_for(collector, 5)
    await wait_for_http(ip, port)
    yield spawner, ip, port, events
    await spawner.stop(now=True)


async def test_start_runs_a_local_process_in_the_users_home(started, tmp_path):
    spawner, ip, port, _ = started
    assert ip == "127.0.0.1" and port > 0
    assert await spawner.poll() is None
    home = tmp_path / "homes" / "alice"
    assert (home / "home-was").read_text() == str(home)
    assert oct(home.stat().st_mode & 0o777) == "0o700"


async def test_progress_reports_each_stage_in_order(started):
    _, _, _, events = started
    progress = [event["progress"] for event in events]
    assert progress == sorted(progress) and len(progress) >= 4
    messages = [event["message"] for event in events]
    assert any(m.startswith("Notebook server running at 127.0.0.1:") for m in messages)
    assert messages[-1] == "Notebook server answering"


async def test_state_survives_a_hub_restart(started, tmp_path):
    # Given a running server, when a new spawner (a restarted hub) loads the saved state,
    spawner, ip, port, _ = started
    state = spawner.get_state()
    assert state["westtek"]["backend"] == "local"
    reborn = make_spawner(tmp_path)
    reborn.load_state(state)
    # then it sees the same server running and can stop it.
    assert await reborn.poll() is None
    pid = state["westtek"]["pid"]
    await reborn.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert await reborn.poll() == 0
    assert reborn.get_state() == {}


async def test_a_recycled_pid_is_not_taken_for_the_server(tmp_path):
    # A pid saved before a reboot may now belong to another process: this test's own.
    spawner = make_spawner(tmp_path)
    spawner.load_state({"westtek": {"backend": "local", "pid": os.getpid(), "create_time": 1.0}})
    assert await spawner.poll() == 0


async def test_stop_kills_a_server_that_ignores_sigterm(tmp_path):
    spawner = make_spawner(tmp_path)
    spawner.cmd = [
        sys.executable,
        "-c",
        "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN);" + TINY_SERVER,
    ]
    spawner.config.LocalBackend.stop_timeout = 0.3
    await spawner.start()
    pid = spawner.get_state()["westtek"]["pid"]
    await spawner.stop()
    assert not psutil.pid_exists(pid)
    assert await spawner.poll() == 0


async def test_a_server_that_exits_at_once_fails_the_spawn_with_its_log(tmp_path):
    spawner = make_spawner(tmp_path)
    spawner.cmd = [sys.executable, "-c", "import sys; sys.exit(3)"]

    async def exit_first(original=spawner.backend_impl.wait_until_running):
        await asyncio.sleep(1)
        return await original()

    spawner.backend_impl.wait_until_running = exit_first
    with pytest.raises(RuntimeError, match="exited with status 3; see .*singleuser.log"):
        await spawner.start()


async def test_a_port_taken_between_choosing_and_binding_is_chosen_again(tmp_path, monkeypatch):
    # Given a port that another process binds after the spawner chose it
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([taken.getsockname()[1]])
    monkeypatch.setattr(
        "westtek_spawner.backends.local.random_port", lambda: next(ports, None) or random_port()
    )
    spawner = make_spawner(tmp_path)
    try:
        # When alice's server is started, it is started on another port, and answers there
        ip, port = await spawner.start()
        assert port != taken.getsockname()[1]
        await wait_for_http(ip, port)
        assert b"already in use" in spawner.backend_impl.log_path.read_bytes()
    finally:
        await spawner.stop(now=True)
        taken.close()


def test_as_root_the_server_is_allowed_to_run_as_root(tmp_path, monkeypatch):
    spawner = make_spawner(tmp_path)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert "--allow-root" in spawner.get_args()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "--allow-root" not in spawner.get_args()


def test_unknown_backend_is_refused_with_the_choices(tmp_path):
    with pytest.raises(
        Exception, match="unknown spawner backend .kubernetes.; choose one of: docker, ecs, local"
    ):
        make_spawner(tmp_path, backend="kubernetes")


def test_default_command_uses_the_hubs_interpreter():
    assert WestTekSpawner().cmd == [sys.executable, "-m", "jupyterhub.singleuser"]


def test_registered_as_jupyterhub_spawner_entry_point():
    from importlib.metadata import entry_points

    (point,) = entry_points(group="jupyterhub.spawners", name="westtek")
    assert point.load() is WestTekSpawner


@pytest.mark.parametrize(
    ("bound", "public_hub_url", "expected"),
    [
        ("http://127.0.0.1:8123/", "", "http://127.0.0.1:8123"),
        ("http://:8000/", "", None),  # every address: nothing the server could dial
        ("http://127.0.0.1:8123/", "https://hub.example.org/hub/", None),  # the hub's own wins
    ],
    ids=["bound-address", "all-addresses", "public-url-configured"],
)
def test_the_server_learns_where_the_hub_proxy_is(tmp_path, bound, public_hub_url, expected):
    # Given a hub whose proxy binds `bound` and maybe a configured public hub URL,
    spawner = make_spawner(tmp_path)
    spawner.user.settings = {"proxy": SimpleNamespace(public_url=bound)}
    spawner.public_hub_url = public_hub_url
    # the server's environment tells the hub-service sink where to report
    assert spawner.get_env().get("JUPYTERHUB_URL") == expected


def test_the_spawner_and_the_hub_service_agree_on_a_users_lab(tmp_path):
    # Given the same lab settings on both sides (hub_config passes them to both),
    from westtek_core.labs import LabPolicy
    from westtek_hub.registry import Caller

    groups = ["staff", "vault-13", "lab-genomics-admins"]
    spawner = make_spawner(tmp_path, lab_groups=["vault-13"])
    spawner.user.groups = [SimpleNamespace(name=g) for g in groups]
    policy = LabPolicy(prefix=spawner.lab_group_prefix, named=frozenset(spawner.lab_groups))
    caller = Caller.from_model({"name": "alice", "groups": groups}, policy)
    # the server's lab is one the hub service counts her in, and groups that are no lab
    # ("staff") are nobody's lab on either side
    assert spawner.find_lab_id() == "genomics"
    assert caller.labs == {"genomics", "vault-13"} and caller.admin_labs == {"genomics"}
