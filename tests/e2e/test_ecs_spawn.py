"""End to end on ECS: a real JupyterHub + proxy, the ecs backend against moto on loopback.

The hub process talks to a moto server in this test process over HTTP (boto3, as in
production). :class:`~tests.spawner.fake_fargate.FakeFargate`, also in this process, plays
Fargate: it moves each task through its stages and runs its container command — the
pre-start restore, then jupyterhub-singleuser with the West Tek extension — on 127.0.0.1.
The backend's ``address_hook`` resolves a task to that server; the hub process refuses
(and records) any connection to a non-loopback address, so a task's fake private IP is
provably never dialled.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from tests.core.store.conftest import moto_endpoint  # noqa: F401 (a fixture)
from tests.e2e.conftest import REPO, HubProcess, login
from tests.e2e.test_hub_spawn import server_status
from tests.postgres_server import create_database
from tests.spawner.conftest import aws, make_world  # noqa: F401 (the fixture)
from tests.spawner.fake_fargate import FakeFargate
from westtek_spawner.aws import aws_client

pytestmark = pytest.mark.slow

UNPULLABLE = "registry.invalid/no-such-image:1"
PROFILES = [
    {"slug": "small", "display_name": "Small", "cpu": 0.5, "memory_gib": 1, "default": True},
    {"slug": "large", "display_name": "Large", "cpu": 2, "memory_gib": 8},
    {"slug": "broken", "display_name": "Broken image", "image": UNPULLABLE},
]

FARGATE_STAND_IN = """
# -- the stand-in for Fargate (tests/spawner/fake_fargate.py) ---------------------------------
import ipaddress, socket, sys
sys.path.insert(0, {repo!r})
from tests.spawner.fake_fargate import address_from

c.EcsBackend.start_poll_interval = 0.2
c.EcsBackend.address_hook = address_from({addresses!r})

# Nothing in the hub may dial a non-loopback address (a task's fake private IP above all).
_connect = socket.socket.connect
_dials = {dials!r}

