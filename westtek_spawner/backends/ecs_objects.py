"""Pure builders and readers for the ECS backend: what is sent to AWS and what comes back.

Nothing here does I/O. The builders return the keyword arguments of one boto3 call each
(``register_task_definition``, ``run_task``, ``create_access_point``) and are tested as whole
dicts; the readers turn a ``DescribeTasks`` task into the facts the spawner acts on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

HOME_VOLUME = "home"
# The tag that records which inputs a task-definition revision was registered from.
INPUTS_TAG = "westtek:inputs"
MANAGED_BY_TAG = ("managed-by", "westtek-spawner")


def _tags(pairs: Mapping[str, str], key: str = "key", value: str = "value") -> list[dict[str, str]]:
    """AWS tag lists, sorted by key; empty values (an unknown lab) are left out."""
    return [{key: k, value: str(v)} for k, v in sorted(pairs.items()) if v != ""]


def fingerprint(kwargs: Mapping[str, Any]) -> str:
    """A short content hash of a call's keyword arguments (key-sorted canonical JSON)."""
    canonical = json.dumps(kwargs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def make_task_definition(
    *,
    family: str,
    image: str,
    cpu: str,
    memory: str,
    container_name: str,
    port: int,
    file_system_id: str,
    access_point_id: str,
    home_mount_path: str,
    stop_timeout: int,
    execution_role_arn: str = "",
    task_role_arn: str = "",
    ephemeral_storage_gib: int | None = None,
    log_group: str = "",
    log_region: str = "",
    log_stream_prefix: str = "notebook",
    cpu_architecture: str = "X86_64",
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``register_task_definition`` kwargs: one Fargate container, the researcher's EFS home.

    ECS takes EFS volumes only in the task definition (not in ``run_task`` overrides), hence
    one revision per researcher and profile. The environment is *not* here: it changes each
    spawn (the API token) and goes in ``run_task``'s overrides. The ``westtek:inputs`` tag
    holds the fingerprint of everything else, so an unchanged definition is never
    registered twice.
    """
    container: dict[str, Any] = {
        "name": container_name,
        "image": image,
        "essential": True,
        # Fargate takes the task's size; the container-level hard limit matches it.
        "memory": int(memory),
        "portMappings": [{"containerPort": port, "protocol": "tcp"}],
        "mountPoints": [
            {"sourceVolume": HOME_VOLUME, "containerPath": home_mount_path, "readOnly": False}
        ],
        "workingDirectory": home_mount_path,
        "stopTimeout": stop_timeout,
    }
    if log_group:
        container["logConfiguration"] = {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": log_region,
                "awslogs-stream-prefix": log_stream_prefix,
            },
        }
    kwargs: dict[str, Any] = {
        "family": family,
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": cpu,
        "memory": memory,
        "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": cpu_architecture},
        "containerDefinitions": [container],
        "volumes": [
            {
                "name": HOME_VOLUME,
                "efsVolumeConfiguration": {
                    "fileSystemId": file_system_id,
                    "transitEncryption": "ENABLED",
                    "authorizationConfig": {"accessPointId": access_point_id, "iam": "ENABLED"},
                },
            }
        ],
    }
    if execution_role_arn:
        kwargs["executionRoleArn"] = execution_role_arn
    if task_role_arn:
        kwargs["taskRoleArn"] = task_role_arn
    if ephemeral_storage_gib:
        kwargs["ephemeralStorage"] = {"sizeInGiB": ephemeral_storage_gib}
    all_tags = {MANAGED_BY_TAG[0]: MANAGED_BY_TAG[1], **(tags or {})}
    kwargs["tags"] = _tags({**all_tags, INPUTS_TAG: fingerprint({**kwargs, "tags": all_tags})})
    return kwargs


def inputs_fingerprint(task_definition_kwargs: Mapping[str, Any]) -> str:
    """The ``westtek:inputs`` tag of kwargs built by :func:`make_task_definition`."""
    for tag in task_definition_kwargs.get("tags", []):
        if tag.get("key") == INPUTS_TAG:
            return str(tag["value"])
    return ""


def make_run_task_kwargs(
    *,
    cluster: str,
    task_definition_arn: str,
    container_name: str,
    subnets: Sequence[str],
    security_groups: Sequence[str],
    environment: Mapping[str, str],
    command: Sequence[str],
    tags: Mapping[str, str],
    assign_public_ip: bool = False,
    platform_version: str = "LATEST",
    started_by: str = "jupyterhub",
) -> dict[str, Any]:
    """``run_task`` kwargs: one Fargate task in the hub's subnets, with this spawn's env."""
    return {
        "cluster": cluster,
        "taskDefinition": task_definition_arn,
        "count": 1,
        "launchType": "FARGATE",
        "platformVersion": platform_version,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(subnets),
                "securityGroups": list(security_groups),
                "assignPublicIp": "ENABLED" if assign_public_ip else "DISABLED",
            }
        },
        "overrides": {
            "containerOverrides": [
                {
                    "name": container_name,
                    "command": list(command),
                    "environment": _tags(environment, "name", "value"),
                }
            ]
        },
        "startedBy": started_by[:36],
        "enableECSManagedTags": True,
        "tags": _tags(tags),
    }


def make_access_point_kwargs(
    *,
    file_system_id: str,
    researcher: str,
    root_path: str,
    uid: int,
    gid: int,
    permissions: str = "750",
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``create_access_point`` kwargs: the researcher's home as the root, their POSIX ids.

    EFS creates the root directory on first mount with ``permissions``, owned by uid/gid;
    every file written through the access point is theirs whatever the container's user.
    The client token is derived from the file system and the researcher, so a retried
    create cannot make a second access point.
    """
    token = hashlib.sha256(f"{file_system_id}/{researcher}".encode()).hexdigest()[:40]
    all_tags = {
        "Name": f"westtek-{researcher}",
        "researcher_id": researcher,
        MANAGED_BY_TAG[0]: MANAGED_BY_TAG[1],
        **(tags or {}),
    }
    return {
        "ClientToken": f"westtek-{token}",
        "FileSystemId": file_system_id,
        "PosixUser": {"Uid": uid, "Gid": gid},
        "RootDirectory": {
            "Path": root_path,
            "CreationInfo": {"OwnerUid": uid, "OwnerGid": gid, "Permissions": permissions},
        },
        "Tags": _tags(all_tags, "Key", "Value"),
    }


# -- reading DescribeTasks ----------------------------------------------------------------


@dataclass(frozen=True)
class TaskStage:
    """Where a task is in its life, as the spawn page shows it."""

    key: str
    progress: int
    message: str


STOPPED_STATES = frozenset({"DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED", "DELETED"})


def task_stage(task: Mapping[str, Any]) -> TaskStage:
    """The stage of a ``DescribeTasks`` task.

    One of provisioning, pending, pulling, starting, running or stopped.
    """
    status = task.get("lastStatus", "")
    if task.get("desiredStatus") == "STOPPED" or status in STOPPED_STATES:
        return TaskStage("stopped", 100, f"Task stopped: {stopped_reason(task)}")
    if status == "PROVISIONING":
        return TaskStage(
            "provisioning", 45, "Task provisioning: Fargate is finding capacity and a network"
        )
    if status == "PENDING":
        if task.get("pullStartedAt") and not task.get("pullStoppedAt"):
            images = ", ".join(sorted({c.get("image", "?") for c in task.get("containers", [])}))
            return TaskStage("pulling", 55, f"Task pending: pulling image {images}")
        if task.get("pullStoppedAt"):
            return TaskStage("starting", 65, "Task pending: image pulled, starting the container")
        return TaskStage("pending", 50, "Task pending: waiting for its network interface")
    if status == "ACTIVATING":
        return TaskStage("starting", 65, "Task activating: starting the container")
    if status == "RUNNING":
        return TaskStage("running", 75, "Task running")
    return TaskStage(status.lower() or "unknown", 40, f"Task {status or 'state unknown'}")


def stopped_reason(task: Mapping[str, Any]) -> str:
    """ECS's own reasons a task stopped: the task's, then each container's that adds to it."""
    reasons: list[str] = []
    if task.get("stoppedReason"):
        reasons.append(str(task["stoppedReason"]))
    for container in task.get("containers", []):
        reason = container.get("reason")
        if reason and not any(reason in r for r in reasons):
            reasons.append(f"{container.get('name', 'container')}: {reason}")
        elif "exitCode" in container and task.get("lastStatus") == "STOPPED" and not reasons:
            name = container.get("name", "container")
            reasons.append(f"{name} exited with {container['exitCode']}")
    if task.get("stopCode") and not reasons:
        reasons.append(str(task["stopCode"]))
    return "; ".join(reasons) or "no reason given by ECS"


def exit_status(task: Mapping[str, Any]) -> int:
    """The notebook container's exit code, 1 when it never ran (as ``Spawner.poll`` wants)."""
    codes = [c.get("exitCode") for c in task.get("containers", []) if c.get("exitCode") is not None]
    if codes:
        return int(codes[0]) if isinstance(codes[0], int) else 1
    return 1 if task.get("stoppedReason") else 0


def task_private_ip(task: Mapping[str, Any]) -> str | None:
    """The private IPv4 of the task's network interface, once ECS has attached one."""
    for attachment in task.get("attachments", []):
        if attachment.get("type") != "ElasticNetworkInterface":
            continue
        for detail in attachment.get("details", []):
            if detail.get("name") == "privateIPv4Address" and detail.get("value"):
                return str(detail["value"])
    for container in task.get("containers", []):
        for interface in container.get("networkInterfaces", []):
            if interface.get("privateIpv4Address"):
                return str(interface["privateIpv4Address"])
    return None


def image_digest(task: Mapping[str, Any], container_name: str) -> str:
    """The digest of the image the notebook container runs ('' before ECS knows it)."""
    for container in task.get("containers", []):
        if container.get("name") == container_name:
            return str(container.get("imageDigest") or "")
    return ""


def task_id(task_arn: str) -> str:
    """The id at the end of a task ARN."""
    return task_arn.rsplit("/", 1)[-1]
