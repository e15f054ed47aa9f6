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
* ``stop_task`` SIGTERMs the process (SIGKILL after the grace period); a process that
  exits by itself stops its task with its exit code.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from tests.conftest import free_port

ACCOUNT = "123456789012"


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
            process = self.processes.get(arn)
            if process is not None and process.poll() is not None:
                self._finish(arn, task, process.returncode, "Essential container in task exited")
            return
        elapsed = now - self._since[arn]
        stage = int(elapsed / self.stage_seconds)
        image = task.containers[0].image
        if stage == 1 and task.status == "PROVISIONING":
            task.status = "PENDING"
        elif stage >= 2 and not getattr(task, "pull_started_at", None):
            task.pull_started_at = datetime.now(timezone.utc)
        elif stage >= 3:
            if image in self.unpullable:
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
            self._launch(arn, task)
            self._running.add(arn)
            task.status = "RUNNING"
            self.timeline.setdefault(arn, {})["running"] = time.time()
            task.containers[0].last_status = "RUNNING"

    def _home(self, task: Any) -> Path:
        """What EFS would mount: the access point's root directory, under workdir/efs."""
        definition = _ecs_backend(self.region).describe_task_definition(task.task_definition_arn)
        volume = definition.volumes[0]["efsVolumeConfiguration"]
        point_id = volume["authorizationConfig"]["accessPointId"]
        point = _efs_backend(self.region).access_points[point_id]
        root = point.root_directory["Path"].lstrip("/")
        home = self.workdir / "efs" / volume["fileSystemId"] / root
        home.mkdir(parents=True, exist_ok=True)
        return home

    def _launch(self, arn: str, task: Any) -> None:
        path = self.addresses / f"{arn.rsplit('/', 1)[-1]}.json"
        if self.serve_at is not None:
            path.write_text(json.dumps({"ip": self.serve_at[0], "port": self.serve_at[1]}))
            return
        override = task.overrides["containerOverrides"][0]
        env = {e["name"]: e["value"] for e in override.get("environment", [])}
        port = free_port()
        url = urlparse(env["JUPYTERHUB_SERVICE_URL"])
        env["JUPYTERHUB_SERVICE_URL"] = urlunparse(url._replace(netloc=f"127.0.0.1:{port}"))
        home = self._home(task)
        full_env = {
            "PATH": os.environ["PATH"],
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOME": str(home),
            # what a task would have from its image and task role
            **{k: v for k, v in os.environ.items() if k.startswith(("JUPYTER_", "XDG_", "AWS_"))},
            **env,
        }
        command = [*override["command"], *self.extra_args]
        log = open(home / "container.log", "ab")  # noqa: SIM115 (the process owns it)
        self.processes[arn] = subprocess.Popen(
            command,
            env=full_env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        path.write_text(json.dumps({"ip": "127.0.0.1", "port": port}))

    def _kill(self, arn: str, task: Any) -> None:
        process = self.processes.get(arn)
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        code = process.returncode if process is not None else None
        self._finish(arn, task, code, task.stopped_reason or "Task stopped by user")

    def _finish(self, arn: str, task: Any, exit_code: int | None, reason: str) -> None:
        task.status = "STOPPED"
        task.desired_status = "STOPPED"
        task.stopped_reason = task.stopped_reason or reason
        task.containers[0].last_status = "STOPPED"
        if exit_code is not None:
            task.containers[0].exitCode = exit_code
        self._stopped.add(arn)
