"""JupyterHub configuration for production on AWS: `jupyterhub -f hub_config/aws.py`.

Every deployment-specific value comes from the CDK stacks' outputs, as the WESTTEK_*
environment variables infra/README.md lists ("How hub_config reads the stacks"): in ECS the
hub container has them all; anywhere else `scripts/stack-env.ts <stage>` exports them.
Secrets are read at start from Secrets Manager (the database) and Cognito (the OAuth client
secret), never from the environment.

- notebook servers: WestTekSpawner's ecs backend — a Fargate task per server in the
  notebook subnets, the researcher's EFS access point as /home/jovyan, their lab's task
  role, snapshots in s3://<bucket>/labs/{lab_id}/, the researcher's latest snapshot
  restored before JupyterLab opens; with the stage's knowledge bases (prod), the bedrock
  knowledge-base backend and the ids of the server's own lab's knowledge base;
- login: Cognito through oauthenticator's GenericOAuthenticator; a user's labs are the
  labs whose AD group is in their `custom:ad_groups` claim (native Cognito users: their
  `cognito:groups`), kept as JupyterHub groups named by lab id; a lab's `adminAdGroup`
  makes its admins (`<lab>-admins`), `WESTTEK_HUB_ADMIN_AD_GROUPS` the hub admins
  (`westtek-admins`);
- JupyterHub's database and the West Tek hub service's registry: PostgreSQL (RDS), each in
  its own schema of the stage's database;
- configurable-http-proxy runs beside the hub in the same task (not started by the hub).
"""

import hashlib
import json
import os
import sys
from urllib.parse import quote

from westtek_core.aws import aws_client
from westtek_core.labs import ADMINS_SUFFIX, HUB_ADMINS_GROUP
from westtek_hub.roles import idle_culler, suite_roles

c = get_config()  # noqa: F821 (injected by JupyterHub)

ADMIN_GROUP = HUB_ADMINS_GROUP  # "westtek-admins", infra/lib/identity-stack.ts
DEFAULT_PROFILES = [
    {
        "slug": "small",
        "display_name": "Small",
        "description": "everyday analysis",
        "cpu": 1,
        "memory_gib": 4,
        "default": True,
    },
    {"slug": "medium", "display_name": "Medium", "cpu": 2, "memory_gib": 8},
    {
        "slug": "large",
        "display_name": "Large",
        "description": "big data in memory",
        "cpu": 4,
        "memory_gib": 16,
        "ephemeral_storage_gib": 100,
    },
]


def setting(name, default=None):
    """A WESTTEK_* setting; the hub refuses to start without a required one."""
    value = os.environ.get(name, default)
    if value is None or value == "":
        sys.exit(
            f"hub_config/aws.py: {name} is not set. In ECS the compute stack sets it; "
            "elsewhere export the stage's settings with "
            "`node --require ts-node/register/transpile-only infra/scripts/stack-env.ts <stage>`"
        )
    return value


def json_setting(name, default):
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError as e:
        sys.exit(f"hub_config/aws.py: {name} is not JSON: {e}")


def listing(name):
    return [item.strip() for item in setting(name).split(",") if item.strip()]


REGION = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
STAGE = os.environ.get("WESTTEK_STAGE", "prod")

# -- the hub, behind the proxy in the same task ----------------------------------------------

HUB_URL = setting("WESTTEK_HUB_URL").rstrip("/")
c.JupyterHub.public_url = HUB_URL + "/"
c.JupyterHub.hub_bind_url = os.environ.get("WESTTEK_HUB_BIND_URL", "http://0.0.0.0:8081")
c.JupyterHub.hub_connect_url = setting("WESTTEK_HUB_CONNECT_URL")
c.ConfigurableHTTPProxy.should_start = False  # its own container; CONFIGPROXY_AUTH_TOKEN shared
c.ConfigurableHTTPProxy.api_url = setting("WESTTEK_PROXY_API_URL", "http://127.0.0.1:8001")
c.JupyterHub.cleanup_servers = False  # a hub redeploy must not stop researchers' servers
c.JupyterHub.cleanup_proxy = False

# One secret seeds the cookie secret, the auth-state key (a redeploy keeps sessions) and the
# hub service's audit-chain key: from Secrets Manager, so never in the database it protects.
_seed = setting("WESTTEK_HUB_SECRET").encode()
c.JupyterHub.cookie_secret = hashlib.sha256(b"westtek-cookie-secret:" + _seed).digest()
os.environ["JUPYTERHUB_CRYPT_KEY"] = hashlib.sha256(b"westtek-crypt-key:" + _seed).hexdigest()
AUDIT_KEY = hashlib.sha256(b"westtek-audit-key:" + _seed).hexdigest()

# -- the database: JupyterHub's and the hub service's, one schema each ------------------------


