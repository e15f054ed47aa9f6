"""The contract between the Python code and the CDK stack, on the synthesized prod stage.

Each side has its own tests; this one checks the seam. ``infra/test/contract-cli.ts``
synthesizes the stage and says what its hub container is given (environment, secrets); then

(a) the environment: hub_config/aws.py runs with exactly that environment (resource names
    swapped for moto's, the database for a local PostgreSQL) while every variable it reads
    is recorded — it must need nothing else and read everything it is given — and a
    notebook server's settings are read, the same way, from exactly the environment the
    configured spawner gives a server; and every WESTTEK_*/AWS_* variable the deployed code
    reads (its source scanned: environment_reads.py) is set for the process reading it, or
    is optional by design;
(b) IAM: the flows each role runs in production — the hub's start, spawning and stopping
    a notebook task, copying a shared snapshot between two labs' KMS-encrypted stores,
    anchoring the audit chain; a notebook server's first snapshot into its lab's new store,
    reading it back, and a critical drift alert; for both roles, packs uploaded in parts and
    a part upload that fails (so the upload is aborted) — run against moto while
    :func:`westtek_core.aws.observe_calls` records every call, and each call is decided by
    the stack's IAM evaluator against that role's synthesized policies (resources and
    conditions included). Another lab's role must be refused the notebook's calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub.objects import Hub
from traitlets.config import Config

from tests.core.conftest import research_env, wheelhouse  # noqa: F401 (fixtures)
from tests.core.store.conftest import moto_endpoint  # noqa: F401 (a fixture)
from tests.e2e.aws_iam import Arns, iam_requests
from tests.e2e.conftest import REPO
from tests.e2e.environment_reads import (
    ECS_TASK_ENVIRONMENT,
    HUB,
    HUB_SERVICE,
    NOTEBOOK,
    unread,
    unset_reads,
)
from tests.e2e.store_flows import PacksInParts, abandon_a_pack_upload, take_a_snapshot
from tests.e2e.test_ecs_spawn import postgres  # noqa: F401 (a fixture)
from tests.postgres_server import create_database
from tests.spawner.conftest import TINY_SERVER, aws  # noqa: F401 (a fixture)
from tests.spawner.fake_fargate import FakeFargate
from westtek_core.autosnapshot_settings import ENVIRONMENT as AUTO_SNAPSHOT_ENVIRONMENT
from westtek_core.aws import aws_client, observe_calls

pytestmark = pytest.mark.slow

STAGE = "prod"
STACK_ACCOUNT = "111122223333"  # infra/test/iam-eval.ts ACCOUNT
MOTO_ACCOUNT = "123456789012"
LAB, OTHER_LAB = "vault-13", "vault-1"
AWS_CONFIG = REPO / "hub_config" / "aws.py"


def contract(*args: str) -> Any:
    """Run infra/test/contract-cli.ts; its JSON answer."""
    done = subprocess.run(
        ["node", "--require", "ts-node/register/transpile-only", "test/contract-cli.ts", *args],
        cwd=REPO / "infra",
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode:
        pytest.fail(f"contract-cli {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return contract("describe", STAGE)


class RecordingEnviron(MutableMapping[str, str]):
    """``os.environ`` that remembers which variables were looked up."""

    def __init__(self, real: MutableMapping[str, str]) -> None:
        self.real, self.read = real, set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self.real[name]

    def get(self, name: str, default: Any = None) -> Any:
        self.read.add(name)
        return self.real.get(name, default)

    def __contains__(self, name: object) -> bool:
        self.read.add(str(name))
        return name in self.real

    def __setitem__(self, name: str, value: str) -> None:
        self.real[name] = value

    def __delitem__(self, name: str) -> None:
        del self.real[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.real)

    def __len__(self) -> int:
        return len(self.real)

    def copy(self) -> dict[str, str]:
        return dict(self.real)

    # listing every variable (to forward AWS_* ones, say) reads none of them in particular
    def items(self) -> Any:
        return self.real.items()

    def values(self) -> Any:
        return self.real.values()


class Recorder:
    """Every AWS call of the suite's clients, attributed to the role the flow runs as."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.principal: dict[str, str] = {}

    def __call__(self, service: str, operation: str, params: Any) -> None:
        if self.principal:
            self.calls.append(
                {"service": service, "operation": operation, "params": dict(params)}
                | self.principal
            )


