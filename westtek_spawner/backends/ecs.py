"""ECS backend: each single-user server is an AWS Fargate task with the researcher's EFS home.

A spawn, as the hooks run it:

1. ``prepare`` — the researcher's EFS access point (POSIX uid/gid, root
   ``/home/{researcher}``), created on first spawn and reused; then the task definition of
   their profile: ECS takes EFS volumes only in task definitions, so each researcher and
   profile has a revision of the notebook family (``westtek-notebook``, the one the hub may
   run), registered only when its inputs change (a fingerprint tag says which inputs it
   has; the server's state keeps it across stops and hub restarts);
2. ``launch`` — ``run_task`` on FARGATE in the configured subnets and security groups, the
   spawn's environment (JUPYTERHUB_*, WESTTEK_*) as container overrides, tagged
   lab_id / researcher_id / environment_id;
3. ``wait_until_running`` — follows the task through provisioning, pending, pulling the
   image and running, one progress event each, until it has a private IP; a task that
   stops on the way fails the spawn at once with ECS's own reason
   (``CannotPullContainerError: …``) instead of waiting out the timeout.

Status comes from a :class:`~westtek_spawner.backends.ecs_watch.TaskWatcher` shared by all
servers of the cluster, so polls are batched (one DescribeTasks per 100 servers). Every
AWS call goes through :func:`westtek_spawner.aws.aws_call`. The address the hub dials comes
from ``address_hook`` when one is configured (tests resolve a task to a real server on
127.0.0.1; a task's fake address in moto is never dialled). The settings (traits) are in
:mod:`~westtek_spawner.backends.ecs_settings`.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import weakref
from typing import Any, ClassVar

from westtek_spawner.aws import aws_call, aws_client, error_code, warm_clients
from westtek_spawner.backends.ecs_objects import (
    exit_status,
    image_digest,
    inputs_fingerprint,
    make_access_point_kwargs,
    make_run_task_kwargs,
    make_task_definition,
    stopped_reason,
    task_id,
    task_private_ip,
    task_stage,
)
from westtek_spawner.backends.ecs_settings import EcsSettings
from westtek_spawner.backends.ecs_watch import TaskWatcher, task_watcher
from westtek_spawner.errors import SpawnError
from westtek_spawner.profiles import Profile, fargate_size

_MISSING_TASK_CODES = {"InvalidParameterException", "ClientException"}
# One access-point listing at a time per file system (and one network check), per loop.
_listing_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]]
_listing_locks = weakref.WeakKeyDictionary()
_NOT_ALLOWED_CODES = {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"}


def posix_id(name: str) -> int:
    """A stable POSIX id for a user name, from 100000 up (clear of system and local ids).

    Derived from a hash, so every hub computes the same one without a registry; with 500
    researchers the chance that two share an id is about one in 30000.
    """
    digest = hashlib.sha256(name.encode()).digest()
    return 100_000 + int.from_bytes(digest[:8], "big") % 2_000_000_000


class EcsBackend(EcsSettings):
    """Run single-user servers as AWS ECS Fargate tasks, each with the researcher's EFS home."""

    name = "ecs"

    # Process-wide caches: a researcher's access point; the task-definition revision of each
    # researcher and profile with the fingerprint of its inputs; the image of the template.
    _access_points: ClassVar[dict[tuple[str, str], str]] = {}
    _task_definitions: ClassVar[dict[tuple[str, str], tuple[str, str]]] = {}
    _checked_networks: ClassVar[set[tuple[Any, ...]]] = set()
    _template_images: ClassVar[dict[str, str]] = {}
    _listed_at: ClassVar[dict[str, float]] = {}

    # The server's identity, persisted by get_state.
    task_arn = ""
    task_cluster = ""
    task_definition_arn = ""
    access_point_id = ""
    _task: dict[str, Any] | None = None
    _watcher: TaskWatcher | None = None

    # -- AWS --------------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        """The process's boto3 client for ``service`` with this backend's settings."""
        return aws_client(service, self.region, self.endpoint_url, self.aws_max_attempts)

    @property
    def watcher(self) -> TaskWatcher:
        """The batched status of the cluster's tasks (one per event loop)."""
        self._watcher = task_watcher(self.client("ecs"), self.task_cluster or self.cluster)
        return self._watcher

    def _report(self, progress: int, message: str) -> None:
        self.spawner.report_progress(progress, message)

    @property
    def researcher_id(self) -> str:
        """Whose home and task definition: the JupyterHub user name."""
        return str(self.spawner.user.name)

    def _posix_id(self, value: Any, fallback: int) -> int:
        if value is None:
            return fallback
        return int(value(self.spawner) if callable(value) else value)

    @property
    def uid(self) -> int:
        """The researcher's POSIX uid on EFS."""
        return self._posix_id(self.efs_uid, posix_id(self.researcher_id))

    @property
    def gid(self) -> int:
        """The researcher's POSIX gid on EFS."""
        return self._posix_id(self.efs_gid, self.uid)

    @property
    def lab_task_role_arn(self) -> str:
        """The task role of the researcher's lab (else the default one)."""
        return str(self.task_role_arns.get(self.spawner.lab_id, self.task_role_arn))

    # -- the hooks --------------------------------------------------------------------------

    def _check_config(self) -> None:
        problems = []
        if not self.cluster:
            problems.append("EcsBackend.cluster is not set (the ECS cluster of the notebooks)")
        if not self.subnets:
            problems.append("EcsBackend.subnets is empty (the private subnets of the tasks)")
        if not self.security_groups:
            problems.append("EcsBackend.security_groups is empty (who may reach the tasks)")
        if not self.file_system_id:
            problems.append("EcsBackend.file_system_id is not set (the EFS of the homes)")
        if self.require_lab and not self.spawner.lab_id:
            raise SpawnError(
                f"{self.researcher_id} is in no lab: a hub admin must add them to their "
                "lab's group before they can start a server"
            )
        if self.task_role_arns and not self.lab_task_role_arn:
            raise SpawnError(
                f"Lab {self.spawner.lab_id or '(none)'} has no task role "
                "(EcsBackend.task_role_arns): its servers could not reach its snapshots"
            )
        if self.log_group and not self.execution_role_arn:
            problems.append(
                "EcsBackend.execution_role_arn is not set: Fargate needs the task execution "
                "role to write to the log group (and to pull from ECR)"
            )
        if problems:
            raise SpawnError("The hub's ECS settings are incomplete: " + "; ".join(problems))

    async def check_network(self) -> None:
        """Check once per hub process that the subnets and security groups exist.

        A typo there would otherwise surface as an opaque RunTask error on every spawn.
        Concurrent first spawns share one check.
        """
        key = (self.region, self.endpoint_url, tuple(self.subnets), tuple(self.security_groups))
        if key in self._checked_networks:
            return
        loop = asyncio.get_running_loop()
        lock = _listing_locks.setdefault(loop, {}).setdefault("network-check", asyncio.Lock())
        async with lock:
            if key not in self._checked_networks:
                await self._check_network(key)

    async def _check_network(self, key: tuple[Any, ...]) -> None:
        ec2 = self.client("ec2")
        for what, operation, ids in (
            ("subnets", "describe_subnets", {"SubnetIds": list(self.subnets)}),
            ("security_groups", "describe_security_groups", {"GroupIds": self.security_groups}),
        ):
            try:
                await aws_call(ec2, operation, **ids)
            except SpawnError as e:
                if error_code(e) in _NOT_ALLOWED_CODES:
                    # The hub's role may not read EC2: RunTask's own error will have to do.
                    self.log.info("Not checking EcsBackend.%s: %s", what, e)
                    continue
                raise SpawnError(f"EcsBackend.{what} {list(ids.values())[0]}: {e}") from e
        self._checked_networks.add(key)

    async def prepare(self) -> None:
        """Check the settings, find or create the access point, register the task definition."""
        self._check_config()
        await warm_clients(
            ("ecs", "efs", "ec2"), self.region, self.endpoint_url, self.aws_max_attempts
        )
        await self.check_network()
        self.spawner.port = self.port
        self.spawner.ip = "0.0.0.0"
        profile = self.spawner.chosen_profile()
        self._report(15, "Finding your home directory (EFS access point)")
        self.access_point_id = await self.ensure_access_point()
        self._report(20, f"Home directory ready (access point {self.access_point_id})")
        self.task_definition_arn = await self.ensure_task_definition(profile)
        revision = self.task_definition_arn.rsplit("/", 1)[-1]
        self._report(25, f"Task definition {revision} ready")

    async def ensure_access_point(self) -> str:
        """The researcher's access point: cached, else found by its tag, else created."""
        researcher = self.researcher_id
        key = (self.file_system_id, researcher)
        cached = self._access_points.get(key)
        if cached:
            return cached
        root = self.home_path_template.format(username=researcher)
        efs = self.client("efs")
        await self._list_access_points(efs)
        if key in self._access_points:
            return self._access_points[key]
        lab = self.spawner.lab_id
        kwargs = make_access_point_kwargs(
            file_system_id=self.file_system_id,
            researcher=researcher,
            root_path=root,
            uid=self.uid,
            gid=self.gid,
            permissions=self.home_permissions,
            tags={"lab_id": lab, **self.extra_tags},
        )
        created = await aws_call(efs, "create_access_point", **kwargs)
        point_id = str(created["AccessPointId"])
        self.log.info("Created EFS access point %s for %s at %s", point_id, researcher, root)
        self._report(18, f"Created your home directory {root} (access point {point_id})")
        state = created.get("LifeCycleState", "available")
        for _ in range(60):
            if state == "available":
                break
            await asyncio.sleep(0.5)
            answer = await aws_call(efs, "describe_access_points", AccessPointId=point_id)
            state = answer["AccessPoints"][0].get("LifeCycleState", "available")
        else:
            raise SpawnError(f"EFS access point {point_id} is still {state} after 30 s")
        self._access_points[key] = point_id
        return point_id

    async def _list_access_points(self, efs: Any) -> None:
        """Learn every researcher's access point on the file system, one listing at a time.

        A wave of first spawns would otherwise list the file system once per researcher:
        spawns that miss the cache share one listing, and a listing younger than
        ``access_point_listing_ttl`` counts as current (a researcher not in it is new).
        """
        loop = asyncio.get_running_loop()
        lock = _listing_locks.setdefault(loop, {}).setdefault(self.file_system_id, asyncio.Lock())
        async with lock:
            listed = self._listed_at.get(self.file_system_id)
            if listed is not None and loop.time() - listed < self.access_point_listing_ttl:
                return
            kwargs: dict[str, Any] = {"FileSystemId": self.file_system_id}
            while True:
                page = await aws_call(efs, "describe_access_points", **kwargs)
                for point in page.get("AccessPoints", []):
                    tags = {t["Key"]: t["Value"] for t in point.get("Tags", [])}
                    owner = tags.get("researcher_id")
                    root = point.get("RootDirectory", {}).get("Path")
                    if owner and root == self.home_path_template.format(username=owner):
                        self._access_points[(self.file_system_id, owner)] = point["AccessPointId"]
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
            self._listed_at[self.file_system_id] = loop.time()

    async def notebook_image(self, profile: Profile | None) -> str:
        """The profile's image, else ``image``, else the template task definition's."""
        image = (profile.image if profile else None) or self.image
        if image:
            return image
        template = self.template_task_definition
        if not template:
            raise SpawnError(
                "EcsBackend.image is not set, nor EcsBackend.template_task_definition to take "
                "it from, and the profile names no image"
            )
        if template not in self._template_images:
            answer = await aws_call(
                self.client("ecs"), "describe_task_definition", taskDefinition=template
            )
            containers = answer["taskDefinition"]["containerDefinitions"]
            chosen = next((c for c in containers if c["name"] == self.container_name), None)
            if chosen is None:
                raise SpawnError(f"{template} has no container named {self.container_name!r}")
            self._template_images[template] = str(chosen["image"])
        return self._template_images[template]

    def task_definition_kwargs(self, profile: Profile | None, image: str) -> dict[str, Any]:
        """The ``register_task_definition`` kwargs of this researcher's profile (pure)."""
        cpu = profile.cpu if profile else self.cpu
        memory = profile.memory_gib if profile else self.memory_gib
        cpu_units, memory_mib = fargate_size(cpu, memory)
        return make_task_definition(
            family=self.task_definition_family,
            image=image,
            cpu=cpu_units,
            memory=memory_mib,
            container_name=self.container_name,
            port=self.port,
            file_system_id=self.file_system_id,
            access_point_id=self.access_point_id,
            home_mount_path=self.home_mount_path,
            stop_timeout=self.stop_grace_seconds,
            execution_role_arn=self.execution_role_arn,
            task_role_arn=self.lab_task_role_arn,
            ephemeral_storage_gib=profile.ephemeral_storage_gib if profile else None,
            log_group=self.log_group,
            log_region=self.region or self.client("ecs").meta.region_name,
            log_stream_prefix=self.log_stream_prefix,
            cpu_architecture=self.cpu_architecture,
            tags={
                "lab_id": self.spawner.lab_id,
                "researcher_id": self.researcher_id,
                "profile": profile.slug if profile else "",
                **self.extra_tags,
            },
        )

    async def ensure_task_definition(self, profile: Profile | None) -> str:
        """The task-definition revision of this researcher's profile.

        The one registered with the same inputs (kept in this process and in the server's
        state), else a newly registered one.
        """
        kwargs = self.task_definition_kwargs(profile, await self.notebook_image(profile))
        key = (self.researcher_id, profile.slug if profile else "")
        wanted = inputs_fingerprint(kwargs)
        cached = self._task_definitions.get(key)
        if cached and cached[0] == wanted:
            return cached[1]
        self._report(22, f"Registering a task definition for {key[0]} ({key[1] or 'default'})")
        registered = await aws_call(self.client("ecs"), "register_task_definition", **kwargs)
        arn = str(registered["taskDefinition"]["taskDefinitionArn"])
        self.log.info("Registered task definition %s for %s", arn, key)
        self._task_definitions[key] = (wanted, arn)
        return arn

    async def launch(self, cmd: list[str], env: dict[str, str]) -> None:
        """Run the task; ECS's refusal (capacity, a missing subnet) fails the spawn at once."""
        spawner = self.spawner
        kwargs = make_run_task_kwargs(
            cluster=self.cluster,
            task_definition_arn=self.task_definition_arn,
            container_name=self.container_name,
            subnets=self.subnets,
            security_groups=self.security_groups,
            assign_public_ip=self.assign_public_ip,
            platform_version=self.platform_version,
            environment=env,
            command=cmd,
            tags={
                "lab_id": spawner.lab_id,
                "researcher_id": self.researcher_id,
                "environment_id": spawner.environment_id,
                "profile": spawner.profile_slug,
                **self.extra_tags,
            },
        )
        answer = await aws_call(self.client("ecs"), "run_task", **kwargs)
        if answer.get("failures") or not answer.get("tasks"):
            reasons = "; ".join(
                f"{f.get('reason', '?')} {f.get('detail', '') or f.get('arn', '')}".strip()
                for f in answer.get("failures", [])
            )
            raise SpawnError(f"ECS did not start the task: {reasons or 'no task returned'}")
        task = answer["tasks"][0]
        self.task_arn = str(task["taskArn"])
        self.task_cluster = self.cluster
        self._task = task
        self.watcher.remember(task)
        self.log.info("Started task %s for %s", self.task_arn, spawner._log_name)
        self._report(35, f"Task {task_id(self.task_arn)} requested")

    async def wait_until_running(self) -> tuple[str, int]:
        """Follow the task's stages until it runs and has an address; fail on STOPPED."""
        while True:
            task = await self.watcher.describe(self.task_arn, self.start_poll_interval)
            if task is None:
                raise SpawnError(f"ECS no longer knows the task {self.task_arn}")
            self._task = task
            stage = task_stage(task)
            if stage.key == "stopped":
                raise SpawnError(
                    f"Your server's task stopped before it could run: {stopped_reason(task)}"
                )
            self._report(stage.progress, stage.message)
            if stage.key == "running":
                address = await self.resolve_address(task)
                if address is not None:
                    return address
            await asyncio.sleep(self.start_poll_interval)

    async def resolve_address(self, task: dict[str, Any]) -> tuple[str, int] | None:
        """Where the hub reaches a running task: the ``address_hook``'s answer, else its ENI."""
        if self.address_hook is not None:
            answer = self.address_hook(self, task)
            if inspect.isawaitable(answer):
                answer = await answer
            return None if answer is None else (str(answer[0]), int(answer[1]))
        ip = task_private_ip(task)
        return (ip, self.port) if ip else None

    async def poll(self) -> int | None:
        """From the shared, batched status: None while the task runs, else its exit code."""
        return await self._poll(self.poll_cache_seconds, sweep=True)

    async def poll_while_starting(self) -> int | None:
        """As ``poll``, with answers at most ``start_poll_interval`` old."""
        return await self._poll(self.start_poll_interval)

    async def _poll(self, max_age: float, sweep: bool = False) -> int | None:
        if not self.task_arn:
            return 0
        try:
            task = await self.watcher.describe(self.task_arn, max_age, sweep=sweep)
        except SpawnError as e:
            # AWS in trouble is not a dead server: keep it, say so, ask again next poll.
            self.log.warning("Could not check %s's task: %s", self.spawner._log_name, e)
            return None
        if task is None:
            return 0
        self._task = task
        if task_stage(task).key == "stopped":
            return exit_status(task)
        return None

    def exit_message(self, status: int) -> str:
        """ECS's reason the task stopped."""
        if self._task is not None:
            return f"Your server's task stopped: {stopped_reason(self._task)}"
        return super().exit_message(status)

    async def stop(self, now: bool = False) -> None:
        """Stop the task (SIGTERM, SIGKILL after the grace period); wait unless ``now``."""
        if not self.task_arn:
            return
        try:
            await aws_call(
                self.client("ecs"),
                "stop_task",
                cluster=self.task_cluster or self.cluster,
                task=self.task_arn,
                reason="Stopped by JupyterHub",
            )
        except SpawnError as e:
            if error_code(e) not in _MISSING_TASK_CODES:
                raise
            self.log.info("Task %s was already gone: %s", self.task_arn, e)
        else:
            if not now:
                await self._wait_stopped()
        self.clear_state()

    async def _wait_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_grace_seconds + self.stop_wait_margin
        while loop.time() < deadline:
            task = await self.watcher.describe(self.task_arn, self.start_poll_interval)
            if task is None or task.get("lastStatus") == "STOPPED":
                return
            await asyncio.sleep(self.start_poll_interval)
        self.log.warning("Task %s had not stopped after the grace period", self.task_arn)

    def container_info(self) -> dict[str, str]:
        """Task ARN, cluster and access point, for the hub service's Environment record."""
        return {
            "task_arn": self.task_arn,
            "cluster": self.task_cluster or self.cluster,
            "efs_access_point": self.access_point_id,
        }

    def image_digest(self) -> str:
        """The image digest ECS reports for the notebook container."""
        return image_digest(self._task, self.container_name) if self._task else ""

    def get_state(self) -> dict[str, Any]:
        """What finds the task again after a hub restart, and what outlives the task.

        While a server runs: its task ARN and cluster (to re-attach to it) and its task
        definition. Always, even after it stopped: the researcher's access point and the
        task-definition revision of each profile with its inputs' fingerprint, so a
        restarted hub neither looks them up nor registers them again.
        """
        state: dict[str, Any] = {}
        if self.task_arn:
            state.update(
                task_arn=self.task_arn,
                cluster=self.task_cluster or self.cluster,
                task_definition_arn=self.task_definition_arn,
            )
        if self.access_point_id:
            state.update(access_point_id=self.access_point_id, file_system_id=self.file_system_id)
        revisions = {
            profile: list(known)
            for (researcher, profile), known in self._task_definitions.items()
            if researcher == self.researcher_id
        }
        if revisions:
            state["task_definitions"] = revisions
        return state

    def holds_server(self) -> bool:
        """Whether the state names a running task (the rest outlives it)."""
        return bool(self.task_arn)

    def load_state(self, state: dict[str, Any]) -> None:
        """Re-attach to the task saved before a hub restart; seed the caches."""
        self.task_arn = str(state.get("task_arn", ""))
        self.task_cluster = str(state.get("cluster", ""))
        self.task_definition_arn = str(state.get("task_definition_arn", ""))
        self.access_point_id = str(state.get("access_point_id", ""))
        researcher = self.researcher_id
        if self.access_point_id and state.get("file_system_id") == self.file_system_id:
            self._access_points.setdefault((self.file_system_id, researcher), self.access_point_id)
        for profile, (fingerprint, arn) in (state.get("task_definitions") or {}).items():
            self._task_definitions.setdefault((researcher, profile), (str(fingerprint), str(arn)))

    def clear_state(self) -> None:
        """Forget the stopped task."""
        if self._watcher is not None and self.task_arn:
            self._watcher.unwatch(self.task_arn)
        self.task_arn = ""
        self.task_cluster = ""
        self.task_definition_arn = ""
        self._task = None