def _loopback_only(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
            with open(_dials, "a") as f:
                f.write(f"{{address!r}}\\n")
            raise ConnectionRefusedError(f"e2e: refusing to dial {{address!r}}")
    return _connect(sock, address)

socket.socket.connect = _loopback_only
"""
# ... whose tasks' "containers" are processes of this machine, run by the hub's interpreter
STAND_IN = (
    FARGATE_STAND_IN
    + """
c.WestTekSpawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.WestTekSpawner.prestart_command = [sys.executable, "-m", "westtek_spawner.prestart"]
"""
)

ECS_CONFIG = """
# -- test_ecs_spawn: the demo hub with the ecs backend against moto -------------------------
c.WestTekSpawner.backend = "ecs"
c.WestTekSpawner.profile_list = {profiles!r}
c.WestTekSpawner.lab_quotas = {{"vault-13": 2}}
c.EcsBackend.cluster = {cluster!r}
c.EcsBackend.subnets = [{subnet!r}]
c.EcsBackend.security_groups = [{security_group!r}]
c.EcsBackend.file_system_id = {file_system!r}
c.EcsBackend.image = "westtek/notebook:e2e"
"""


@pytest.fixture
def ecs_hub(aws, tmp_path):  # noqa: F811
    world = make_world(aws)
    fargate = FakeFargate(
        tmp_path / "fargate",
        clusters={world["cluster"]},
        stage_seconds=0.4,
        unpullable=(UNPULLABLE,),
        extra_args=("--allow-root",),  # the stand-in runs as this (root) test process
    ).start()
    hub = HubProcess(tmp_path)
    dials = tmp_path / "non-loopback-dials.txt"
    with open(hub.config, "a") as config:
        config.write(ECS_CONFIG.format(profiles=PROFILES, **world))
        config.write(
            STAND_IN.format(repo=str(REPO), addresses=str(fargate.addresses), dials=str(dials))
        )
    hub.start()
    yield hub, world, fargate
    hub.stop()
    fargate.close()
    hub.kill_user_servers()
    assert not dials.exists(), f"the hub dialled non-loopback addresses:\n{dials.read_text()}"
    print(hub.log())  # pytest shows captured output only when the test failed


def spawn_from_the_form(hub: HubProcess, session: requests.Session, profile: str) -> str:
    """Open the spawn page, check the profiles are offered, submit one; returns the page."""
    form = session.get(f"{hub.url}/hub/spawn", timeout=30)
    form.raise_for_status()
    offered = re.findall(r'name="profile" id="profile-[\w-]+" value="([\w-]+)"', form.text)
    assert offered == ["small", "large", "broken"], form.text
    xsrf = session.cookies.get("_xsrf", path="/hub/") or session.cookies.get("_xsrf") or ""
    response = session.post(
        f"{hub.url}/hub/spawn",
        data={"profile": profile, "_xsrf": xsrf},
        headers={"X-XSRFToken": xsrf},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.text


def progress_of(hub: HubProcess, user: str, timeout: float = 90) -> list[dict]:
    """The spawn's progress events, as the spawn page receives them, until ready or failed."""
    events = []
    deadline = time.monotonic() + timeout
    with hub.api_stream(f"users/{user}/server/progress") as stream:
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("data:"):
                event = json.loads(line[len("data:") :])
                events.append(event)
                if event.get("ready") or event.get("failed"):
                    break
            assert time.monotonic() < deadline, events
    return events


def test_alice_spawns_on_ecs_survives_a_hub_restart_and_a_bad_image_fails_fast(ecs_hub):
    hub, world, fargate = ecs_hub
    ecs = aws_client("ecs")
    efs = aws_client("efs")
    # Given alice logged in, when she picks the large profile on the spawn page,
    alice = login(hub, "alice")
    spawn_from_the_form(hub, alice, "large")
    events = progress_of(hub, "alice")
    messages = [e.get("message", "") for e in events]
    # then she sees each stage, in order, and her server becomes ready,
    stages = [
        "Profile: Large",
        "Created your home directory /home/alice",
        "Task definition westtek-notebook:",
        "Task provisioning",
        "Task pending: waiting for its network interface",
        "Task pending: pulling image westtek/notebook:e2e",
        "Task running",
        "Notebook server running at 127.0.0.1:",
        "No snapshot",  # a new researcher: nothing to restore yet
        "Notebook server answering",
        "Server ready at",
    ]
    positions = [
        next((i for i, m in enumerate(messages) if m.startswith(stage)), -1) for stage in stages
    ]
    assert -1 not in positions and positions == sorted(positions), "\n".join(messages)
    assert events[-1]["ready"]
    # the West Tek extension answers through the proxy,
    assert server_status(hub, alice, "alice")["component"] == "server-extension"
    # and her task runs the large size with her own access point.
    state = hub.api("GET", "users/alice").json()["servers"][""]["state"]["westtek"]
    task = ecs.describe_tasks(cluster=world["cluster"], tasks=[state["task_arn"]])["tasks"][0]
    assert task["lastStatus"] == "RUNNING"
    definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])[
        "taskDefinition"
    ]
    assert (definition["cpu"], definition["memory"]) == ("2048", "8192")
    volume = definition["volumes"][0]["efsVolumeConfiguration"]
    assert volume["authorizationConfig"]["accessPointId"] == state["access_point_id"]
    (point,) = efs.describe_access_points(AccessPointId=state["access_point_id"])["AccessPoints"]
    assert point["RootDirectory"]["Path"] == "/home/alice"
    assert {t["Key"]: t["Value"] for t in point["Tags"]}["researcher_id"] == "alice"

    # When the hub restarts,
    hub.stop()
    hub.start()
    # then it still finds her server: the same task, ready, reachable through the new proxy.
    after = hub.api("GET", "users/alice").json()["servers"][""]
    assert after["ready"] and after["state"]["westtek"]["task_arn"] == state["task_arn"]
    alice = login(hub, "alice")
    assert server_status(hub, alice, "alice")["component"] == "server-extension"

    # When bob picks a profile whose image cannot be pulled,
    bob = login(hub, "bob")
    started = time.monotonic()
    spawn_from_the_form(hub, bob, "broken")
    failed = progress_of(hub, "bob")[-1]
    # then his spawn fails within seconds, with ECS's reason on his spawn page.
    assert failed.get("failed"), failed
    assert time.monotonic() - started < 20
    assert failed["message"].startswith(
        "Spawn failed: Your server's task stopped before it could run: CannotPullContainerError:"
    ), failed
    assert UNPULLABLE in failed["message"]
    assert "CannotPullContainerError" in hub.log()
    assert hub.api("GET", "users/bob").json()["servers"] == {}
    # Alice's server was never disturbed.
    assert fargate.processes[state["task_arn"]].poll() is None


