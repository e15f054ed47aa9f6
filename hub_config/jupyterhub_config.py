"""JupyterHub configuration for the West Tek local demo (`make demo`).

Two labs as JupyterHub groups, an admin, the demo authenticator, the West Tek spawner's
local backend and the West Tek hub service: all on embedded defaults, loopback only.
Run from the directory where the hub should keep its database and the users' homes.
"""

import shutil
import sys
from pathlib import Path

c = get_config()  # noqa: F821 (injected by JupyterHub)

# Labs are JupyterHub groups; the demo's users log in with the shared demo password.
LABS = {"vault-13": ["alice", "bob"], "vault-101": ["carol"]}
HUB_ADMINS = ["overseer"]
DEMO_PASSWORD = "westtek-demo"

c.JupyterHub.bind_url = "http://127.0.0.1:8000"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.load_groups = {lab: {"users": members} for lab, members in LABS.items()}

c.JupyterHub.authenticator_class = "westtek-demo"
c.Authenticator.allowed_users = {user for members in LABS.values() for user in members} | set(
    HUB_ADMINS
)
c.Authenticator.admin_users = set(HUB_ADMINS)
c.WestTekDemoAuthenticator.demo_password = DEMO_PASSWORD

c.JupyterHub.spawner_class = "westtek"
c.WestTekSpawner.backend = "local"
c.WestTekSpawner.lab_groups = list(LABS)  # the hub service is told the same, below
# Each lab keeps its snapshots in its own store, beside the hub's state; the hub service
# copies a snapshot one lab shares into the recipient lab's store before a launch from it.
LAB_STORES = str(Path.cwd() / "westtek-stores" / "{lab_id}")
c.WestTekSpawner.store_template = LAB_STORES
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60

c.JupyterHub.services = [
    {
        "name": "westtek",
        "url": "http://127.0.0.1:10101",
        "command": [
            sys.executable,
            "-m",
            "westtek_hub",
            *(f"--WestTekHubService.lab_groups={lab}" for lab in LABS),
            # the registry lives beside the hub's own state, whoever the hub runs as; so do,
            # outside the registry's database, the audit chain's key (made on first start)
            # and the anchor of its head
            f"--WestTekHubService.data_dir={Path.cwd() / 'westtek-hub'}",
            f"--LabStores.store_template={LAB_STORES}",
        ],
        "display": True,
    }
]
# The service's least privileges: read and list users (their groups are their labs, their
# running servers count against lab quotas), start and stop their servers, and reach their
# servers' West Tek API (snapshot on request), and list the hub's services for its nav bar.
# Users may open the service (its admin panel and API) through OAuth.
c.JupyterHub.load_roles = [
    {
        "name": "westtek-service",
        "scopes": [
            "read:users",
            "list:users",
            "servers",
            "access:servers",
            "list:services",
            "read:services",
        ],
        "services": ["westtek"],
    },
    {"name": "user", "scopes": ["self", "access:services!service=westtek"]},
]


def _find_proxy() -> str:
    """configurable-http-proxy beside the hub's interpreter (where make installs it), or on PATH."""
    beside = Path(sys.executable).parent / "configurable-http-proxy"
    found = str(beside) if beside.exists() else shutil.which("configurable-http-proxy")
    if not found:
        sys.exit(
            "configurable-http-proxy was not found next to the hub's Python or on PATH: "
            "run `make demo` in the West Tek checkout, or `npm install -g configurable-http-proxy`."
        )
    return found


c.ConfigurableHTTPProxy.command = [_find_proxy()]