def database_url(schema):
    """The stage's PostgreSQL as SQLAlchemy URL, TLS required, tables in ``schema``."""
    secret = json.loads(
        aws_client("secretsmanager", REGION).get_secret_value(
            SecretId=setting("WESTTEK_DB_SECRET_ARN")
        )["SecretString"]
    )
    user, password = quote(secret["username"], safe=""), quote(secret["password"], safe="")
    host, port = setting("WESTTEK_DB_HOST"), setting("WESTTEK_DB_PORT", "5432")
    name = setting("WESTTEK_DB_NAME", "westtek")
    sslmode = os.environ.get("WESTTEK_DB_SSLMODE", "require")
    options = quote(f"-csearch_path={schema}", safe="")
    return (
        f"postgresql+psycopg://{user}:{password}@{host}:{port}/{name}"
        f"?sslmode={sslmode}&options={options}"
    )


def ensure_schemas(url, schemas):
    """Create the schemas the hub and the service keep their tables in (idempotent)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection:
            for schema in schemas:
                connection.execute(sqlalchemy.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    finally:
        engine.dispose()


HUB_DB_URL = database_url("jupyterhub")
SERVICE_DB_URL = database_url("westtek")
ensure_schemas(HUB_DB_URL, ["jupyterhub", "westtek"])
c.JupyterHub.db_url = HUB_DB_URL

# -- login: Cognito, AD groups → labs ---------------------------------------------------------

LABS = json_setting("WESTTEK_LABS", [])
LAB_IDS = sorted(str(lab["id"]) for lab in LABS)
if not LAB_IDS:
    sys.exit("hub_config/aws.py: WESTTEK_LABS names no lab: nobody could use the hub")
# AD group → the JupyterHub groups its members get: a lab's members group is its id, its
# admins group `<id>-admins` (westtek_core.labs), the hub admins' `westtek-admins`.
GROUPS_OF_AD_GROUP: dict[str, set[str]] = {}
for _lab in LABS:
    _members, _admins = str(_lab["id"]), f"{_lab['id']}{ADMINS_SUFFIX}"
    for _key, _group in (("adGroup", _members), ("adminAdGroup", _admins)):
        if _lab.get(_key):
            GROUPS_OF_AD_GROUP.setdefault(str(_lab[_key]), set()).add(_group)
for _ad_group in json_setting("WESTTEK_HUB_ADMIN_AD_GROUPS", []):
    GROUPS_OF_AD_GROUP.setdefault(str(_ad_group), set()).add(ADMIN_GROUP)
LAB_ADMIN_GROUPS = {f"{lab}{ADMINS_SUFFIX}" for lab in LAB_IDS}


def _claim_list(value):
    """A groups claim as a list: a JSON list, '[a, b]' (Cognito's SAML form) or 'a,b'."""
    if isinstance(value, list):
        return [str(v) for v in value]
    if not value:
        return []
    text = str(value).strip()
    try:
        loaded = json.loads(text)
        if isinstance(loaded, list):
            return [str(v) for v in loaded]
    except ValueError:
        pass
    return [part.strip() for part in text.strip("[]").split(",") if part.strip()]


def labs_and_roles(auth_state):
    """JupyterHub groups of a user: their labs' ids, the `<lab>-admins` of labs they
    administer, and westtek-admins if they administer the hub; from their AD groups, or
    (native Cognito users) Cognito groups of those names."""
    claims = auth_state.get("oauth_user") or {}
    ad_groups = _claim_list(claims.get("custom:ad_groups"))
    cognito_groups = _claim_list(claims.get("cognito:groups"))
    groups = {group for g in ad_groups for group in GROUPS_OF_AD_GROUP.get(g, ())}
    known = set(LAB_IDS) | LAB_ADMIN_GROUPS | {ADMIN_GROUP}
    groups |= {g for g in cognito_groups if g in known}
    return sorted(groups)


def username_of(claims):
    """The JupyterHub name: the e-mail address (stable across AD and Cognito), lowercased."""
    return str(claims.get("email") or claims.get("cognito:username") or claims["sub"]).lower()


def oauth_client_secret():
    answer = aws_client("cognito-idp", REGION).describe_user_pool_client(
        UserPoolId=setting("WESTTEK_COGNITO_USER_POOL_ID"),
        ClientId=setting("WESTTEK_COGNITO_CLIENT_ID"),
    )
    return answer["UserPoolClient"]["ClientSecret"]


c.JupyterHub.authenticator_class = "generic-oauth"
c.GenericOAuthenticator.login_service = "West Tek sign-in"
c.GenericOAuthenticator.client_id = setting("WESTTEK_COGNITO_CLIENT_ID")
c.GenericOAuthenticator.client_secret = oauth_client_secret()
c.GenericOAuthenticator.authorize_url = setting("WESTTEK_OAUTH_AUTHORIZE_URL")
c.GenericOAuthenticator.token_url = setting("WESTTEK_OAUTH_TOKEN_URL")
c.GenericOAuthenticator.oauth_callback_url = setting("WESTTEK_OAUTH_CALLBACK_URL")
# The ID token carries cognito:groups and the AD groups attribute; userInfo lacks the former.
c.GenericOAuthenticator.userdata_from_id_token = True
c.GenericOAuthenticator.scope = ["openid", "email", "profile"]
c.GenericOAuthenticator.username_claim = username_of
c.GenericOAuthenticator.enable_auth_state = True
c.GenericOAuthenticator.manage_groups = True
c.GenericOAuthenticator.auth_state_groups_key = labs_and_roles
c.GenericOAuthenticator.allowed_groups = set(LAB_IDS) | LAB_ADMIN_GROUPS | {ADMIN_GROUP}
# not admin_groups: JupyterHub's admin role reaches every server; westtek-admins get West
# Tek's hub-admin role instead (westtek_hub/roles.py)

# -- notebook servers: ECS Fargate ----------------------------------------------------------

c.JupyterHub.spawner_class = "westtek"
c.WestTekSpawner.backend = "ecs"
c.WestTekSpawner.default_url = "/lab"
c.WestTekSpawner.start_timeout = 600  # capacity + image pull + restore, on a cold day
c.WestTekSpawner.http_timeout = 120
c.WestTekSpawner.lab_groups = list(LAB_IDS)  # the hub service is told the same, below
# each lab's snapshot store; the hub service copies a shared snapshot between two of them
LAB_STORES = f"s3://{setting('WESTTEK_SNAPSHOT_BUCKET')}/labs/{{lab_id}}/"
c.WestTekSpawner.store_template = LAB_STORES
c.WestTekSpawner.profile_list = json_setting("WESTTEK_PROFILES", DEFAULT_PROFILES)
c.WestTekSpawner.lab_quotas = {
    str(lab): int(n) for lab, n in json_setting("WESTTEK_LAB_SERVER_QUOTAS", {}).items()
}
c.WestTekSpawner.restore_environment = os.environ.get("WESTTEK_RESTORE_ON_START", "1") != "0"
# What a server needs of the stage: its lab's stores encrypted under the snapshot key (with
# the lab's encryption context), drift on the stage's bus (the stack's rules and alarm) and
# critical drift on its lab's alert topic, the allowed Bedrock models for its agents.
SNAPSHOT_KMS_KEY = setting("WESTTEK_SNAPSHOT_KMS_KEY_ARN")
ALERT_TOPIC_ARNS = json_setting("WESTTEK_ALERT_TOPIC_ARNS", {})
BEDROCK_MODEL_IDS = os.environ.get("WESTTEK_BEDROCK_MODEL_IDS", "")
AGENTS_ON_BEDROCK = (
    {"WESTTEK_AGENT_PROVIDER": "bedrock", "WESTTEK_BEDROCK_MODEL_IDS": BEDROCK_MODEL_IDS}
    if BEDROCK_MODEL_IDS
    else {}
)


def own_lab_topic(spawner):
    """The server's lab's alert topic ARN ('' when the lab has none)."""
    return str(ALERT_TOPIC_ARNS.get(spawner.lab_id or spawner.find_lab_id(), ""))


c.WestTekSpawner.environment = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "WESTTEK_SNAPSHOT_KMS_KEY_ARN": SNAPSHOT_KMS_KEY,
    "WESTTEK_EVENT_BUS": setting("WESTTEK_EVENT_BUS"),
    "WESTTEK_ALERT_TOPIC_ARN": own_lab_topic,
    **AGENTS_ON_BEDROCK,
}
# Each lab's Bedrock knowledge base (prod): a server gets its own lab's ids only, which its
# role may use (retrieve, ingest); its documents go beside its store, labs/{lab_id}/kb/.
KNOWLEDGE_BASE_IDS = json_setting("WESTTEK_KNOWLEDGE_BASE_IDS", {})
KNOWLEDGE_BASE_DATA_SOURCE_IDS = json_setting("WESTTEK_KNOWLEDGE_BASE_DATA_SOURCE_IDS", {})


