"""Local backend: each single-user server is a process on the hub's machine.

Servers run as the hub's own user, each in its own home directory, so demo users need no
system accounts. Meant for a laptop, a workstation or CI; production uses the ecs backend.
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
from traitlets import Float, Unicode, default

from westtek_spawner.backends.base import SpawnerBackend


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

    stop_timeout = Float(
        10.0,
        config=True,
        help="Seconds to wait after SIGTERM before the server's process group is killed.",
    )

    # Identity of the running server; persisted by get_state.
    pid = 0
    # Creation time guards against a recycled pid after a hub restart.
    create_time = 0.0
    _process: asyncio.subprocess.Process | None = None

    @property
    def home_dir(self) -> Path:
        """The expanded home directory of this spawner's user."""
        return Path(self.spawner.format_string(self.home_dir_template)).expanduser().absolute()

    async def prepare(self) -> None:
        """Pick a free port and create the user's home directory (private to the hub's user)."""
        if not self.spawner.port:
            self.spawner.port = random_port()
        self.home_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    async def launch(self, cmd: list[str], env: dict[str, str]) -> None:
        """Start the server process in its own session, logging to the home directory."""
        home = self.home_dir
        env = {**env, "HOME": str(home)}
        log_dir = home / ".westtek"
        log_dir.mkdir(exist_ok=True)
        with open(log_dir / "singleuser.log", "ab") as log_file:
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
        self.create_time = psutil.Process(self.pid).create_time()
        self.log.info("Started %s's server as pid %d in %s", self.spawner.user.name, self.pid, home)

    async def wait_until_running(self) -> tuple[str, int]:
        """A local process listens as soon as it is up; the hub then waits for HTTP."""
        status = await self.poll()
        if status is not None:
            raise RuntimeError(self.exit_message(status))
        return (self.spawner.ip or "127.0.0.1", self.spawner.port)

    def exit_message(self, status: int) -> str:
        """The exit status and where the server's log is."""
        log = self.home_dir / ".westtek" / "singleuser.log"
        return f"the server process exited with status {status}; see {log}"

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
