"""A stand-in for Fargate's data plane beside a moto server in this process.

moto answers the ECS API (clusters, task definitions, run/describe/stop) but runs nothing:
its tasks are RUNNING at once with a fake private IP. :class:`FakeFargate` plays the part
of the machines behind the API, on moto's in-memory models:

* each new task goes PROVISIONING → PENDING → pulling its image → RUNNING, one stage every
  ``stage_seconds``, so the spawner's progress events can be watched;
* an image listed in ``unpullable`` stops the task with ECS's ``CannotPullContainerError``;
* otherwise the task's container command runs as a local process with the task's
  environment, on a free port of 127.0.0.1, its HOME the access point's root under
  ``workdir/efs`` (what EFS would mount). Where it listens is written to
  ``workdir/addresses/<task id>.json``: :func:`address_from` reads it back as the backend's
  ``address_hook``, so the hub dials the real local server and never the task's fake IP;
* with ``docker`` (a client of a Docker daemon), the task runs as a real container
  instead: of the task definition's image (one the daemon lacks cannot be pulled), with
  the task definition's and the overrides' environment plus this process's AWS_* (the
  moto server on loopback), as the access point's POSIX user, the access point's root
  directory (created owned by its CreationInfo owner, as EFS does) bind-mounted at the
  task definition's mount point, on the host's network;
* ``stop_task`` SIGTERMs the process or container (SIGKILL after the grace period); one
  that exits by itself stops its task with its exit code. Containers are removed when
  their task stops (their output kept in ``workdir/logs``), and by ``close``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from docker import DockerClient
from docker.errors import APIError, ImageNotFound
from docker.models.containers import Container

from tests.conftest import free_port

ACCOUNT = "123456789012"
# what a stopped task's process or container is given between SIGTERM and SIGKILL
GRACE_SECONDS = 5
# the label of every container a FakeFargate starts; its value names the FakeFargate
LABEL = "westtek.fake-fargate"


def _ecs_backend(region: str) -> Any:
    from moto.ecs.models import ecs_backends

    return ecs_backends[ACCOUNT][region]


def _efs_backend(region: str) -> Any:
    from moto.efs.models import efs_backends

    return efs_backends[ACCOUNT][region]


def address_from(directory: Path | str) -> Callable[[Any, dict[str, Any]], Any]:
    """An ``EcsBackend.address_hook`` reading the addresses FakeFargate writes."""
    directory = Path(directory)

    def address(backend: Any, task: dict[str, Any]) -> tuple[str, int] | None:
        path = directory / f"{task['taskArn'].rsplit('/', 1)[-1]}.json"
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return found["ip"], found["port"]

    return address


@dataclass(frozen=True)
class Launch:
    """What one task runs, from its task definition, its overrides and its access point."""

    image: str
    command: list[str] | None  # None: the image's own CMD
    environment: dict[str, str]  # the task definition's and the overrides'
    port: int  # where the server listens on 127.0.0.1 (its JUPYTERHUB_SERVICE_URL)
    home: Path  # the access point's root directory, under workdir/efs
    mount_path: str  # where the task definition mounts it in the container
    working_dir: str
    user: str  # the access point's PosixUser, "uid:gid"
    owner: tuple[int, int]  # its CreationInfo owner uid and gid


class FakeFargate:
    """Moves the tasks of ``clusters`` through their lifecycle and runs their containers."""

    def __init__(
        self,
        workdir: Path,
        clusters: set[str],
        region: str = "us-east-1",
        stage_seconds: float = 0.3,
        unpullable: tuple[str, ...] = ("registry.invalid/no-such-image:1",),
        extra_args: tuple[str, ...] = (),
        serve_at: tuple[str, int] | None = None,
        docker: DockerClient | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.addresses = self.workdir / "addresses"
        self.addresses.mkdir(parents=True, exist_ok=True)
        self.clusters = clusters
        self.region = region
        self.stage_seconds = stage_seconds
        self.unpullable = unpullable
        self.extra_args = extra_args
        # every task's "container" is this one server instead of a process of its own
        self.serve_at = serve_at
        #: wall-clock times of each task: created (run_task) and running (the fake's wait)
        self.timeline: dict[str, dict[str, float]] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # with a Docker daemon, each task is a container of its image instead of a process
        self.docker = docker
        self.containers: dict[str, Container] = {}
        self._instance = uuid.uuid4().hex  # the value of LABEL on this one's containers
        self.logs = self.workdir / "logs"
        self._since: dict[str, float] = {}
        self._stopped: set[str] = set()
        self._running: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fake-fargate")
        self.address = address_from(self.addresses)

    def start(self) -> FakeFargate:
        # Real ECS answers run_task with a PROVISIONING task; moto's start RUNNING.
        from moto.ecs.models import Task

        original = self._original_init = Task.__init__
        clusters = self.clusters

        timeline = self.timeline

        def init(task: Any, cluster: Any, *args: Any, **kwargs: Any) -> None:
            original(task, cluster, *args, **kwargs)
            if cluster.name in clusters:
                task.status = "PROVISIONING"
                timeline[task.task_arn] = {"created": time.time()}

        Task.__init__ = init
        self._thread.start()
        return self

    def close(self) -> None:
        from moto.ecs.models import Task

        Task.__init__ = self._original_init
        self._stop.set()
        self._thread.join(10)
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        if self.docker is not None:
            for container in self.docker.containers.list(
                all=True, filters={"label": f"{LABEL}={self._instance}"}
            ):
                self._keep_log(container)
                container.remove(force=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tasks = _ecs_backend(self.region).tasks
                for cluster in self.clusters:
                    for arn, task in list(tasks.get(cluster, {}).items()):
                        self._advance(arn, task)
            except Exception as e:  # keep playing; a test sees the symptom
                print(f"fake fargate: {type(e).__name__}: {e}")
            self._stop.wait(0.03)

    def _advance(self, arn: str, task: Any) -> None:
        if arn in self._stopped:
            return
        now = time.monotonic()
        if arn not in self._since:
            self._since[arn] = now
            return
        if task.desired_status == "STOPPED":
            self._kill(arn, task)
            return
        if arn in self._running:
            code = self._exit_code(arn)
            if code is not None:
                self._finish(arn, task, code, "Essential container in task exited")
            return
        elapsed = now - self._since[arn]
        stage = int(elapsed / self.stage_seconds)
        image = task.containers[0].image
        if stage == 1 and task.status == "PROVISIONING":
            task.status = "PENDING"
        elif stage >= 2 and not getattr(task, "pull_started_at", None):
            task.pull_started_at = datetime.now(timezone.utc)
        elif stage >= 3:
            if not self._pullable(image):
                reason = (
                    f"CannotPullContainerError: pull image manifest has been retried 1 time(s): "
                    f"failed to resolve ref {image}: not found"
                )
                task.containers[0].reason = reason
                task.stop_code = "TaskFailedToStart"
                self._finish(arn, task, None, reason)
                return
            task.pull_stopped_at = datetime.now(timezone.utc)
            task.containers[0].image_digest = "sha256:" + hashlib.sha256(image.encode()).hexdigest()
            try:
                self._launch(arn, task)
            except APIError as e:  # the daemon would not create or start the container
                self._finish(arn, task, None, f"CannotStartContainerError: {e.explanation}")
                return
            self._running.add(arn)
            task.status = "RUNNING"
            self.timeline.setdefault(arn, {})["running"] = time.time()
            task.containers[0].last_status = "RUNNING"

    def _pullable(self, image: str) -> bool:
        if image in self.unpullable:
            return False
        if self.docker is None:
            return True
        try:
            self.docker.images.get(image)  # a real pull would need a registry: none here
        except ImageNotFound:
            return False
        return True

    def _describe(self, task: Any) -> Launch:
        """What ``task`` runs, a free port of 127.0.0.1 for its server and its home."""
        definition = _ecs_backend(self.region).describe_task_definition(task.task_definition_arn)
        container = definition.container_definitions[0]
        override = task.overrides["containerOverrides"][0]
        env = {e["name"]: e["value"] for e in container.get("environment", [])}
        env |= {e["name"]: e["value"] for e in override.get("environment", [])}
        port = free_port()
        url = urlparse(env["JUPYTERHUB_SERVICE_URL"])
        env["JUPYTERHUB_SERVICE_URL"] = urlunparse(url._replace(netloc=f"127.0.0.1:{port}"))
        # What EFS would mount: the access point's root directory, under workdir/efs.
        volume = definition.volumes[0]
        efs = volume["efsVolumeConfiguration"]
        point = _efs_backend(self.region).access_points[efs["authorizationConfig"]["accessPointId"]]
        root = point.root_directory
        owner = root.get("CreationInfo", {})
        mount = next(m for m in container["mountPoints"] if m["sourceVolume"] == volume["name"])
        return Launch(
            image=container["image"],
            command=override.get("command") or None,
            environment=env,
            port=port,
            home=self.workdir / "efs" / efs["fileSystemId"] / root["Path"].lstrip("/"),
            mount_path=mount["containerPath"],
            working_dir=container.get("workingDirectory") or mount["containerPath"],
            user=f"{point.posix_user['Uid']}:{point.posix_user['Gid']}",
            owner=(int(owner.get("OwnerUid", 0)), int(owner.get("OwnerGid", 0))),
        )

    def _launch(self, arn: str, task: Any) -> None:
        path = self.addresses / f"{arn.rsplit('/', 1)[-1]}.json"
        if self.serve_at is not None:
            path.write_text(json.dumps({"ip": self.serve_at[0], "port": self.serve_at[1]}))
            return
        launch = self._describe(task)
        if self.docker is None:
            launch.home.mkdir(parents=True, exist_ok=True)
            self.processes[arn] = self._start_process(launch)
        else:
            if not launch.home.exists():  # EFS creates the root on first mount, so owned
                launch.home.mkdir(parents=True)
                os.chown(launch.home, *launch.owner)
            self.containers[arn] = self._start_container(arn, launch)
        path.write_text(json.dumps({"ip": "127.0.0.1", "port": launch.port}))

    def _start_process(self, launch: Launch) -> subprocess.Popen[bytes]:
        full_env = {
            "PATH": os.environ["PATH"],
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOME": str(launch.home),
            # what a task would have from its image and task role
            **{k: v for k, v in os.environ.items() if k.startswith(("JUPYTER_", "XDG_", "AWS_"))},
            **launch.environment,
        }
        command = [*(launch.command or []), *self.extra_args]
        log = open(launch.home / "container.log", "ab")  # noqa: SIM115 (the process owns it)
        process = subprocess.Popen(
            command,
            env=full_env,
            cwd=launch.home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return process

    def _start_container(self, arn: str, launch: Launch) -> Container:
        assert self.docker is not None
        # the task role's credentials and AWS's endpoint: here, the moto server on loopback
        aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
        return self.docker.containers.run(
            launch.image,
            launch.command,
            detach=True,
            name=f"fake-fargate-{arn.rsplit('/', 1)[-1]}",
            environment={**aws, **launch.environment},
            user=launch.user,
            working_dir=launch.working_dir,
            volumes={str(launch.home): {"bind": launch.mount_path, "mode": "rw"}},
            network_mode="host",  # the task's server on 127.0.0.1, as the address file says
            labels={LABEL: self._instance},
        )

    def _exit_code(self, arn: str) -> int | None:
        """The exit code of the task's process or container once it has exited, else None."""
        if arn in self.containers:
            container = self.containers[arn]
            container.reload()
            if container.status in ("created", "running", "restarting"):
                return None
            return int(container.attrs["State"]["ExitCode"])
        process = self.processes.get(arn)
        return None if process is None else process.poll()

    def _kill(self, arn: str, task: Any) -> None:
        process = self.processes.get(arn)
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        container = self.containers.get(arn)
        if container is not None:
            container.stop(timeout=GRACE_SECONDS)  # SIGTERM, then SIGKILL
            container.wait(timeout=30)
        code = self._exit_code(arn)
        self._finish(arn, task, code, task.stopped_reason or "Task stopped by user")

    def _keep_log(self, container: Container) -> None:
        self.logs.mkdir(exist_ok=True)
        (self.logs / f"{container.name}.log").write_bytes(container.logs())

    def _finish(self, arn: str, task: Any, exit_code: int | None, reason: str) -> None:
        task.status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stopped_reason = task.stopped_reason or reason
        task.containers[0].last_status = "STOPPED"
        if exit_code is not None:
            task.containers[0].exitCode = exit_code
        self._stopped.add(arn)
        container = self.containers.get(arn)
        if container is not None:  # Fargate keeps nothing of a stopped task but its logs
            self._keep_log(container)
            container.remove(force=True)
