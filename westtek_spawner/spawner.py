"""WestTekSpawner: one JupyterHub spawner whose ``backend`` trait picks where servers run.

``start``/``poll``/``stop`` are a template; a backend overrides only its hooks (see
``SpawnerBackend``), as dockerspawner's variants do.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from jupyterhub.spawner import Spawner
from traitlets import Unicode, default, observe, validate

from westtek_spawner.backends import BACKENDS, SpawnerBackend, backend_class

ProgressEvent = dict[str, Any]


class WestTekSpawner(Spawner):
    """Spawn single-user servers through a West Tek backend (local, docker or ecs)."""

    backend = Unicode(
        "local",
        config=True,
        help=f"""Where single-user servers run: one of {", ".join(sorted(BACKENDS))}, or the
        dotted import path of a `westtek_spawner.backends.SpawnerBackend` subclass. `local`
        (the default) runs each server as a process of the hub's own user and needs no
        system accounts.""",
    )

    @validate("backend")
    def _validate_backend(self, proposal: dict[str, Any]) -> str:
        name: str = proposal["value"]
        try:
            backend_class(name)
        except (ValueError, ImportError) as e:
            raise ValueError(f"WestTekSpawner.backend: {e}") from e
        return name

    @observe("backend")
    def _backend_changed(self, change: dict[str, Any]) -> None:
        self._backend = None

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        # The hub's own interpreter: its environment has jupyterhub and westtek installed,
        # whatever PATH the hub was started with.
        return [sys.executable, "-m", "jupyterhub.singleuser"]

    _backend: SpawnerBackend | None = None
    _progress_events: list[ProgressEvent]
    _start_finished: asyncio.Event | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._progress_events = []

    @property
    def backend_impl(self) -> SpawnerBackend:
        """The backend instance, created on first use from the ``backend`` trait."""
        if self._backend is None:
            self._backend = backend_class(self.backend)(spawner=self)
        return self._backend

    def _report(self, progress: int, message: str) -> None:
        self._progress_events.append({"progress": progress, "message": message})
        self.log.info("%s: %s", self._log_name, message)

    def get_args(self) -> list[str]:
        """The server's arguments, plus --allow-root as root (Jupyter refuses root otherwise)."""
        args: list[str] = list(super().get_args())
        if os.geteuid() == 0 and "--allow-root" not in args:
            args.append("--allow-root")
        return args

    async def start(self) -> tuple[str, int]:
        """Prepare, launch and wait through the backend, reporting progress at each stage."""
        self._progress_events = []
        self._start_finished = asyncio.Event()
        backend = self.backend_impl
        try:
            self._report(10, f"Preparing the {backend.name} environment")
            await backend.prepare()
            self._report(30, "Launching the notebook server")
            await backend.launch(self.cmd + self.get_args(), self.get_env())
            self._report(60, "Waiting for the notebook server to run")
            ip, port = await backend.wait_until_running()
            self._report(90, f"Notebook server running at {ip}:{port}; waiting for it to answer")
            return ip, port
        finally:
            self._start_finished.set()

    async def progress(self) -> AsyncIterator[ProgressEvent]:
        """Yield each stage's event as ``start`` reaches it."""
        sent = 0
        while True:
            while sent < len(self._progress_events):
                yield self._progress_events[sent]
                sent += 1
            if self._start_finished is None or self._start_finished.is_set():
                break
            await asyncio.sleep(0.2)

    async def poll(self) -> int | None:
        """None while the backend's server runs, else its exit status."""
        return await self.backend_impl.poll()

    async def stop(self, now: bool = False) -> None:
        """Stop the backend's server."""
        await self.backend_impl.stop(now=now)

    def get_state(self) -> dict[str, Any]:
        """Save the backend's name and its state so a restarted hub finds running servers."""
        state: dict[str, Any] = super().get_state()
        backend_state = self.backend_impl.get_state()
        if backend_state:
            state["westtek"] = {"backend": self.backend, **backend_state}
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore the backend state saved by ``get_state``."""
        super().load_state(state)
        saved = state.get("westtek")
        if not saved:
            return
        if saved.get("backend") != self.backend:
            self.log.warning(
                "%s was started by the %r backend, now %r: forgetting it",
                self._log_name,
                saved.get("backend"),
                self.backend,
            )
            return
        self.backend_impl.load_state(saved)

    def clear_state(self) -> None:
        """Forget the backend's server."""
        super().clear_state()
        self.backend_impl.clear_state()
