"""The ECS backend's pure builders and readers, tested as whole dicts."""

from unittest.mock import ANY

import pytest

from westtek_spawner.backends.ecs_objects import (
    INPUTS_TAG,
    TaskStage,
    exit_status,
    image_digest,
    inputs_fingerprint,
    make_access_point_kwargs,
    make_run_task_kwargs,
    make_task_definition,
    stopped_reason,
    task_private_ip,
    task_stage,
)

TASK_DEFINITION_INPUTS = dict(
    family="westtek-notebook",
    image="123456789012.dkr.ecr.us-east-1.amazonaws.com/westtek-notebook:1.4",
    cpu="1024",
    memory="4096",
    container_name="notebook",
    port=8888,
    file_system_id="fs-0123",
    access_point_id="fsap-0456",
    home_mount_path="/home/jovyan",
    stop_timeout=30,
)


def test_task_definition_is_one_fargate_container_on_the_researchers_access_point():
    built = make_task_definition(
        **TASK_DEFINITION_INPUTS,
        execution_role_arn="arn:aws:iam::123456789012:role/westtek-exec",
        task_role_arn="arn:aws:iam::123456789012:role/westtek-notebook",
        ephemeral_storage_gib=30,
        log_group="/westtek/notebooks",
        log_region="us-east-1",
        tags={"researcher_id": "alice", "profile": "small", "lab_id": ""},
    )
    assert built == {
        "family": "westtek-notebook",
        "requiresCompatibilities": ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": "1024",
        "memory": "4096",
        "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
        "containerDefinitions": [
            {
                "name": "notebook",
                "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/westtek-notebook:1.4",
                "essential": True,
                "memory": 4096,
                "portMappings": [{"containerPort": 8888, "protocol": "tcp"}],
                "mountPoints": [
                    {"sourceVolume": "home", "containerPath": "/home/jovyan", "readOnly": False}
                ],
                "workingDirectory": "/home/jovyan",
                "stopTimeout": 30,
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": "/westtek/notebooks",
                        "awslogs-region": "us-east-1",
                        "awslogs-stream-prefix": "notebook",
                    },
                },
            }
        ],
        "volumes": [
            {
                "name": "home",
                "efsVolumeConfiguration": {
                    "fileSystemId": "fs-0123",
                    "transitEncryption": "ENABLED",
                    "authorizationConfig": {"accessPointId": "fsap-0456", "iam": "ENABLED"},
                },
            }
        ],
        "executionRoleArn": "arn:aws:iam::123456789012:role/westtek-exec",
        "taskRoleArn": "arn:aws:iam::123456789012:role/westtek-notebook",
        "ephemeralStorage": {"sizeInGiB": 30},
        # sorted by key; the empty lab_id says nothing and is left out
        "tags": [
            {"key": "managed-by", "value": "westtek-spawner"},
            {"key": "profile", "value": "small"},
            {"key": "researcher_id", "value": "alice"},
            {"key": INPUTS_TAG, "value": ANY},
        ],
    }


def test_minimal_task_definition_leaves_out_roles_logs_and_storage():
    built = make_task_definition(**TASK_DEFINITION_INPUTS)
    assert set(built) == {
        "family",
        "requiresCompatibilities",
        "networkMode",
        "cpu",
        "memory",
        "runtimePlatform",
        "containerDefinitions",
        "volumes",
        "tags",
    }
    assert "logConfiguration" not in built["containerDefinitions"][0]


def test_fingerprint_changes_with_any_input_and_only_then():
    base = inputs_fingerprint(make_task_definition(**TASK_DEFINITION_INPUTS))
    assert base == inputs_fingerprint(make_task_definition(**TASK_DEFINITION_INPUTS))
    assert len(base) == 32
    for field, value in [
        ("image", "other:2"),
        ("cpu", "2048"),
        ("access_point_id", "fsap-other"),
        ("stop_timeout", 60),
    ]:
        changed = make_task_definition(**{**TASK_DEFINITION_INPUTS, field: value})
        assert inputs_fingerprint(changed) != base, field
    tagged = make_task_definition(**TASK_DEFINITION_INPUTS, tags={"cost-centre": "x"})
    assert inputs_fingerprint(tagged) != base


def test_run_task_is_fargate_in_private_subnets_with_the_spawns_environment():
    built = make_run_task_kwargs(
        cluster="westtek",
        task_definition_arn="arn:aws:ecs:us-east-1:1:task-definition/westtek-notebook-alice:3",
        container_name="notebook",
        subnets=["subnet-a", "subnet-b"],
        security_groups=["sg-1"],
        environment={"JUPYTERHUB_API_TOKEN": "t0k", "WESTTEK_LAB_ID": "vault-13", "EMPTY": ""},
        command=["python", "-m", "westtek_spawner.prestart", "--", "jupyterhub-singleuser"],
        tags={"lab_id": "vault-13", "researcher_id": "alice", "environment_id": "alice"},
    )
    assert built == {
        "cluster": "westtek",
        "taskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/westtek-notebook-alice:3",
        "count": 1,
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": ["subnet-a", "subnet-b"],
                "securityGroups": ["sg-1"],
                "assignPublicIp": "DISABLED",
            }
        },
        "overrides": {
            "containerOverrides": [
                {
                    "name": "notebook",
                    "command": [
                        "python",
                        "-m",
                        "westtek_spawner.prestart",
                        "--",
                        "jupyterhub-singleuser",
                    ],
                    "environment": [
                        {"name": "JUPYTERHUB_API_TOKEN", "value": "t0k"},
                        {"name": "WESTTEK_LAB_ID", "value": "vault-13"},
                    ],
                }
            ]
        },
        "startedBy": "jupyterhub",
        "enableECSManagedTags": True,
        "tags": [
            {"key": "environment_id", "value": "alice"},
            {"key": "lab_id", "value": "vault-13"},
            {"key": "researcher_id", "value": "alice"},
        ],
    }


