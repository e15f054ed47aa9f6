"""Local backend: each single-user server is a process on the hub's machine.

Servers run as the hub's own user, each in its own home directory, so demo users need no
system accounts. West Tek's own state for each server (its log, event log, outbox, caches)
lives in a state directory beside the homes, never inside the home it watches and
captures. Meant for one researcher's laptop or workstation, or CI: the homes are apart for
tidiness, not isolation. Any user's kernel runs as the same OS user as every other user's
server and the hub, so it can read their files and tokens; hence the backend serves one
user unless IT accepts that (``allow_shared_os_user``, as the demo does). Several users
on one machine get the docker backend; production uses the ecs backend.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from jupyterhub.utils import random_port
from traitlets import Bool, Float, Unicode, default

from westtek_spawner.backends.base import SpawnerBackend
from westtek_spawner.errors import SpawnRefused
from westtek_spawner.user_env import ensure_user_env, user_env_vars, user_python

# a terminal is a login bash: ~/.bash_profile puts the user's environment first on PATH
LOGIN_SHELL_ARG = '--ServerApp.terminado_settings={"shell_command": ["/bin/bash", "-l"]}'
PYTHONS_ARG = "--WestTekExtension.pythons"


_warned = False


def _os_user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


def users_with_servers(user: Any) -> list[str]:
    """Other users of this hub whose servers have ever started, from the hub's database.

    Their homes stay on disk between servers, so a user counts from their first start on
    (JupyterHub sets a server's last activity when it starts and keeps it after a stop).
    Empty when the spawner's user carries no database session (a spawner driven by hand).
    """
    db = getattr(user, "db", None)
    if db is None:
        return []
    from jupyterhub import orm

    rows = (
        db.query(orm.User.name)
        .join(orm.Spawner, orm.Spawner.user_id == orm.User.id)
        .filter(orm.Spawner.last_activity.isnot(None), orm.User.name != user.name)
        .distinct()
        .order_by(orm.User.name)
    )
    return [name for (name,) in rows]


# A free port is chosen before the server binds it: another process can take it meanwhile
# (seen in CI, with containers on the host network). The server is then launched again on
# another port, at most this many times in all.
PORT_ATTEMPTS = 3
# How long a launched server has to bind its port; after that the hub's HTTP wait decides.
BIND_SECONDS = 20.0


class LocalBackend(SpawnerBackend):
    """Run single-user servers as local processes, one home directory per user."""

    name = "local"
    runs_as_hub_user = True
    # The hub's machine keeps what was installed, and its Python may be shared by users.
    restores_by_default = False

    @classmethod
    def default_python(cls) -> list[str]:
        """The hub's own interpreter: its environment has jupyterhub and westtek."""
        return [sys.executable]

    @classmethod
    def default_cmd(cls) -> list[str]:
        """The hub's interpreter, whatever PATH the hub was started with."""
        return [sys.executable, "-m", "jupyterhub.singleuser"]

    home_dir_template = Unicode(
        config=True,
        help="""Home directory of each user's server; `{username}` and `{servername}` are
        filled in. The server starts there with HOME pointing at it, so users' files, pip
        `--user` installs and Jupyter runtime files stay apart. Created on first spawn.
        Defaults to `westtek-users/{username}` under the hub's working directory.""",
    )

    @default("home_dir_template")
    def _default_home_dir_template(self) -> str:
        return os.path.join(os.getcwd(), "westtek-users", "{username}")

    state_dir_template = Unicode(
        config=True,
        help="""West Tek's own state for each user's server (its log, drift event log,
        outbox, caches), given to the server as WESTTEK_DATA_DIR, WESTTEK_CACHE_DIR and
        WESTTEK_LOG_DIR; `{username}` and `{servername}` are filled in. Kept outside the
        home directory: the home is the workspace West Tek watches and captures, and its own
        writes there would count as drift. Defaults to `westtek-state/{username}` under the
        hub's working directory.""",
    )

    @default("state_dir_template")
    def _default_state_dir_template(self) -> str:
        return os.path.join(os.getcwd(), "westtek-state", "{username}")

    user_env = Bool(
        True,
        config=True,
        help="""Give each user their own kernel environment: on first spawn, `~/.venv`
        layered over the hub's packages (created in well under a second, nothing copied),
        registered as their default `python3` kernel and first on the PATH of their
        terminals (a login bash). One user's `pip install` then never changes another
        user's packages or the hub's. Off: kernels and terminals use the hub's own
        interpreter, shared by everyone.""",
    )

    allow_shared_os_user = Bool(
        False,
        config=True,
        help="""Let more than one user have servers on this backend. Every server runs as
        the hub's own OS user, so any user's kernel can read every other user's home, their
        servers' API tokens and the hub service's token. Off (the default): once one user
        has used the backend, another user's spawn is refused with that reason. Turn it on
        only where every user may see everything (a demo, one trusting group on a
        workstation); otherwise use the docker backend, which isolates users on one
        machine, or the ecs backend in production.""",
    )

    stop_timeout = Float(
        30.0,
        config=True,
        help="Seconds to wait after SIGTERM before the server's process group is killed "
        "(the server takes its before-stop automatic snapshot in them).",
    )

    # Identity of the running server; persisted by get_state.
    pid = 0
    # Creation time guards against a recycled pid after a hub restart.
    create_time = 0.0
    _process: asyncio.subprocess.Process | None = None
    # where this launch's lines begin in the server's log (it is appended to)
    _log_offset = 0

    @property
    def home_dir(self) -> Path:
        """The expanded home directory of this spawner's user."""
        return Path(self.spawner.format_string(self.home_dir_template)).expanduser().absolute()

    @property
    def state_dir(self) -> Path:
        """The expanded directory of West Tek's own state for this spawner's server."""
        return Path(self.spawner.format_string(self.state_dir_template)).expanduser().absolute()

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.state_dir / "singleuser.log"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        global _warned
        if not _warned:  # once per hub process, when the first server is spawned
            _warned = True
            self.log.warning(
                "West Tek's local backend runs every user's server as the hub's own OS user"
                " %r: any user's kernel can read other users' files and tokens. Use the"
                " docker backend to isolate users (README, Configuration for IT).%s",
                _os_user(),
                "" if self.allow_shared_os_user else " Only one user may have servers here.",
            )

    async def prepare(self) -> None:
        """Refuse a second user unless allowed; pick a free port; make the user's folders."""
        if not self.allow_shared_os_user:
            others = users_with_servers(self.spawner.user)
            if others:
                raise SpawnRefused(
                    f"This hub runs every server as one OS user, so {self.spawner.user.name}'s"
                    f" kernels could read {others[0]}'s files: it serves one user. IT can"
                    " switch to the docker backend (or set LocalBackend.allow_shared_os_user).",
                    reason="local backend serves one user",
                    status_code=403,
                )
        if not self.spawner.port:
            self.spawner.port = random_port()
        self.home_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.user_env:
            await asyncio.to_thread(ensure_user_env, self.home_dir)

    async def launch(self, cmd: list[str], env: dict[str, str]) -> None:
        """Start the server process in its own session, logging to its state directory.

        Its terminals are a login bash (``SHELL``; ``~/.bash_profile`` keeps the user's
        environment first on PATH).
        """
        home, state = self.home_dir, self.state_dir
        env = {
            **env,
            "HOME": str(home),
            "WESTTEK_DATA_DIR": str(state / "data"),
            "WESTTEK_CACHE_DIR": str(state / "cache"),
            "WESTTEK_LOG_DIR": str(state),
        }
        if self.user_env:
            env |= user_env_vars(home, env.get("PATH", os.defpath))
            cmd = [*cmd, LOGIN_SHELL_ARG]
            if not any(arg.startswith(PYTHONS_ARG) for arg in cmd):
                # her environment is what her kernels run (the suite's packages layered in
                # it): capture that, not the hub's interpreter beside it a second time
                cmd.append(f"{PYTHONS_ARG}={user_python(home)}")
        with open(self.log_path, "ab") as log_file:
            self._log_offset = log_file.tell()
            self._process = await asyncio.create_subprocess_exec(
                *cmd,
                env=env,
                cwd=home,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # the hub's signals must not reach the server
            )
        self.pid = self._process.pid
        try:
            self.create_time = psutil.Process(self.pid).create_time()
        except psutil.NoSuchProcess:
            pass  # it exited (and was reaped) at once: poll() has its exit status
        self.log.info("Started %s's server as pid %d in %s", self.spawner.user.name, self.pid, home)

    async def wait_until_running(self) -> tuple[str, int]:
        """Wait until the server binds its port (the hub then waits for HTTP).

        A server that exits because its port was taken since it was chosen is launched
        again on another; any other exit fails the spawn with its log's path.
        """
        for attempt in range(1, PORT_ATTEMPTS + 1):
            status = await self._bound_or_exited()
            if status is None:
                return (self.spawner.ip or "127.0.0.1", self.spawner.port)
            if attempt == PORT_ATTEMPTS or not self._port_was_taken():
                raise RuntimeError(self.exit_message(status))
            taken, self.spawner.port = self.spawner.port, random_port()
            self.log.warning(
                "Port %d was taken before %s's server could bind it: launching it on %d",
                taken, self.spawner.user.name, self.spawner.port,
            )  # fmt: skip
            await self.launch(self.spawner.server_command(), self.spawner.get_env())
        raise AssertionError("unreachable")  # the last attempt returned or raised

    async def _bound_or_exited(self) -> int | None:
        """The exit status of a server that stopped before binding its port, else None."""
        deadline = time.monotonic() + BIND_SECONDS
        while time.monotonic() < deadline:
            status = await self.poll()
            if status is not None:
                return status
            if self._listening():
                return None
            await asyncio.sleep(0.1)
        return None

    def _listening(self) -> bool:
        """Whether the server (or the pre-start step it runs first) listens on its port."""
        process = self._alive_process()
        if process is None:
            return False
        try:
            for member in (process, *process.children(recursive=True)):
                for connection in member.net_connections(kind="tcp"):
                    if connection.status == psutil.CONN_LISTEN and (
                        connection.laddr.port == self.spawner.port
                    ):
                        return True
        except psutil.Error:
            pass  # a member exited meanwhile: the next look says
        return False

    def _port_was_taken(self) -> bool:
        with open(self.log_path, "rb") as log_file:
            log_file.seek(self._log_offset)
            return b"already in use" in log_file.read()

    def exit_message(self, status: int) -> str:
        """The exit status and where the server's log is."""
        return f"the server process exited with status {status}; see {self.log_path}"

    def _alive_process(self) -> psutil.Process | None:
        if not self.pid:
            return None
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.create_time) > 1.0:
                return None  # the pid was recycled by an unrelated process
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.NoSuchProcess:
            return None
        return process

    async def poll(self) -> int | None:
        """Check the process we started, or, after a hub restart, the saved pid."""
        if self._process is not None and self._process.returncode is not None:
            status = self._process.returncode
            self.clear_state()
            return status
        if self._alive_process() is None:
            self.clear_state()
            return 0
        return None

    async def stop(self, now: bool = False) -> None:
        """SIGTERM the server's process group, then SIGKILL it after ``stop_timeout``."""
        if self._alive_process() is None:
            self.clear_state()
            return
        if not now:
            self._signal_group(signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            while time.monotonic() < deadline and self._alive_process() is not None:
                await asyncio.sleep(0.1)
        if self._alive_process() is not None:
            self._signal_group(signal.SIGKILL)
            while self._alive_process() is not None:
                await asyncio.sleep(0.05)
        if self._process is not None:
            await self._process.wait()  # reap it
        self.clear_state()

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)  # the server and its kernels share its session
        except ProcessLookupError:
            pass

    def get_state(self) -> dict[str, Any]:
        """The pid and its creation time: enough to find and signal the server again."""
        if not self.pid:
            return {}
        return {"pid": self.pid, "create_time": self.create_time}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the pid saved before a hub restart."""
        self.pid = int(state.get("pid", 0))
        self.create_time = float(state.get("create_time", 0.0))

    def clear_state(self) -> None:
        """Forget the stopped process."""
        self.pid = 0
        self.create_time = 0.0
        self._process = None
