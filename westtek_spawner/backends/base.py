"""The interface every spawner backend implements; WestTekSpawner drives it."""

from __future__ import annotations

from typing import Any, Protocol

from traitlets.config import LoggingConfigurable

from westtek_spawner.profiles import Profile


class SpawnerHost(Protocol):
    """What a backend uses of the spawner that drives it (``WestTekSpawner``).

    Backends see the spawner through this, not its class: the spawner imports the
    backends, and nothing here imports the spawner back.
    """

    config: Any
    hub: Any
    user: Any
    oauth_client_id: str
    ip: str
    port: int
    api_token: str
    poll_interval: float
    lab_id: str
    profile_slug: str
    _log_name: str

    @property
    def environment_id(self) -> str:
        """The environment the server runs."""

    def report_progress(self, progress: int, message: str) -> None:
        """Add a progress event for the spawn page."""

    def format_string(self, s: str) -> str:
        """Fill in ``{username}`` and JupyterHub's other fields."""

    def chosen_profile(self, user_options: dict[str, Any] | None = None) -> Profile | None:
        """The profile the user chose, if profiles are configured."""

    def server_command(self) -> list[str]:
        """The server's command line (its port among its arguments)."""

    def get_env(self) -> dict[str, str]:
        """The server's environment (its URL, with the port, among it)."""


class SpawnerBackend(LoggingConfigurable):
    """Where and how a single-user server runs.

    ``WestTekSpawner.start`` calls the hooks in order — ``prepare``, ``launch``,
    ``wait_until_running`` — and reports a progress event around each, so a backend only
    says *how*, never *when*. Backends keep whatever they need to find their server again
    after a hub restart in ``get_state``.
    """

    #: the short name of the backend, as the ``backend`` trait takes it
    name = "base"
    #: True when servers run as the hub's own OS user on the hub's machine
    runs_as_hub_user = False
    #: whether the pre-start restore is on by default: servers that start from a fresh
    #: image lose what was installed; a persistent, possibly shared environment does not
    restores_by_default = True

    @classmethod
    def default_python(cls) -> list[str]:
        """The interpreter of the server's environment (runs the pre-start restore)."""
        return ["python"]

    @classmethod
    def default_cmd(cls) -> list[str]:
        """The single-user server's command when ``Spawner.cmd`` is not configured."""
        return ["jupyterhub-singleuser"]

    def __init__(self, spawner: SpawnerHost, **kwargs: Any) -> None:
        super().__init__(parent=spawner, **kwargs)
        self.spawner = spawner

    async def prepare(self) -> None:
        """Create what the server needs before it starts (port, home directory, volumes…).

        Runs before the server's command and environment are computed, so it may set
        ``spawner.port`` and ``spawner.ip``.
        """

    async def launch(self, cmd: list[str], env: dict[str, str]) -> None:
        """Start the server process, container or task; return without waiting for it."""
        raise NotImplementedError

    async def wait_until_running(self) -> tuple[str, int]:
        """Wait until the server is running and return the (ip, port) the hub connects to."""
        raise NotImplementedError

    async def poll(self) -> int | None:
        """None while the server runs, else its exit status (0 when unknown)."""
        raise NotImplementedError

    async def poll_while_starting(self) -> int | None:
        """Like ``poll``, but fresh: used to fail a spawn whose server died while starting."""
        return await self.poll()

    async def stop(self, now: bool = False) -> None:
        """Stop the server; gracefully unless ``now``. Return once it is gone."""
        raise NotImplementedError

    def exit_message(self, status: int) -> str:
        """One line for the spawn page when the server stopped while starting."""
        return f"the notebook server stopped while starting (exit status {status})"

    def container_info(self) -> dict[str, str]:
        """Facts for the hub service's Environment record (those this backend has).

        Keys among ``task_arn``, ``cluster`` and ``efs_access_point``.
        """
        return {}

    def image_digest(self) -> str:
        """The digest of the image the server runs ('' when there is no image)."""
        return ""

    def get_state(self) -> dict[str, Any]:
        """What must survive a hub restart to find the server again."""
        return {}

    def holds_server(self) -> bool:
        """Whether the loaded state names a running server (not only lasting facts)."""
        return bool(self.get_state())

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what ``get_state`` saved."""

    def clear_state(self) -> None:
        """Forget the server after it stopped."""