class MotoStage:
    """The stage's resources on moto, named as the stack names them where AWS allows.

    ``environment`` is the hub container's, with each value moto cannot take as is (ids it
    generates) replaced by moto's; :meth:`to_stack` maps a recorded value back.
    """

    def __init__(self, stack: dict[str, Any], postgres_url: str, tmp_path: Path) -> None:
        hub = stack["hub"]
        self.environment = dict(hub["environment"])
        self.aliases: dict[str, str] = {}
        env = self.environment
        s3 = aws_client("s3")
        s3.create_bucket(Bucket=env["WESTTEK_SNAPSHOT_BUCKET"])
        s3.create_bucket(Bucket=env["WESTTEK_AUDIT_BUCKET"], ObjectLockEnabledForBucket=True)
        aws_client("ecs").create_cluster(clusterName=env["WESTTEK_ECS_CLUSTER"])
        events = aws_client("events")
        if not events.list_event_buses(NamePrefix=env["WESTTEK_EVENT_BUS"])["EventBuses"]:
            events.create_event_bus(Name=env["WESTTEK_EVENT_BUS"])
        key = aws_client("kms").create_key(Description="snapshots")["KeyMetadata"]["Arn"]
        self._swap("WESTTEK_SNAPSHOT_KMS_KEY_ARN", key)
        file_system = aws_client("efs").create_file_system(CreationToken=f"home-{tmp_path.name}")[
            "FileSystemId"
        ]
        self._swap("WESTTEK_EFS_FILE_SYSTEM_ID", file_system)
        secret = aws_client("secretsmanager").create_secret(
            Name=f"westtek-db-{tmp_path.name}",
            SecretString=json.dumps({"username": "westtek", "password": "pw"}),
        )["ARN"]
        self._swap("WESTTEK_DB_SECRET_ARN", secret)
        cognito = aws_client("cognito-idp")
        pool = cognito.create_user_pool(PoolName="westtek")["UserPool"]["Id"]
        client = cognito.create_user_pool_client(
            UserPoolId=pool, ClientName="hub", GenerateSecret=True
        )["UserPoolClient"]["ClientId"]
        self._swap("WESTTEK_COGNITO_USER_POOL_ID", pool)
        self._swap("WESTTEK_COGNITO_CLIENT_ID", client)
        template = aws_client("ecs").register_task_definition(
            family=env["WESTTEK_NOTEBOOK_TASK_FAMILY"],
            containerDefinitions=[
                {
                    "name": env["WESTTEK_NOTEBOOK_CONTAINER"],
                    "image": "westtek/notebook:contract",
                    "memoryReservation": 2048,
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        self._swap("WESTTEK_NOTEBOOK_TASK_DEFINITION_ARN", template)
        ec2 = aws_client("ec2")
        vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
        group = ec2.create_security_group(
            GroupName=f"notebooks-{tmp_path.name}", Description="notebooks", VpcId=vpc["VpcId"]
        )["GroupId"]
        env["WESTTEK_NOTEBOOK_SUBNETS"] = subnets["Subnets"][0]["SubnetId"]
        env["WESTTEK_NOTEBOOK_SECURITY_GROUPS"] = group
        if "WESTTEK_ALERT_TOPIC_ARNS" in env:
            topics = {}
            for lab, arn in json.loads(env["WESTTEK_ALERT_TOPIC_ARNS"]).items():
                topic = aws_client("sns").create_topic(Name=arn.rsplit(":", 1)[1])["TopicArn"]
                topics[lab], self.aliases[topic] = topic, arn
            env["WESTTEK_ALERT_TOPIC_ARNS"] = json.dumps(topics)
        # not AWS: the database is a local PostgreSQL without TLS, the proxy and hub loopback
        host, port = postgres_url.rsplit("@", 1)[1].split(":")
        database = create_database(postgres_url, f"westtek_{tmp_path.name.replace('-', '_')}")
        env |= {
            "WESTTEK_DB_HOST": host,
            "WESTTEK_DB_PORT": port,
            "WESTTEK_DB_NAME": database.rsplit("/", 1)[1],
        }
        # the task's secrets (Secrets Manager, injected by ECS)
        self.secrets = {name: f"contract-{name.lower()}" for name in hub["secrets"]}

    def _swap(self, name: str, moto_value: str) -> None:
        self.aliases[moto_value] = self.environment[name]
        self.environment[name] = moto_value

    def to_stack(self, value: Any) -> Any:
        """A recorded value as the stack names it (moto's ids and account swapped back)."""
        if isinstance(value, list):
            return [self.to_stack(item) for item in value]
        if not isinstance(value, str):
            return value
        for moto_value, stack_value in sorted(self.aliases.items(), key=lambda a: -len(a[0])):
            value = value.replace(moto_value, stack_value)
        return value.replace(MOTO_ACCOUNT, STACK_ACCOUNT)


@pytest.fixture
def moto_stage(stack, aws, postgres, tmp_path, monkeypatch):  # noqa: F811
    stage = MotoStage(stack, postgres, tmp_path)
    for name in [n for n in os.environ if n.startswith("WESTTEK_") or n.startswith("JUPYTERHUB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", stack["region"])
    monkeypatch.setenv("WESTTEK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WESTTEK_CACHE_DIR", str(tmp_path / "cache"))
    return stage


def run_hub_config(stage: MotoStage, monkeypatch) -> tuple[Config, set[str]]:
    """hub_config/aws.py with exactly the task's environment; its config and what it read."""
    for name, value in (stage.environment | stage.secrets).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WESTTEK_DB_SSLMODE", "disable")  # the local server has no TLS
    recording = RecordingEnviron(os.environ)
    monkeypatch.setattr(os, "environ", recording)
    namespace: dict[str, Any] = {"get_config": Config}
    try:
        exec(compile(AWS_CONFIG.read_text(), str(AWS_CONFIG), "exec"), namespace)
        # JupyterHub itself reads the proxy's token (the task's other container shares it)
        from jupyterhub.proxy import ConfigurableHTTPProxy

        assert ConfigurableHTTPProxy(config=namespace["c"]).auth_token
    except SystemExit as exit:  # a required setting is missing: the stack must set it
        pytest.fail(str(exit))
    finally:
        monkeypatch.setattr(os, "environ", recording.real)
    return namespace["c"], recording.read


def server_environment(config: Config, lab: str, name: str = "alice") -> dict[str, str]:
    """What the configured spawner gives ``name``'s server in ``lab`` (its task overrides)."""
    from westtek_spawner import WestTekSpawner

    spawner = WestTekSpawner(
        config=config,
        user=SimpleNamespace(
            name=name, escaped_name=name, url=f"/user/{name}/", groups=[SimpleNamespace(name=lab)]
        ),
        hub=Hub(ip="127.0.0.1", port=8081, base_url="/hub/"),
        api_token=f"token-{name}",
        oauth_client_id=f"jupyterhub-user-{name}",
    )
    return {key: str(value) for key, value in spawner.get_env().items()}


def configured(configurable: Any) -> dict[str, Any]:
    """Every configurable trait's value (reading each one runs its default)."""
    return {name: getattr(configurable, name) for name in configurable.trait_names(config=True)}


def read_server_settings(
    environment: dict[str, str], monkeypatch
) -> tuple[dict[str, Any], set[str]]:
    """A notebook server's West Tek settings under exactly ``environment``, and what it read."""
    from westtek_core.agents.loop import AgentLoop
    from westtek_core.agents.providers.bedrock import BedrockProvider, allowed_bedrock_models
    from westtek_core.kb import KnowledgeIndexBackend
    from westtek_core.notify import notifier_from_config
    from westtek_server_ext.app import WestTekExtension

    for name in [n for n in os.environ if n.startswith("WESTTEK_") or n.startswith("JUPYTERHUB_")]:
        if name not in ("WESTTEK_DATA_DIR", "WESTTEK_CACHE_DIR"):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    recording = RecordingEnviron(os.environ)
    monkeypatch.setattr(os, "environ", recording)
    try:
        extension = WestTekExtension()
        settings = configured(extension)
        settings["sinks"] = {sink.name: sink for sink in notifier_from_config().active_sinks}
        settings["kb"] = configured(KnowledgeIndexBackend())
        settings["agents"] = configured(AgentLoop())
        settings["model_id"] = BedrockProvider().model_id
        settings["allowed_models"] = allowed_bedrock_models()
    finally:
        monkeypatch.setattr(os, "environ", recording.real)
    return settings, recording.read


def own_topic(stage: MotoStage, lab: str) -> str:
    return str(json.loads(stage.environment["WESTTEK_ALERT_TOPIC_ARNS"])[lab])


def test_the_hub_and_its_servers_read_every_setting_the_stack_gives_and_need_no_other(
    stack, moto_stage, monkeypatch
):
    # hub_config/aws.py starts with exactly the task's environment (a missing required
    # setting fails run_hub_config) and reads every variable the stack sets:
    config, read = run_hub_config(moto_stage, monkeypatch)
    given = set(stack["hub"]["environment"]) | set(stack["hub"]["secrets"])
    unread_by_hub = sorted(given - read)
    assert not unread_by_hub, f"the stack sets {unread_by_hub}, which hub_config never reads"
    # a notebook server reads every West Tek variable the configured spawner gives it,
    environment = server_environment(config, LAB)
    settings, server_read = read_server_settings(environment, monkeypatch)
    given = {name for name in environment if name.startswith("WESTTEK_")}
    unread_by_servers = sorted(given - server_read)
    assert not unread_by_servers, f"the spawner gives servers {unread_by_servers}, never read"
    # the hub service reads what it is given (it runs as a process of the hub, which hands
    # it the hub task's AWS_* variables, ECS's),
    service = next(s for s in config.JupyterHub.services if s["name"] == "westtek")
    service_environment = {n for n in service["environment"] if not n.startswith("AWS_")}
    unread_by_service = sorted(unread(HUB_SERVICE, service_environment))
    assert not unread_by_service, f"the hub service is given {unread_by_service}, never read"
    # and they arrive as the settings they are for: the lab's store, encrypted under the
    # stage's snapshot key, drift on the stage's bus and critical drift on the lab's own
    # topic, the lab's own knowledge base, the agents on a model the stack allows.
    bucket = moto_stage.environment["WESTTEK_SNAPSHOT_BUCKET"]
    assert settings["store"] == f"s3://{bucket}/labs/{LAB}/"
    assert settings["lab_id"] == LAB
    assert settings["kms_key_id"] == moto_stage.environment["WESTTEK_SNAPSHOT_KMS_KEY_ARN"]
    sinks = settings["sinks"]
    assert sinks["eventbridge"].event_bus == moto_stage.environment["WESTTEK_EVENT_BUS"]
    assert sinks["sns"].topic_arn == own_topic(moto_stage, LAB)
    assert settings["kb"]["backend"] == "bedrock"
    assert list(settings["kb"]["knowledge_base_ids"]) == [LAB]
    assert settings["agents"]["provider"] == "bedrock"
    assert settings["allowed_models"] == stack["bedrockModelIds"]
    assert settings["model_id"] == stack["bedrockModelIds"][0]
    # Every variable the deployed code reads is set for the process reading it, or is
    # optional by design; a server is also given its lab's automatic-snapshot settings
    # (westtek_spawner.report.ask_auto_snapshot_environment) when the lab has any.
    ecs = ECS_TASK_ENVIRONMENT
    unset = unset_reads(
        {
            HUB: set(stack["hub"]["environment"]) | set(stack["hub"]["secrets"]) | ecs,
            HUB_SERVICE: service_environment | ecs,
            NOTEBOOK: set(environment) | set(AUTO_SNAPSHOT_ENVIRONMENT.values()) | ecs,
        }
    )
    assert not unset, "\n".join(unset)


def test_the_default_bedrock_model_is_the_stacks_default():
    # one list of allowed models (infra's bedrockModelIds); outside AWS the provider's
    # fallback is its first entry, so a server never defaults to a model IAM refuses
    from westtek_core.agents.providers.bedrock import DEFAULT_BEDROCK_MODEL_ID

    default = contract("describe", "dev")["bedrockModelIds"][0]
    assert DEFAULT_BEDROCK_MODEL_ID == default


def requests_of(recorder: Recorder, stage: MotoStage, region: str) -> list[dict[str, Any]]:
    """The recorded calls as the IAM requests they make, in the stack's names."""
    arns = Arns(MOTO_ACCOUNT, region)
    requests = []
    for call in recorder.calls:
        for request in iam_requests(call["service"], call["operation"], call["params"], arns):
            requests.append(
                {
                    "principal": call["principal"],
                    "lab": call.get("lab"),
                    "call": f"{call['service']} {call['operation']}",
                    "action": request["action"],
                    "resource": stage.to_stack(request["resource"]),
                    "context": {k: stage.to_stack(v) for k, v in request["context"].items()},
                }
            )
    return requests


def decide(requests: list[dict[str, Any]], tmp_path: Path) -> list[bool]:
    path = tmp_path / f"requests-{len(requests)}.json"
    path.write_text(json.dumps(requests))
    return list(contract("decide", STAGE, str(path)))


def denied(requests: list[dict[str, Any]], decisions: list[bool]) -> list[str]:
    return [
        f"{r['principal']}{'/' + r['lab'] if r.get('lab') else ''}: {r['call']} → "
        f"{r['action']} on {r['resource']} {r['context'] or ''}"
        for r, allowed in zip(requests, decisions, strict=True)
        if not allowed
    ]


def archive_as_the_lifecycle_does(recorder: Recorder, store: str) -> None:
    """A year on, the lifecycle moves the store's packs to Deep Archive (no role's call)."""
    from tests.core.store.archived import archive_packs
    from westtek_core.store import open_backend

    principal, recorder.principal = recorder.principal, {}
    archive_packs(open_backend(store))
    recorder.principal = principal


def restore_from_archive(
    recorder: Recorder, settings: dict[str, Any], snapshot: str, tmp_path: Path
) -> None:
    """A year on, the lifecycle has moved the packs to Deep Archive: a restore thaws them."""
    from westtek_core.snapshot import load_snapshot, restore_snapshot
    from westtek_core.store import ArchiveWait, Repository

    archive_as_the_lifecycle_does(recorder, settings["store"])
    repo = Repository.open(settings["store"], create=False, cache_dir=tmp_path / "late-cache")
    with pytest.raises(ArchiveWait):  # RestoreObject requested (moto thaws at once)
        restore_snapshot(repo, load_snapshot(repo, snapshot), tmp_path / "late", validate=False)
    restore_snapshot(repo, load_snapshot(repo, snapshot), tmp_path / "late", validate=False)
    repo.close()


async def test_every_call_each_role_makes_is_allowed_by_its_synthesized_policies(
    stack,
    moto_stage,
    research_env,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    from westtek_core.notify import notifier_from_config
    from westtek_core.store import ArchiveWait
    from westtek_hub.audit_anchor import ChainHead, open_anchor
    from westtek_hub.stores import LabStores
    from westtek_spawner import WestTekSpawner

    region = stack["region"]
    recorder = Recorder()
    monkeypatch.setattr("westtek_core.store.s3.S3Backend", PacksInParts)
    stop_observing = observe_calls(recorder)
    fargate = FakeFargate(
        tmp_path / "fargate", clusters={moto_stage.environment["WESTTEK_ECS_CLUSTER"]}
    ).start()
    try:
        # -- the hub starts (its secrets) ---------------------------------------------------
        recorder.principal = {"principal": "hub"}
        config, _ = run_hub_config(moto_stage, monkeypatch)
        hub_environment = dict(os.environ)
        service = config.JupyterHub.services[0]
        # -- it spawns alice's server in her lab, and stops it ------------------------------
        config.EcsBackend.address_hook = fargate.address
        config.EcsBackend.start_poll_interval = 0.05
        spawner = WestTekSpawner(
            config=config,
            user=SimpleNamespace(
                name="alice", escaped_name="alice", url="/user/alice/",
                groups=[SimpleNamespace(name=LAB)],
            ),
            hub=Hub(ip="127.0.0.1", port=8081, base_url="/hub/"),
            api_token="token-alice",
            oauth_client_id="jupyterhub-user-alice",
            cmd=[sys.executable, "-c", TINY_SERVER],
            restore_environment=False,
        )  # fmt: skip
        environment = server_environment(config, LAB)
        await asyncio.wait_for(spawner.start(), 120)
        await spawner.stop(now=True)

        # -- alice's server: a first snapshot into her lab's store, a critical drift alert --
        recorder.principal = {"principal": "notebook", "lab": LAB}
        settings, _ = read_server_settings(environment, monkeypatch)
        snapshot = take_a_snapshot(settings, research_env, tmp_path)
        restore_from_archive(recorder, settings, snapshot, tmp_path)
        abandon_a_pack_upload(settings["store"])
        with monkeypatch.context() as server:
            for name, value in environment.items():
                server.setenv(name, value)
            notifier = notifier_from_config()
            event = {
                "id": "e1", "status": "CRITICAL_DRIFT", "environment_id": "alice",
                "lab_id": LAB, "baseline": snapshot,
                "changes": [{"kind": "package", "name": "numpy", "severity": "critical",
                             "before": "1.26.4", "after": "2.0.1"}],
            }  # fmt: skip
            assert set(notifier.publish(event)) >= {"sns", "eventbridge"}
            assert notifier.deliver_pending() >= 2
            notifier.stop()

        # -- the hub service: the snapshot shared with another lab, the audit anchor -------
        recorder.principal = {"principal": "hub"}
        for name, value in hub_environment.items():
            monkeypatch.setenv(name, value)
        options = dict(
            arg.removeprefix("--LabStores.").split("=", 1)
            for arg in service["command"]
            if arg.startswith("--LabStores.")
        )
        stores = LabStores(**options)
        # a year on, copying a shared snapshot thaws its packs first (moto thaws at once)
        archive_as_the_lifecycle_does(recorder, settings["store"])
        with pytest.raises(ArchiveWait):
            stores.copy(snapshot, LAB, OTHER_LAB)
        stores.copy(snapshot, LAB, OTHER_LAB)
        abandon_a_pack_upload(stores.store_template.format(lab_id=OTHER_LAB))
        anchor = open_anchor(service["environment"]["WESTTEK_AUDIT_ANCHOR"], retention_days=1)
        anchor.record(ChainHead(seq=1, hash="ab" * 32))
        assert anchor.latest() == ChainHead(seq=1, hash="ab" * 32)
    finally:
        stop_observing()
        fargate.close()

    requests = requests_of(recorder, moto_stage, region)
    calls = {request["call"] for request in requests}
    assert {r["principal"] for r in requests if r["call"] == "s3 RestoreObject"} == {
        "notebook", "hub"
    }  # fmt: skip
    for expected in ("ecs RunTask", "efs CreateAccessPoint", "kms GenerateDataKey",
                     "kms Decrypt", "s3 PutObject", "s3 RestoreObject", "sns Publish",
                     "events PutEvents",
                     "secretsmanager GetSecretValue"):  # fmt: skip
        assert expected in calls, f"{expected} was not made: {sorted(calls)}"
    # both roles that write packs uploaded them in parts, and aborted the upload that failed
    for principal in ("hub", "notebook"):
        made = {r["call"] for r in requests if r["principal"] == principal}
        for expected in ("s3 CreateMultipartUpload", "s3 UploadPart",
                         "s3 CompleteMultipartUpload", "s3 AbortMultipartUpload"):  # fmt: skip
            assert expected in made, f"{principal} made no {expected}: {sorted(made)}"
    # The agents converse with the model the server's settings name (Bedrock is not on moto).
    for principal, lab in (("hub", None), ("notebook", LAB)):
        requests.append(
            {
                "principal": principal,
                "lab": lab,
                "call": "bedrock-runtime Converse",
                "action": "bedrock:InvokeModel",
                "resource": f"arn:aws:bedrock:{region}::foundation-model/{settings['model_id']}",
                "context": {},
            }
        )
    decisions = decide(requests, tmp_path)
    refused = denied(requests, decisions)
    assert not refused, "the stack's IAM policies refuse calls the code makes:\n" + "\n".join(
        refused
    )

    # And the evaluator tells labs apart: another lab's role is refused each of the
    # notebook's calls on its lab's store and data key.
    lab_bound = [
        r | {"lab": OTHER_LAB}
        for r in requests
        if r["principal"] == "notebook"
        and (f"labs/{LAB}/" in r["resource"] or LAB in r["context"].values())
    ]
    assert lab_bound
    assert not any(decide(lab_bound, tmp_path)), "another lab's role could reach this lab's store"
