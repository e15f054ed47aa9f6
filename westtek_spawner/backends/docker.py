"""Docker backend: each single-user server is a container, run by dockerspawner.

Containers are dockerspawner's job, and it does it well (images, pulls, networks, volumes,
TLS to the daemon, re-attaching after a restart): this backend delegates to a
:class:`WestTekDockerSpawner`, a ``DockerSpawner`` that takes its environment and command
from the ``WestTekSpawner`` driving it. Configure Docker as for dockerspawner
(``c.DockerSpawner.image``, ``network_name``, ``volumes``…); on top of that each researcher
gets a named volume as their home (``westtek-home-{username}`` at ``/home/jovyan``), the
West Tek environment (WESTTEK_LAB_ID, WESTTEK_ENVIRONMENT_ID, WESTTEK_STORE), their lab's
store when it is a directory on the Docker host (mounted at the same path, that lab's
only) and, since a new container starts from the image, the pre-start restore of their
latest snapshot. The image is images/notebook (``make images``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from dockerspawner import DockerSpawner
from jupyterhub.utils import random_port
from traitlets import Integer, Unicode, default

from westtek_core.store.location import local_directory
from westtek_spawner.backends.base import SpawnerBackend


class WestTekDockerSpawner(DockerSpawner):
    """dockerspawner's container handling, with WestTekSpawner's environment and command."""

    westtek_env: dict[str, str] = {}
    westtek_cmd: list[str] = []

    @default("remove")
    def _default_remove(self) -> bool:
        # A fresh container each spawn: the researcher's home is on their volume and their
        # environment comes back from the latest snapshot, not from a stopped container.
        return True

    def get_env(self) -> dict[str, str]:
        """WestTekSpawner's environment, plus the image (as dockerspawner sets it)."""
        return {**self.westtek_env, "JUPYTER_IMAGE_SPEC": self.image}

    async def get_command(self) -> list[str]:
        """WestTekSpawner's command (the pre-start restore, then the server)."""
        return list(self.westtek_cmd)

    async def get_ip_and_port(self) -> tuple[str, int]:
        """On the host's network the server listens on the host itself, on its own port."""
        if self.network_name == "host":
            return (self.host_ip, self.port)
        ip, port = await super().get_ip_and_port()
        return str(ip), int(port)


