"""The ECS backend's settings: where tasks run, what they run, the researcher's EFS home, timing."""

from __future__ import annotations

from traitlets import Bool, Callable, Dict, Float, Integer, List, Unicode, Union, default

from westtek_spawner.backends.base import SpawnerBackend


class EcsSettings(SpawnerBackend):
    """The traits of :class:`~westtek_spawner.backends.ecs.EcsBackend` (``c.EcsBackend.*``)."""

    # -- where ----------------------------------------------------------------------------

    cluster = Unicode(
        "", config=True, help="The ECS cluster (name or ARN) the notebook tasks run in."
    )
    region = Unicode(
        "", config=True, help="AWS region. Empty: boto3's (AWS_REGION, AWS_DEFAULT_REGION, config)."
    )
    endpoint_url = Unicode(
        "",
        config=True,
        help="Endpoint for every AWS call (a VPC endpoint, or a test server). Empty: AWS's.",
    )
    aws_max_attempts = Integer(
        8,
        config=True,
        help="""Tries per AWS call. Throttled and transient errors are retried with
        exponential backoff and jitter (botocore's standard retry mode) up to this many
        times before the spawn fails with AWS's message.""",
    )
    subnets = List(
        Unicode(), config=True, help="Subnets of the tasks' network interfaces (private ones)."
    )
    security_groups = List(
        Unicode(),
        config=True,
        help="Security groups of the tasks: they must let the hub and proxy reach `port`.",
    )
    assign_public_ip = Bool(
        False, config=True, help="Give each task a public IP (only for subnets without NAT)."
    )
    platform_version = Unicode("LATEST", config=True, help="Fargate platform version.")

    # -- what -----------------------------------------------------------------------------

    task_definition_family = Unicode(
        "westtek-notebook",
        config=True,
        help="""The task-definition family this backend registers revisions in, one per
        researcher and profile (the CDK stack lets the hub run only this family).""",
    )
    template_task_definition = Unicode(
        "",
        config=True,
        help="""A task definition (ARN or family:revision) to take the image from when
        `image` is empty: the CDK stack's template revision of the notebook family.""",
    )
    container_name = Unicode("notebook", config=True, help="The notebook container's name.")
    image = Unicode(
        "",
        config=True,
        help="The single-user image (with westtek installed); a profile's `image` replaces it.",
    )
    cpu = Float(1.0, config=True, help="vCPUs of a task when no profile is configured.")
    memory_gib = Float(
        4.0, config=True, help="Memory (GiB) of a task when no profile is configured."
    )
    port = Integer(8888, config=True, help="The port the server listens on inside the task.")
    execution_role_arn = Unicode(
        "",
        config=True,
        help="""The task execution role: lets Fargate pull the image from ECR and write
        the awslogs log stream. Required when `log_group` is set.""",
    )
    task_role_arn = Unicode(
        "",
        config=True,
        help="""The role servers run as (S3 snapshot store, Bedrock) when their lab has none
        in `task_role_arns`.""",
    )
    task_role_arns = Dict(
        Unicode(),
        config=True,
        help="""The task role of each lab's servers, by lab id: each reaches only its own
        lab's snapshots (the CDK stack's WESTTEK_NOTEBOOK_TASK_ROLE_ARNS). A lab with none
        falls back to `task_role_arn`; with neither, its researchers cannot spawn.""",
    )
    require_lab = Bool(
        False,
        config=True,
        help="""Refuse a spawn by a user in no lab (no group the spawner's `lab_groups` or
        `lab_group_prefix` makes a lab): their server would have no lab role, no lab store, and the
        access point could not be tagged with a lab.""",
    )
    log_group = Unicode(
        "", config=True, help="CloudWatch Logs group for the containers' output (awslogs)."
    )
    log_stream_prefix = Unicode(
        "notebook", config=True, help="Prefix of the containers' log streams (awslogs)."
    )
    cpu_architecture = Unicode("X86_64", config=True, help="X86_64 or ARM64 (Graviton).")
    extra_tags = Dict(Unicode(), config=True, help="Tags added to every task and task definition.")

    # -- the researcher's home ----------------------------------------------------------------

    file_system_id = Unicode("", config=True, help="The EFS file system of researchers' homes.")
    home_path_template = Unicode(
        "/home/{username}",
        config=True,
        help="Root directory of a researcher's access point on the file system.",
    )
    home_mount_path = Unicode(
        "/home/jovyan",
        config=True,
        help="Where the researcher's home is mounted in the container (the image's HOME).",
    )
    efs_uid = Union(
        [Integer(), Callable()],
        default_value=None,
        allow_none=True,
        config=True,
        help="""POSIX uid every file access through the researcher's access point is made
        as (and owner of their home), or a callable `(spawner) -> int` (e.g. the uidNumber
        from the directory). Default: a stable per-researcher uid derived from the user
        name (see `posix_id`). The container's own user does not matter: EFS enforces
        this identity.""",
    )
    efs_gid = Union(
        [Integer(), Callable()],
        default_value=None,
        allow_none=True,
        config=True,
        help="POSIX gid of the access point (or a callable); default: the same as the uid.",
    )
    access_point_listing_ttl = Float(
        60.0,
        config=True,
        help="""Seconds a listing of the file system's access points counts as current: a
        researcher not in it is given a new access point without listing again (creation
        is idempotent, so a race with another hub cannot make two).""",
    )
    home_permissions = Unicode(
        "750", config=True, help="Mode EFS creates a researcher's home directory with."
    )

    # -- timing -----------------------------------------------------------------------------

    start_poll_interval = Float(
        1.0, config=True, help="Seconds between status checks while a task starts."
    )
    poll_cache_seconds = Float(
        config=True,
        help="""How old a task's status may be when JupyterHub polls its server. Polls of
        all servers share one DescribeTasks per 100 tasks, so 500 servers cost 5 calls a
        cycle. Default: the spawner's `poll_interval`.""",
    )

    @default("poll_cache_seconds")
    def _default_poll_cache_seconds(self) -> float:
        return float(self.spawner.poll_interval or 30)

    stop_grace_seconds = Integer(
        30,
        min=2,
        max=120,
        config=True,
        help="""Seconds between SIGTERM and SIGKILL when a server stops (the container's
        stopTimeout; Fargate allows up to 120). `stop` waits up to this long plus
        `stop_wait_margin` for the task to stop.""",
    )
    stop_wait_margin = Float(
        30.0, config=True, help="Seconds `stop` waits beyond the grace period for STOPPED."
    )

    address_hook = Callable(
        None,
        allow_none=True,
        config=True,
        help="""A callable `(backend, task) -> (ip, port)` (may be async) giving the
        address the hub connects to for a running task, or None while it has none. Default:
        the private IP of the task's network interface and `port`.""",
    )