def test_access_point_is_the_researchers_home_with_their_posix_ids():
    built = make_access_point_kwargs(
        file_system_id="fs-0123",
        researcher="alice",
        root_path="/home/alice",
        uid=1000,
        gid=100,
        tags={"lab_id": "vault-13"},
    )
    assert built == {
        "ClientToken": ANY,
        "FileSystemId": "fs-0123",
        "PosixUser": {"Uid": 1000, "Gid": 100},
        "RootDirectory": {
            "Path": "/home/alice",
            "CreationInfo": {"OwnerUid": 1000, "OwnerGid": 100, "Permissions": "750"},
        },
        "Tags": [
            {"Key": "Name", "Value": "westtek-alice"},
            {"Key": "lab_id", "Value": "vault-13"},
            {"Key": "managed-by", "Value": "westtek-spawner"},
            {"Key": "researcher_id", "Value": "alice"},
        ],
    }
    # the same researcher on the same file system always gets the same idempotency token
    again = make_access_point_kwargs(
        file_system_id="fs-0123", researcher="alice", root_path="/home/alice", uid=1, gid=1
    )
    bob = make_access_point_kwargs(
        file_system_id="fs-0123", researcher="bob", root_path="/home/bob", uid=1, gid=1
    )
    assert built["ClientToken"] == again["ClientToken"] != bob["ClientToken"]
    assert len(built["ClientToken"]) <= 64


def task(**fields):
    return {
        "taskArn": "arn:aws:ecs:us-east-1:1:task/westtek/abc",
        "lastStatus": "RUNNING",
        "desiredStatus": "RUNNING",
        "containers": [{"name": "notebook", "image": "img:1"}],
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "stage"),
    [
        ({"lastStatus": "PROVISIONING"}, "provisioning"),
        ({"lastStatus": "PENDING"}, "pending"),
        ({"lastStatus": "PENDING", "pullStartedAt": 1}, "pulling"),
        ({"lastStatus": "PENDING", "pullStartedAt": 1, "pullStoppedAt": 2}, "starting"),
        ({"lastStatus": "ACTIVATING"}, "starting"),
        ({"lastStatus": "RUNNING"}, "running"),
        ({"lastStatus": "DEACTIVATING"}, "stopped"),
        ({"lastStatus": "RUNNING", "desiredStatus": "STOPPED"}, "stopped"),
        ({"lastStatus": "STOPPED"}, "stopped"),
    ],
)
def test_task_stage_follows_the_ecs_lifecycle(fields, stage):
    assert task_stage(task(**fields)).key == stage


def test_pulling_names_the_image_and_stages_only_go_forward():
    assert task_stage(task(lastStatus="PENDING", pullStartedAt=1)) == TaskStage(
        "pulling", 55, "Task pending: pulling image img:1"
    )
    order = ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING"]
    progress = [task_stage(task(lastStatus=s)).progress for s in order]
    assert progress == sorted(progress)


def test_stopped_reason_is_ecss_own_words():
    pull_failure = task(
        lastStatus="STOPPED",
        stoppedReason="CannotPullContainerError: pull image manifest has been retried 5 times",
        stopCode="TaskFailedToStart",
        containers=[
            {
                "name": "notebook",
                "reason": "CannotPullContainerError: pull image manifest has been retried 5 times",
            }
        ],
    )
    assert stopped_reason(pull_failure) == (
        "CannotPullContainerError: pull image manifest has been retried 5 times"
    )
    crashed = task(lastStatus="STOPPED", containers=[{"name": "notebook", "exitCode": 3}])
    assert stopped_reason(crashed) == "notebook exited with 3"
    assert exit_status(crashed) == 3
    assert stopped_reason(task(lastStatus="STOPPED", containers=[])) == "no reason given by ECS"
    assert exit_status(pull_failure) == 1


def test_private_ip_and_digest_are_read_from_the_task():
    described = task(
        attachments=[
            {
                "type": "ElasticNetworkInterface",
                "details": [
                    {"name": "subnetId", "value": "subnet-a"},
                    {"name": "privateIPv4Address", "value": "10.0.3.7"},
                ],
            }
        ],
        containers=[{"name": "notebook", "imageDigest": "sha256:feed"}],
    )
    assert task_private_ip(described) == "10.0.3.7"
    assert image_digest(described, "notebook") == "sha256:feed"
    assert task_private_ip(task()) is None
    assert image_digest(task(), "notebook") == ""