def own_lab_entry(ids):
    """A spawner environment value: JSON of ``ids``' entry for the server's lab (or {})."""

    def value(spawner):
        lab = spawner.lab_id or spawner.find_lab_id()
        return json.dumps({lab: ids[lab]} if lab in ids else {})

    return value


if KNOWLEDGE_BASE_IDS:
    c.WestTekSpawner.environment |= {
        "WESTTEK_KB_BACKEND": "bedrock",
        "WESTTEK_KNOWLEDGE_BASE_IDS": own_lab_entry(KNOWLEDGE_BASE_IDS),
        "WESTTEK_KNOWLEDGE_BASE_DATA_SOURCE_IDS": own_lab_entry(KNOWLEDGE_BASE_DATA_SOURCE_IDS),
    }

c.EcsBackend.region = REGION
c.EcsBackend.cluster = setting("WESTTEK_ECS_CLUSTER")
c.EcsBackend.subnets = listing("WESTTEK_NOTEBOOK_SUBNETS")
c.EcsBackend.security_groups = listing("WESTTEK_NOTEBOOK_SECURITY_GROUPS")
c.EcsBackend.task_definition_family = setting("WESTTEK_NOTEBOOK_TASK_FAMILY", "westtek-notebook")
c.EcsBackend.container_name = setting("WESTTEK_NOTEBOOK_CONTAINER", "notebook")
c.EcsBackend.execution_role_arn = setting("WESTTEK_NOTEBOOK_EXECUTION_ROLE_ARN")
c.EcsBackend.task_role_arns = json_setting("WESTTEK_NOTEBOOK_TASK_ROLE_ARNS", {})
c.EcsBackend.require_lab = True
c.EcsBackend.log_group = setting("WESTTEK_NOTEBOOK_LOG_GROUP")
c.EcsBackend.file_system_id = setting("WESTTEK_EFS_FILE_SYSTEM_ID")
c.EcsBackend.home_mount_path = "/home/jovyan"
# The image: given outright, or the one of the stack's template revision of the family.
if os.environ.get("WESTTEK_NOTEBOOK_IMAGE"):
    c.EcsBackend.image = os.environ["WESTTEK_NOTEBOOK_IMAGE"]