# -- the production configuration, hub_config/aws.py ----------------------------------------

AWS_WRAPPER = """c = get_config()
load_subconfig({aws_config!r})
# what this test adds: an admin token, the stand-in for Fargate, the loopback guard
c.JupyterHub.services.append({{"name": "e2e-admin", "api_token": {admin_token!r}}})
c.JupyterHub.load_roles.append(
    {{"name": "e2e-admin", "scopes": ["admin:users", "admin:servers", "admin:groups", "tokens"],
     "services": ["e2e-admin"]}}
)
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
"""


@pytest.fixture(scope="module")
def postgres():
    from tests.postgres_server import postgres_bin, running_postgres

    if postgres_bin() is None:
        pytest.fail("PostgreSQL is not installed: `make test` installs Debian's postgresql")
    with running_postgres() as url:
        yield url


def find_proxy() -> str:
    import shutil

    beside = Path(sys.executable).parent / "configurable-http-proxy"
    found = str(beside) if beside.exists() else shutil.which("configurable-http-proxy")
    assert found, "configurable-http-proxy is not installed (make installs it)"
    return found


@pytest.fixture
def production_hub(aws, postgres, tmp_path, monkeypatch):  # noqa: F811
    """hub_config/aws.py, its stack outputs pointing at moto and a local PostgreSQL."""
    from tests.e2e.conftest import ADMIN_TOKEN

    world = make_world(aws)
    secrets = aws_client("secretsmanager")
    db_secret = secrets.create_secret(
        Name=f"westtek-db-{world['cluster']}",
        SecretString=json.dumps({"username": "westtek", "password": "p@ss/word"}),
    )["ARN"]
    cognito = aws_client("cognito-idp")
    pool = cognito.create_user_pool(PoolName=world["cluster"])["UserPool"]["Id"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool, ClientName="hub", GenerateSecret=True
    )["UserPoolClient"]["ClientId"]
    bucket = f"westtek-snapshots-{world['cluster']}"
    aws_client("s3").create_bucket(Bucket=bucket)
    audit_bucket = f"westtek-audit-{world['cluster']}"
    aws_client("s3").create_bucket(Bucket=audit_bucket, ObjectLockEnabledForBucket=True)
    key = aws_client("kms").create_key(Description="snapshots")["KeyMetadata"]["Arn"]
    aws_client("events").create_event_bus(Name=world["cluster"])
    topic = aws_client("sns").create_topic(Name=f"{world['cluster']}-alerts-vault-13")["TopicArn"]
    host_port = postgres.rsplit("@", 1)[1]
    database = create_database(postgres, f"westtek_{world['cluster'].replace('-', '_')}")
    hub = HubProcess(tmp_path)
    hub_port, api_port = free_port(), free_port()
    proxy_token = "e2e-proxy-token-0123456789"
    roles = {
        "vault-13": "arn:aws:iam::123456789012:role/westtek/notebook/vault-13",
        "vault-101": "arn:aws:iam::123456789012:role/westtek/notebook/vault-101",
    }
    settings = {
        "WESTTEK_STAGE": "e2e",
        "WESTTEK_HUB_URL": hub.url,
        "WESTTEK_HUB_BIND_URL": f"http://127.0.0.1:{hub_port}",
        "WESTTEK_HUB_CONNECT_URL": f"http://127.0.0.1:{hub_port}",
        "WESTTEK_PROXY_API_URL": f"http://127.0.0.1:{api_port}",
        "WESTTEK_SERVICE_URL": f"http://127.0.0.1:{free_port()}",
        "WESTTEK_HUB_SECRET": "e2e-hub-secret",
        "CONFIGPROXY_AUTH_TOKEN": proxy_token,
        "WESTTEK_ECS_CLUSTER": world["cluster"],
        "WESTTEK_NOTEBOOK_TASK_FAMILY": "westtek-notebook",
        "WESTTEK_NOTEBOOK_CONTAINER": "notebook",
        "WESTTEK_NOTEBOOK_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/westtek-exec",
        "WESTTEK_NOTEBOOK_TASK_ROLE_ARNS": json.dumps(roles),
        "WESTTEK_NOTEBOOK_SUBNETS": world["subnet"],
        "WESTTEK_NOTEBOOK_SECURITY_GROUPS": world["security_group"],
        "WESTTEK_NOTEBOOK_LOG_GROUP": "/westtek/e2e/notebooks",
        "WESTTEK_NOTEBOOK_IMAGE": "westtek/notebook:e2e",
        "WESTTEK_EFS_FILE_SYSTEM_ID": world["file_system"],
        "WESTTEK_SNAPSHOT_BUCKET": bucket,
        "WESTTEK_AUDIT_BUCKET": audit_bucket,
        "WESTTEK_DB_HOST": host_port.split(":")[0],
        "WESTTEK_DB_PORT": host_port.split(":")[1],
        "WESTTEK_DB_NAME": database.rsplit("/", 1)[1],
        "WESTTEK_DB_SECRET_ARN": db_secret,
        "WESTTEK_DB_SSLMODE": "disable",  # the test server has no TLS; production requires it
        "WESTTEK_COGNITO_USER_POOL_ID": pool,
        "WESTTEK_COGNITO_CLIENT_ID": client,
        "WESTTEK_OAUTH_AUTHORIZE_URL": "https://auth.invalid/oauth2/authorize",
        "WESTTEK_OAUTH_TOKEN_URL": "https://auth.invalid/oauth2/token",
        "WESTTEK_OAUTH_CALLBACK_URL": f"{hub.url}/hub/oauth_callback",
        "WESTTEK_LABS": json.dumps(
            [
                {"id": "vault-13", "adGroup": "CN-Vault13", "adminAdGroup": "CN-Vault13-Leads"},
                {"id": "vault-101", "adGroup": None, "adminAdGroup": None},
            ]
        ),
        "WESTTEK_HUB_ADMIN_AD_GROUPS": json.dumps(["CN-WestTek-IT"]),
        "WESTTEK_SNAPSHOT_KMS_KEY_ARN": key,
        "WESTTEK_EVENT_BUS": world["cluster"],
        "WESTTEK_ALERT_TOPIC_ARNS": json.dumps({"vault-13": topic}),
        "WESTTEK_KNOWLEDGE_BASE_IDS": json.dumps({"vault-13": "KB13", "vault-101": "KB101"}),
        "WESTTEK_KNOWLEDGE_BASE_DATA_SOURCE_IDS": json.dumps(
            {"vault-13": "DS13", "vault-101": "DS101"}
        ),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    fargate = FakeFargate(
        tmp_path / "fargate",
        clusters={world["cluster"]},
        stage_seconds=0.2,
        extra_args=("--allow-root",),
    ).start()
    dials = tmp_path / "non-loopback-dials.txt"
    hub.config.write_text(
        AWS_WRAPPER.format(aws_config=str(REPO / "hub_config" / "aws.py"), admin_token=ADMIN_TOKEN)
        + STAND_IN.format(repo=str(REPO), addresses=str(fargate.addresses), dials=str(dials))
    )
    proxy = subprocess.Popen(
        [
            find_proxy(),
            "--ip=127.0.0.1",
            f"--port={hub.url.rsplit(':', 1)[1]}",
            "--api-ip=127.0.0.1",
            f"--api-port={api_port}",
            f"--default-target=http://127.0.0.1:{hub_port}",
            f"--error-target=http://127.0.0.1:{hub_port}/hub/error",
        ],
        stdout=open(tmp_path / "proxy.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        env={**os.environ},
        start_new_session=True,
    )
    try:
        hub.start()
        yield hub, world, settings
    finally:
        hub.stop()
        proxy.terminate()
        proxy.wait(10)
        fargate.close()
        hub.kill_user_servers()
        print(hub.log())
    assert not dials.exists(), dials.read_text()


def test_the_production_config_runs_on_postgres_and_spawns_on_ecs(production_hub, postgres):
    hub, world, settings = production_hub
    # The hub and its service booted on PostgreSQL, each in its own schema,
    import psycopg

    plain = postgres.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(f"{plain}/{settings['WESTTEK_DB_NAME']}") as connection:
        tables = set(
            connection.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables"
                " WHERE table_schema IN ('jupyterhub', 'westtek')"
            ).fetchall()
        )
    tables = {t[0] for t in tables}
    assert {"jupyterhub.users", "jupyterhub.shares", "westtek.environments"} <= tables
    assert requests.get(f"{hub.url}/hub/health", timeout=10).status_code == 200
    # Cognito is the login, its client secret read from Cognito itself.
    login_page = requests.get(f"{hub.url}/hub/login", timeout=10).text
    assert "West Tek sign-in" in login_page
    # Groups come from the sign-in (manage_groups): with no Cognito here, alice's lab
    # membership goes into the database while the hub is down, as a sign-in would record it.
    assert hub.api("POST", "users/alice").status_code == 201
    hub.stop()
    with psycopg.connect(f"{plain}/{settings['WESTTEK_DB_NAME']}") as connection:
        connection.execute("SET search_path TO jupyterhub")
        group = connection.execute(
            "INSERT INTO groups (name, properties) VALUES ('vault-13', '{}') RETURNING id"
        ).fetchone()[0]
        connection.execute(
            "INSERT INTO user_group_map (user_id, group_id)"
            " SELECT id, %s FROM users WHERE name = 'alice'",
            (group,),
        )
    hub.start()
    # A lab member spawns with the production settings: her lab's role, its store prefix.
    assert hub.api("POST", "users/alice/server", json={"profile": "small"}).status_code in (
        201,
        202,
    )
    events = progress_of(hub, "alice")
    assert events[-1].get("ready"), events
    state = hub.api("GET", "users/alice").json()["servers"][""]["state"]["westtek"]
    ecs = aws_client("ecs")
    task = ecs.describe_tasks(cluster=world["cluster"], tasks=[state["task_arn"]])["tasks"][0]
    env = {e["name"]: e["value"] for e in task["overrides"]["containerOverrides"][0]["environment"]}
    assert env["WESTTEK_STORE"] == f"s3://{settings['WESTTEK_SNAPSHOT_BUCKET']}/labs/vault-13/"
    assert env["WESTTEK_LAB_ID"] == "vault-13"
    # and her lab's knowledge base only (its documents go beside the store, under kb/)
    assert env["WESTTEK_KB_BACKEND"] == "bedrock"
    assert json.loads(env["WESTTEK_KNOWLEDGE_BASE_IDS"]) == {"vault-13": "KB13"}
    assert json.loads(env["WESTTEK_KNOWLEDGE_BASE_DATA_SOURCE_IDS"]) == {"vault-13": "DS13"}
    # her lab's alert topic and data key, the stage's drift bus
    assert (
        env["WESTTEK_ALERT_TOPIC_ARN"]
        == json.loads(settings["WESTTEK_ALERT_TOPIC_ARNS"])["vault-13"]
    )
    assert env["WESTTEK_SNAPSHOT_KMS_KEY_ARN"] == settings["WESTTEK_SNAPSHOT_KMS_KEY_ARN"]
    assert env["WESTTEK_EVENT_BUS"] == settings["WESTTEK_EVENT_BUS"]
    definition = ecs.describe_task_definition(taskDefinition=task["taskDefinitionArn"])[
        "taskDefinition"
    ]
    assert definition["taskRoleArn"].endswith("/westtek/notebook/vault-13")
    assert definition["executionRoleArn"].endswith("role/westtek-exec")
    logs = definition["containerDefinitions"][0]["logConfiguration"]["options"]
    assert logs["awslogs-group"] == "/westtek/e2e/notebooks"
    # Her snapshot report is audited by the service, the chain's head anchored and locked in
    # the audit bucket (the key and the anchor come from the production config).
    created = hub.api("POST", "users/alice/tokens", json={"note": "e2e", "scopes": ["self"]})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    report = {"id": "a1" * 32, "environment_id": "alice", "created_by": "alice",
              "timestamp": "2026-12-01T10:00:00+00:00"}  # fmt: skip
    reported = requests.post(
        f"{hub.url}/services/westtek/api/snapshots",
        headers={"Authorization": f"token {token}"}, json=report, timeout=30,
    )  # fmt: skip
    assert reported.status_code == 201, reported.text
    s3 = aws_client("s3")
    listing = s3.list_objects_v2(Bucket=settings["WESTTEK_AUDIT_BUCKET"], Prefix="audit/e2e/")
    anchored = [item["Key"] for item in listing.get("Contents", [])]
    assert anchored and anchored[0].startswith("audit/e2e/heads/"), anchored
    head = s3.head_object(Bucket=settings["WESTTEK_AUDIT_BUCKET"], Key=anchored[0])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    # Bob is in no lab: the production config refuses him a server, saying why.
    hub.api("POST", "users/bob")
    assert hub.api("POST", "users/bob/server").status_code in (201, 202)
    failed = progress_of(hub, "bob")[-1]
    assert failed.get("failed") and "bob is in no lab" in failed["message"], failed


def test_production_groups_come_from_ad_and_cognito_claims(production_hub):
    # The mapping functions of hub_config/aws.py, run in this process with the same settings.
    namespace = {"get_config": lambda: __import__("traitlets.config").config.Config()}
    exec(compile((REPO / "hub_config" / "aws.py").read_text(), "aws.py", "exec"), namespace)
    labs_and_roles, username_of = namespace["labs_and_roles"], namespace["username_of"]
    assert labs_and_roles({"oauth_user": {"custom:ad_groups": "[CN-Vault13, CN-Other]"}}) == [
        "vault-13"
    ]
    assert labs_and_roles(
        {"oauth_user": {"cognito:groups": ["vault-101", "westtek-admins", "stray"]}}
    ) == ["vault-101", "westtek-admins"]
    assert labs_and_roles({"oauth_user": {"custom:ad_groups": '["CN-Vault13"]'}}) == ["vault-13"]
    # AD makes lab admins (the lab's `-admins` group) and hub admins too
    assert labs_and_roles(
        {"oauth_user": {"custom:ad_groups": "[CN-Vault13, CN-Vault13-Leads]"}}
    ) == ["vault-13", "vault-13-admins"]
    assert labs_and_roles({"oauth_user": {"custom:ad_groups": ["CN-WestTek-IT"]}}) == [
        "westtek-admins"
    ]
    assert labs_and_roles({"oauth_user": {"cognito:groups": ["vault-13-admins"]}}) == [
        "vault-13-admins"
    ]
    assert labs_and_roles({}) == []
    assert username_of({"email": "Alice@WestTek.example", "sub": "x"}) == "alice@westtek.example"
    assert username_of({"cognito:username": "carol", "sub": "x"}) == "carol"
    # The hub service keeps each lab's memory on the lab's knowledge base.
    service = namespace["c"].JupyterHub.services[0]["environment"]
    assert service["WESTTEK_KB_BACKEND"] == "bedrock"
    assert json.loads(service["WESTTEK_KNOWLEDGE_BASE_IDS"]) == {
        "vault-13": "KB13",
        "vault-101": "KB101",
    }