class DockerBackend(SpawnerBackend):
    """Run single-user servers as Docker containers through dockerspawner."""

    name = "docker"

    home_volume = Unicode(
        "westtek-home-{username}",
        config=True,
        help="""The named volume of each researcher's home (`{username}` and the other
        dockerspawner template fields are filled in); created by Docker on first use and
        kept across servers. Empty: no home volume (configure DockerSpawner.volumes).""",
    )
    home_mount_path = Unicode(
        "/home/jovyan",
        config=True,
        help="Where the home volume is mounted in the container (the image's HOME).",
    )

    store_owner = Unicode(
        "1000:100",
        config=True,
        help="""`uid:gid` the image's user runs as (the notebook image's jovyan): a lab store
        on the Docker host is made theirs before it is mounted, so the server can write
        snapshots into it. Empty: leave its ownership alone.""",
    )

    stop_grace_seconds = Integer(
        30,
        min=1,
        config=True,
        help="""Seconds between SIGTERM and SIGKILL when a container stops (its
        StopTimeout): the server takes its before-stop automatic snapshot in them.""",
    )

    _delegate: WestTekDockerSpawner | None = None

    @property
    def delegate(self) -> WestTekDockerSpawner:
        """The DockerSpawner that does the container work (configured as DockerSpawner)."""
        if self._delegate is None:
            outer = self.spawner
            self._delegate = WestTekDockerSpawner(
                parent=outer,
                config=outer.config,
                user=outer.user,
                hub=outer.hub,
                orm_spawner=getattr(outer, "orm_spawner", None),
                api_token=outer.api_token,
                oauth_client_id=outer.oauth_client_id,
                user_options={},
            )
        return self._delegate

    def apply_profile(self) -> None:
        """A profile's image, CPUs and memory become the container's."""
        profile = self.spawner.chosen_profile()
        if profile is None:
            return
        delegate = self.delegate
        if profile.image:
            delegate.image = profile.image
        delegate.cpu_limit = float(profile.cpu)
        delegate.mem_limit = f"{int(profile.memory_gib * 1024)}M"

    async def prepare(self) -> None:
        """Profile, home volume, and the address the server binds inside its container."""
        delegate = self.delegate
        self.apply_profile()
        if self.home_volume:
            delegate.volumes = {**delegate.volumes, self.home_volume: self.home_mount_path}
            # start in the home volume, as the ECS task does
            delegate.extra_create_kwargs = {
                "working_dir": self.home_mount_path,
                **delegate.extra_create_kwargs,
            }
        # docker stop's grace (SIGTERM to SIGKILL): room for the server's before-stop
        # automatic snapshot (WestTekExtension.stop_snapshot_seconds)
        delegate.extra_create_kwargs = {
            "stop_timeout": int(self.stop_grace_seconds),
            **delegate.extra_create_kwargs,
        }
        if delegate.network_name == "host":
            # one network for every container: each server needs a port of its own, and
            # there is nothing to publish (Docker refuses port bindings on the host network)
            delegate.port = random_port()
            delegate.use_internal_ip = True
        self.spawner.port = delegate.port
        self.spawner.ip = delegate.ip

    async def launch(self, cmd: list[str], env: dict[str, str]) -> None:
        """Create and start the container (dockerspawner pulls the image if needed)."""
        delegate = self.delegate
        store = local_directory(env.get("WESTTEK_STORE", "")) if env.get("WESTTEK_STORE") else None
        if store is not None:
            self._give_store_to_container(Path(store))
            delegate.volumes = {**delegate.volumes, store: {"bind": store, "mode": "rw"}}
        delegate.api_token = self.spawner.api_token
        delegate.westtek_env = env
        delegate.westtek_cmd = cmd
        self.spawner.report_progress(35, f"Starting a container from {delegate.image}")
        self._address = await delegate.start()
        container = await delegate.get_object()
        self._image_id = str((container or {}).get("Image", ""))

    _address: tuple[str, int] | None = None
    _image_id = ""

    def _give_store_to_container(self, store: Path) -> None:
        """Create the lab's store and make every entry in it the container user's.

        Docker would create a missing bind source as root, and the hub service writes into
        a lab's store too (shared snapshots): without this the server could not snapshot.
        """
        store.mkdir(parents=True, exist_ok=True)
        if not self.store_owner:
            return
        uid, _, gid = self.store_owner.partition(":")
        owner = (int(uid), int(gid or uid))
        try:
            for path in [store, *store.rglob("*")]:
                info = path.lstat()
                if (info.st_uid, info.st_gid) != owner:
                    os.lchown(path, *owner)
        except PermissionError as error:
            self.log.warning(
                "Cannot give lab store %s to the container's user %s (%s): its server may "
                "fail to write snapshots; run the hub as root or chown the store",
                store,
                self.store_owner,
                error,
            )

    def image_digest(self) -> str:
        """The id (sha256 digest) of the image the container runs."""
        return self._image_id

    async def wait_until_running(self) -> tuple[str, int]:
        """Docker has started the container by now: its address."""
        assert self._address is not None, "launch() first"
        return self._address

    async def poll(self) -> int | None:
        """Poll through dockerspawner: None while the container runs, else its exit status."""
        if not self.delegate.object_id:
            return 0  # stopped (and forgotten), or never started
        status = await self.delegate.poll()
        if status is None or isinstance(status, int):
            return status
        # "ExitCode=137, Error='', FinishedAt=…": the container's own exit code
        found = re.search(r"ExitCode=(-?\d+)", str(status))
        return int(found.group(1)) if found else 1

    async def stop(self, now: bool = False) -> None:
        """Stop (and, by default, remove) the container; its home volume stays."""
        if self.delegate.object_id or self.delegate.object_name:
            await self.delegate.stop(now=now)

    def container_info(self) -> dict[str, str]:
        """Nothing ECS-shaped: a container has no task, cluster or access point."""
        return {}

    def get_state(self) -> dict[str, Any]:
        """The state dockerspawner keeps: the container's id and name find it after a restart."""
        state: dict[str, Any] = self.delegate.get_state()
        return state if state.get("object_id") else {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Give the container's id and name back to dockerspawner."""
        self.delegate.load_state(state)

    def clear_state(self) -> None:
        """Forget the container."""
        if self._delegate is not None:
            self._delegate.clear_state()
            self._delegate.object_id = ""