else:
    c.EcsBackend.template_task_definition = setting("WESTTEK_NOTEBOOK_TASK_DEFINITION_ARN")

# -- the West Tek hub service ---------------------------------------------------------------

SERVICE_URL = os.environ.get("WESTTEK_SERVICE_URL", "http://127.0.0.1:10101")
# The audit chain's head is anchored after every append in the stage's audit bucket, which
# has S3 Object Lock: each head is locked (COMPLIANCE), so a cut log shows even to the key's
# holders.
AUDIT_ANCHOR = f"s3://{setting('WESTTEK_AUDIT_BUCKET')}/audit/{STAGE}/"
# A stage whose data goes with its stacks locks heads for less than the service's default
# seven years (infra sets the days), so its audit bucket can go too.
_days = os.environ.get("WESTTEK_AUDIT_RETENTION_DAYS")
AUDIT_RETENTION = [f"--AuditTrail.anchor_retention_days={_days}"] if _days else []
LAB_MEMORY_ON_BEDROCK = (
    {
        "WESTTEK_KB_BACKEND": "bedrock",
        "WESTTEK_KNOWLEDGE_BASE_IDS": json.dumps(KNOWLEDGE_BASE_IDS),
        "WESTTEK_KNOWLEDGE_BASE_DATA_SOURCE_IDS": json.dumps(KNOWLEDGE_BASE_DATA_SOURCE_IDS),
    }
    if KNOWLEDGE_BASE_IDS
    else {}
)
c.JupyterHub.services = [
    {
        "name": "westtek",
        "url": SERVICE_URL,
        "command": [
            sys.executable,
            "-m",
            "westtek_hub",
            *(f"--WestTekHubService.lab_groups={lab}" for lab in LAB_IDS),
            f"--LabStores.store_template={LAB_STORES}",
            f"--LabStores.kms_key_id={SNAPSHOT_KMS_KEY}",
            *AUDIT_RETENTION,
        ],
        "environment": {
            # JupyterHub passes a managed service none of its own environment: the task's
            # AWS settings and container credentials (the stores, the anchor) go explicitly
            **{name: value for name, value in os.environ.items() if name.startswith("AWS_")},
            "WESTTEK_HUB_DB_URL": SERVICE_DB_URL,
            "AWS_REGION": REGION,
            "WESTTEK_AUDIT_KEY": AUDIT_KEY,
            "WESTTEK_AUDIT_ANCHOR": AUDIT_ANCHOR,
            # each lab's memory on the lab's knowledge base, under its own scope
            **LAB_MEMORY_ON_BEDROCK,
            **AGENTS_ON_BEDROCK,
        },
        "display": True,
        "oauth_no_confirm": True,
    }
]
c.JupyterHub.load_roles = suite_roles(hub_admins_group=ADMIN_GROUP)
# idle servers are stopped (each takes its before-stop snapshot within the task's grace)
_culler, _culler_role = idle_culler(int(os.environ.get("WESTTEK_IDLE_TIMEOUT_SECONDS", "3600")))
c.JupyterHub.services.append(_culler)
c.JupyterHub.load_roles.append(_culler_role)
